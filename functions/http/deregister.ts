import { defaultDeps } from '../core/deps.ts';
import { httpHandler, json, pathIds } from '../core/http-handler.ts';
import { deregister } from '../core/registry.ts';
import { parseQuery, deregisterQuerySchema } from '../core/validation.ts';

/** DELETE /v1/clusters/{clusterId}/nodes/{nodeId}[?incarnation=N] — 204, also when already gone. */
export const handler = httpHandler('deregister', async (event) => {
  const { clusterId, nodeId } = pathIds(event);
  const query = parseQuery(deregisterQuerySchema, event.queryStringParameters);
  await deregister(defaultDeps(), clusterId, nodeId, query.incarnation);
  return json(204);
});
