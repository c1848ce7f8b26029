import { defaultDeps } from '../core/deps.ts';
import { bodyOf, httpHandler, json, pathIds } from '../core/http-handler.ts';
import { keepalive } from '../core/registry.ts';
import { keepaliveBodySchema, parseWith } from '../core/validation.ts';

/** POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive — 200, 404 NODE_NOT_FOUND, 409 STALE_INCARNATION. */
export const handler = httpHandler('keepalive', async (event) => {
  const { clusterId, nodeId } = pathIds(event);
  const body = parseWith(keepaliveBodySchema, bodyOf(event), 'keepalive body');
  const node = await keepalive(defaultDeps(), clusterId, nodeId, body.incarnation);
  return json(200, { node });
});
