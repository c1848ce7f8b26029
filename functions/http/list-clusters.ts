import { defaultDeps } from '../core/deps.ts';
import { httpHandler, json } from '../core/http-handler.ts';
import { listClusters } from '../core/registry.ts';

/** GET /v1/clusters — every cluster with its UP and DOWN counts. */
export const handler = httpHandler('list-clusters', async () => {
  return json(200, { clusters: await listClusters(defaultDeps()) });
});
