import { subscribe } from '../core/connections.ts';
import { defaultDeps } from '../core/deps.ts';
import { parseMessage, reply, subscribeMessageSchema, wsHandler } from '../core/ws.ts';

/** `{"action":"subscribe","clusterId":"c2"}` → `{"type":"SUBSCRIBED","clusterId":"c2"}`. */
export const handler = wsHandler('subscribe', async (event) => {
  const { clusterId } = parseMessage(subscribeMessageSchema, event);
  await subscribe(defaultDeps(), event.requestContext.connectionId, clusterId);
  return reply({ type: 'SUBSCRIBED', clusterId });
});
