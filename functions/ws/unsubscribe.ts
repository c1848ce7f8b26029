import { unsubscribe } from '../core/subscriptions.ts';
import { defaultDeps } from '../core/deps.ts';
import { authorizeWs, parseMessage, reply, unsubscribeMessageSchema, wsHandler } from '../core/ws-handler.ts';

/**
 * `{"action":"unsubscribe","clusterId":"c2"}` → `{"type":"UNSUBSCRIBED","clusterId":"c2"}`; `ERROR`
 * `FORBIDDEN` for a cluster the connection's token does not cover, `THROTTLED`
 * past the connection's action limit (action-limit.ts).
 */
export const handler = wsHandler('unsubscribe', async (event) => {
  const { clusterId } = parseMessage(unsubscribeMessageSchema, event);
  authorizeWs(event, 'read', clusterId);
  await unsubscribe(defaultDeps(), event.requestContext.connectionId, clusterId);
  return reply({ type: 'UNSUBSCRIBED', clusterId });
});
