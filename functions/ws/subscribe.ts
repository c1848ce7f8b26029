import { subscribe } from '../core/subscriptions.ts';
import { defaultDeps } from '../core/deps.ts';
import { authorizeWs, parseMessage, reply, subscribeMessageSchema, wsHandler } from '../core/ws-handler.ts';

/**
 * `{"action":"subscribe","clusterId":"c2"}` → `{"type":"SUBSCRIBED","clusterId":"c2"}`; `ERROR`
 * `FORBIDDEN` for a cluster the connection's token does not cover, `THROTTLED`
 * past the connection's action limit (action-limit.ts).
 */
export const handler = wsHandler('subscribe', async (event) => {
  const { clusterId } = parseMessage(subscribeMessageSchema, event);
  authorizeWs(event, 'read', clusterId);
  await subscribe(defaultDeps(), event.requestContext.connectionId, clusterId);
  return reply({ type: 'SUBSCRIBED', clusterId });
});
