import { connect } from '../core/subscriptions.ts';
import { defaultDeps } from '../core/deps.ts';
import { incarnationParamSchema, parseId, parseWith } from '../core/validation.ts';
import { authorize } from '../core/auth.ts';
import { wsClaims, wsHandler, type WsEvent } from '../core/ws-handler.ts';
import type { WS_CONNECT_PARAMETERS } from '@roster/contract';
import { z } from 'zod';

/**
 * Query parameters of `$connect`: exactly `WS_CONNECT_PARAMETERS` (the AsyncAPI
 * document's connect query, `additionalProperties: false`); any other refuses
 * the upgrade with 400, as a misspelt `?nodeld=` must not quietly open an
 * unbound connection. `token` is verified by the authorizer, never here.
 */
const connectQuerySchema = z.strictObject({
  clusterId: z.string().optional(),
  nodeId: z.string().optional(),
  incarnation: incarnationParamSchema.optional(),
  token: z.string().optional(),
  // Opt-in batched messages (docs/running-nodes/wire-batching.md): exactly `true` or `false`.
  batch: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
} satisfies Record<(typeof WS_CONNECT_PARAMETERS)[number], z.ZodType>);

/**
 * `$connect` — `?clusterId=c1` subscribes, `&nodeId=n1` also binds the node
 * (404 if not registered), `&incarnation=N` binds only that incarnation (409 otherwise),
 * `&batch=true` asks for batched messages (several events of one cluster in one message).
 * With auth on, subscribing needs a token for the cluster (403 otherwise) and
 * binding a `node` or `admin` token: binding renews the node's lease, a write.
 */
export const handler = wsHandler('$connect', async (event: WsEvent) => {
  const claims = wsClaims(event);
  const query = parseWith(connectQuerySchema, event.queryStringParameters ?? {}, 'query parameters');
  const clusterId = query.clusterId === undefined ? undefined : parseId(query.clusterId, 'clusterId');
  const nodeId = query.nodeId === undefined ? undefined : parseId(query.nodeId, 'nodeId');
  // Without a cluster the connection subscribes to nothing yet; each later subscribe is checked.
  if (claims && clusterId !== undefined) authorize(nodeId === undefined ? 'read' : 'write', claims, clusterId);
  await connect(defaultDeps(), event.requestContext.connectionId, { clusterId, nodeId, incarnation: query.incarnation, batch: query.batch === 'true' });
  return { statusCode: 200 };
});
