import { connect } from '../core/connections.ts';
import { defaultDeps } from '../core/deps.ts';
import { incarnationParamSchema, parseId, parseWith } from '../core/validation.ts';
import { wsHandler, type WsEvent } from '../core/ws.ts';
import { z } from 'zod';

/** Query parameters of `$connect`; `token` is read by the authorizer, never here. */
const connectQuerySchema = z.object({
  clusterId: z.string().optional(),
  nodeId: z.string().optional(),
  incarnation: incarnationParamSchema.optional(),
});

/**
 * `$connect` — `?clusterId=c1` subscribes, `&nodeId=n1` also binds the node
 * (404 if not registered), `&incarnation=N` binds only that incarnation (409 otherwise).
 */
export const handler = wsHandler('$connect', async (event: WsEvent) => {
  const query = parseWith(connectQuerySchema, event.queryStringParameters ?? {}, 'query parameters');
  const clusterId = query.clusterId === undefined ? undefined : parseId(query.clusterId, 'clusterId');
  const nodeId = query.nodeId === undefined ? undefined : parseId(query.nodeId, 'nodeId');
  await connect(defaultDeps(), event.requestContext.connectionId, { clusterId, nodeId, incarnation: query.incarnation });
  return { statusCode: 200 };
});
