/**
 * API Gateway-shaped events for invoking handler modules directly in tests:
 * HTTP API payload v2 and WebSocket events, routed with the same route table
 * the stack and the local runtime use.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { HTTP_DEFAULT_HANDLER, matchHttpRoute, WS_ROUTES } from '../../functions/core/routes.ts';
import type { WsEvent, WsResult } from '../../functions/core/ws-handler.ts';

type HttpHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
type WsHandlerFn = (event: WsEvent) => Promise<WsResult>;

export interface HttpRequest {
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  /** Sent as-is instead of JSON-encoding `body`. */
  rawBody?: string;
  headers?: Record<string, string>;
  /** What a Lambda authorizer passed on (`requestContext.authorizer.lambda`); absent: no authorizer ran. */
  authorizer?: Record<string, unknown>;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: unknown;
}

export function httpEvent(req: HttpRequest, routeKey: string, pathParameters?: Record<string, string>): APIGatewayProxyEventV2 {
  const rawQueryString = new URLSearchParams(req.query ?? {}).toString();
  const body = req.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const now = Date.now();
  return {
    version: '2.0',
    routeKey,
    rawPath: req.path,
    rawQueryString,
    headers: { 'content-type': 'application/json', ...(req.headers ?? {}) },
    queryStringParameters: req.query && Object.keys(req.query).length > 0 ? req.query : undefined,
    pathParameters,
    requestContext: {
      accountId: '000000000000',
      apiId: 'test',
      domainName: 'test.execute-api.local',
      domainPrefix: 'test',
      http: { method: req.method, path: req.path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'vitest' },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
      ...(req.authorizer ? { authorizer: { lambda: req.authorizer } } : {}),
    },
    body,
    isBase64Encoded: false,
  };
}

/** Routes a request exactly as the HTTP API would and invokes the handler module. */
export async function invokeHttp(req: HttpRequest): Promise<HttpResponse> {
  const match = matchHttpRoute(req.method, req.path);
  const module = match.kind === 'route' ? match.route.handler : HTTP_DEFAULT_HANDLER;
  const routeKey = match.kind === 'route' ? `${match.route.method} ${match.route.path}` : '$default';
  const params = match.kind === 'route' ? match.params : undefined;
  const { handler } = (await import(`../../functions/http/${module}.ts`)) as { handler: HttpHandler };
  const result = await handler(httpEvent(req, routeKey, params));
  const text = result.body ?? '';
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: result.statusCode ?? 200, headers: (result.headers ?? {}) as Record<string, string>, text, json };
}

export function wsEvent(
  connectionId: string,
  routeKey: string,
  eventType: WsEvent['requestContext']['eventType'],
  extra: { query?: Record<string, string>; body?: string; authorizer?: Record<string, unknown> } = {},
): WsEvent {
  return {
    requestContext: {
      connectionId,
      routeKey,
      eventType,
      requestId: randomUUID(),
      connectedAt: Date.now(),
      stage: 'live',
      ...(extra.authorizer ? { authorizer: extra.authorizer } : {}),
    },
    queryStringParameters: extra.query,
    body: extra.body,
    isBase64Encoded: false,
  };
}

async function wsHandler(routeKey: string): Promise<WsHandlerFn> {
  const route = WS_ROUTES.find((r) => r.routeKey === routeKey) ?? WS_ROUTES.find((r) => r.routeKey === '$default');
  const { handler } = (await import(`../../functions/ws/${route?.handler}.ts`)) as { handler: WsHandlerFn };
  return handler;
}

export async function wsConnect(connectionId: string, query: Record<string, string>): Promise<WsResult> {
  return (await wsHandler('$connect'))(wsEvent(connectionId, '$connect', 'CONNECT', { query }));
}

export async function wsDisconnect(connectionId: string): Promise<WsResult> {
  return (await wsHandler('$disconnect'))(wsEvent(connectionId, '$disconnect', 'DISCONNECT'));
}

/** Sends a client message, selecting the route by its `action` like API Gateway does. */
export async function wsMessage(connectionId: string, body: string): Promise<WsResult> {
  let action: unknown;
  try {
    action = (JSON.parse(body) as { action?: unknown }).action;
  } catch {
    action = undefined;
  }
  const routeKey = typeof action === 'string' && !action.startsWith('$') && WS_ROUTES.some((r) => r.routeKey === action) ? action : '$default';
  return (await wsHandler(routeKey))(wsEvent(connectionId, routeKey, 'MESSAGE', { body }));
}
