import { disconnect } from '../core/subscriptions.ts';
import { defaultDeps } from '../core/deps.ts';
import { wsHandler } from '../core/ws-handler.ts';

/** `$disconnect` — removes the connection; a bound node's lease is cut to the grace period. */
export const handler = wsHandler('$disconnect', async (event) => {
  await disconnect(defaultDeps(), event.requestContext.connectionId);
  return { statusCode: 200 };
});
