/**
 * Every HTTP and WebSocket route, defined once. The CDK stack creates one
 * route and one function per entry; the local runtime dispatches with
 * `matchHttpRoute`; the `$default` route answers everything else.
 */

/**
 * The template metadata key that names a function's handler module (`functions/http/register.ts`):
 * the CDK stack writes it on every function, the local runtime reads it to run the same module.
 */
export const HANDLER_ENTRY_METADATA = 'roster:entry';

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/**
 * Who may call a route once auth is on: anyone (`public`), any token for the
 * route's cluster (`read`: reader, node, admin), a token that may change the
 * cluster (`write`: node, admin), or only an admin (`admin`).
 */
export type RouteAccess = 'public' | 'read' | 'write' | 'admin';

export interface HttpRouteSpec {
  method: HttpMethod;
  access: RouteAccess;
  /** API Gateway route path, with `{param}` segments. */
  path: string;
  /** Module under `functions/http/` whose `handler` serves the route. */
  handler: string;
  /**
   * The query parameters the route takes. Any other is refused with 400
   * VALIDATION_FAILED before the route's logic runs (`httpHandler`): a
   * misspelt flag (`?stauts=all`) must not be silently ignored. The OpenAPI
   * document lists exactly these (test/contract/documents.unit.test.ts).
   */
  query: readonly string[];
}

export const HTTP_ROUTES: readonly HttpRouteSpec[] = [
  { method: 'PUT', path: '/v1/clusters/{clusterId}/nodes/{nodeId}', handler: 'register', access: 'write', query: [] },
  { method: 'POST', path: '/v1/clusters/{clusterId}/nodes/{nodeId}/keepalive', handler: 'keepalive', access: 'write', query: [] },
  { method: 'DELETE', path: '/v1/clusters/{clusterId}/nodes/{nodeId}', handler: 'deregister', access: 'write', query: ['incarnation'] },
  { method: 'GET', path: '/v1/clusters/{clusterId}/nodes/{nodeId}', handler: 'get-node', access: 'read', query: [] },
  { method: 'GET', path: '/v1/clusters/{clusterId}/nodes', handler: 'list-nodes', access: 'read', query: ['status', 'limit', 'cursor'] },
  { method: 'GET', path: '/v1/clusters', handler: 'list-clusters', access: 'admin', query: [] },
  { method: 'GET', path: '/v1/health', handler: 'health', access: 'public', query: [] },
  // The HTTP API's OpenAPI document (contract/openapi.json), for clients in any language.
  { method: 'GET', path: '/v1/openapi.json', handler: 'openapi', access: 'public', query: [] },
  // The web console (console/). Public: the page holds no data; its API calls carry the token.
  { method: 'GET', path: '/console', handler: 'console', access: 'public', query: [] },
  { method: 'GET', path: '/', handler: 'console', access: 'public', query: [] },
];

/** The module that answers every request no route matched (404, or 405 with `Allow`). */
export const HTTP_DEFAULT_HANDLER = 'not-found';

export interface WsRouteSpec {
  routeKey: string;
  /** Module under `functions/ws/`. */
  handler: string;
}

export const WS_ROUTES: readonly WsRouteSpec[] = [
  { routeKey: '$connect', handler: 'connect' },
  { routeKey: '$disconnect', handler: 'disconnect' },
  { routeKey: 'subscribe', handler: 'subscribe' },
  { routeKey: 'unsubscribe', handler: 'unsubscribe' },
  { routeKey: 'ping', handler: 'ping' },
  { routeKey: '$default', handler: 'default' },
];

/** WebSocket route selection: the `action` field of each client message. */
export const WS_ROUTE_SELECTION = '$request.body.action';

/** The path parameters of `path` under a route path (`{param}` matches one non-empty segment), or undefined. */
export function matchPath(template: string, path: string): Record<string, string> | undefined {
  const want = template.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] as string;
    const g = got[i] as string;
    if (w.startsWith('{') && w.endsWith('}')) {
      if (g === '') return undefined;
      let value: string;
      try {
        value = decodeURIComponent(g);
      } catch {
        value = g;
      }
      params[w.slice(1, -1)] = value;
    } else if (w !== g) return undefined;
  }
  return params;
}

export type RouteMatch =
  | { kind: 'route'; route: HttpRouteSpec; params: Record<string, string> }
  | { kind: 'method-not-allowed'; allow: HttpMethod[] }
  | { kind: 'not-found' };

/** Finds the route for a request the way API Gateway does: exact segments, `{param}` matching one segment. */
export function matchHttpRoute(method: string, path: string): RouteMatch {
  const allow: HttpMethod[] = [];
  for (const route of HTTP_ROUTES) {
    const params = matchPath(route.path, path);
    if (!params) continue;
    if (route.method === method) return { kind: 'route', route, params };
    allow.push(route.method);
  }
  return allow.length > 0 ? { kind: 'method-not-allowed', allow } : { kind: 'not-found' };
}
