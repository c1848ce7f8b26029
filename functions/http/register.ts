import { defaultDeps } from '../core/deps.ts';
import { bodyOf, httpHandler, json, pathIds } from '../core/http-handler.ts';
import { register } from '../core/registry.ts';
import { parseWith, registerBodySchema } from '../core/validation.ts';

/** PUT /v1/clusters/{clusterId}/nodes/{nodeId} — 201 when the node was not UP before (it comes UP), 200 when it was. */
export const handler = httpHandler('register', async (event) => {
  const { clusterId, nodeId } = pathIds(event);
  const body = parseWith(registerBodySchema, bodyOf(event), 'register body');
  const result = await register(defaultDeps(), clusterId, nodeId, body);
  return json(result.created ? 201 : 200, { node: result.node });
});
