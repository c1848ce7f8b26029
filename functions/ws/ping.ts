import { parseMessage, pingMessageSchema, reply, wsHandler } from '../core/ws-handler.ts';

/** `{"action":"ping"}` → `{"type":"PONG","at":…}`; keeps idle connections open (API Gateway drops them after 10 idle minutes). */
export const handler = wsHandler('ping', async (event) => {
  parseMessage(pingMessageSchema, event);
  return reply({ type: 'PONG', at: new Date().toISOString() });
});
