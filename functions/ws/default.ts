import { RouteNotFoundError } from '../core/errors.ts';
import { messageOf, wsHandler } from '../core/ws-handler.ts';

/** `$default` — a message whose `action` is missing or unknown. */
export const handler = wsHandler('$default', async (event) => {
  messageOf(event); // malformed JSON or an oversized frame gets its own, clearer error
  throw new RouteNotFoundError('unknown action; expected "subscribe", "unsubscribe" or "ping"');
});
