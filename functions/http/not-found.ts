import { MethodNotAllowedError, RouteNotFoundError } from '../core/errors.ts';
import { httpHandler } from '../core/http-handler.ts';
import { matchHttpRoute } from '../core/routes.ts';

/** `$default` — 405 with `Allow` when the path exists under another method, else 404 NOT_FOUND. */
export const handler = httpHandler('not-found', async (event) => {
  const match = matchHttpRoute(event.requestContext.http.method, event.rawPath);
  if (match.kind === 'method-not-allowed') throw new MethodNotAllowedError(match.allow);
  throw new RouteNotFoundError(`no route for ${event.requestContext.http.method} ${event.rawPath.slice(0, 200)}`);
});
