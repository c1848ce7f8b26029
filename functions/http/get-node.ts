import { defaultDeps } from '../core/deps.ts';
import { httpHandler, json, pathIds } from '../core/http-handler.ts';
import { getNode } from '../core/registry.ts';

/** GET /v1/clusters/{clusterId}/nodes/{nodeId} — the node with its effective status, or 404. */
export const handler = httpHandler('get-node', async (event) => {
  const { clusterId, nodeId } = pathIds(event);
  return json(200, { node: await getNode(defaultDeps(), clusterId, nodeId) });
});
