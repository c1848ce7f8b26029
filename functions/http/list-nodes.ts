import { defaultDeps } from '../core/deps.ts';
import { clusterIdOf, httpHandler, json } from '../core/http.ts';
import { listNodes } from '../core/registry.ts';
import { listQuerySchema, parseQuery } from '../core/validation.ts';

/** GET /v1/clusters/{clusterId}/nodes[?status=all] — the healthy list and the revision it reflects. */
export const handler = httpHandler('list-nodes', async (event) => {
  const clusterId = clusterIdOf(event);
  const query = parseQuery(listQuerySchema, event.queryStringParameters);
  return json(200, await listNodes(defaultDeps(), clusterId, { all: query.status === 'all' }));
});
