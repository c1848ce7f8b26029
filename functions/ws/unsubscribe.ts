import { unsubscribe } from '../core/connections.ts';
import { defaultDeps } from '../core/deps.ts';
import { parseMessage, reply, unsubscribeMessageSchema, wsHandler } from '../core/ws.ts';

/** `{"action":"unsubscribe","clusterId":"c2"}` → `{"type":"UNSUBSCRIBED","clusterId":"c2"}`. */
export const handler = wsHandler('unsubscribe', async (event) => {
  const { clusterId } = parseMessage(unsubscribeMessageSchema, event);
  await unsubscribe(defaultDeps(), event.requestContext.connectionId, clusterId);
  return reply({ type: 'UNSUBSCRIBED', clusterId });
});
