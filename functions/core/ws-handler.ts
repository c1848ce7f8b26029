/**
 * The WebSocket side of every handler. API Gateway sends a handler's
 * response body back to the client (route responses are enabled), so replies
 * to client messages are plain return values: `SUBSCRIBED`, `UNSUBSCRIBED`,
 * `PONG`, or `ERROR` with the same `{code, message}` as the HTTP API.
 */
import { authorize, authRequired, claimsFromContext, type Claims } from './auth.ts';
import { toErrorBody } from './errors.ts';
import { logger } from './log.ts';
import { codeOf, recordRequest, subjectOf } from './observe.ts';
import type { RouteAccess } from './routes.ts';
import { idSchema, parseJsonObject, parseWith } from './validation.ts';
import { z } from 'zod';

export interface WsEvent {
  requestContext: {
    connectionId: string;
    routeKey: string;
    eventType: 'CONNECT' | 'DISCONNECT' | 'MESSAGE';
    [key: string]: unknown;
  };
  queryStringParameters?: Record<string, string | undefined> | null;
  body?: string | null;
  isBase64Encoded?: boolean;
}

export interface WsResult {
  statusCode: number;
  body?: string;
}

/** Largest client message accepted; real messages are well under 200 bytes. */
export const WS_MESSAGE_LIMIT_BYTES = 4096;

export const reply = (message: Record<string, unknown>, statusCode = 200): WsResult => ({
  statusCode,
  body: JSON.stringify(message),
});

export function wsHandler(route: string, fn: (event: WsEvent) => Promise<WsResult>) {
  return async (event: WsEvent): Promise<WsResult> => {
    const startedAt = Date.now();
    let result: WsResult;
    let code: string | undefined;
    try {
      result = await fn(event);
    } catch (err) {
      code = codeOf(err);
      const { statusCode, body, internal } = toErrorBody(err);
      if (internal) logger.error('websocket route failed', { route, connectionId: event.requestContext.connectionId, error: err as Error });
      result = reply({ type: 'ERROR', ...body }, statusCode);
    }
    recordRequest({
      route,
      requestId: typeof event.requestContext.requestId === 'string' ? event.requestContext.requestId : undefined,
      connectionId: event.requestContext.connectionId,
      clusterId: event.queryStringParameters?.clusterId ?? clusterIdOfMessage(event),
      nodeId: event.queryStringParameters?.nodeId,
      principal: subjectOf(event.requestContext.authorizer),
      status: result.statusCode,
      code,
      startedAt,
    });
    return result;
  };
}

/** The `clusterId` of a subscribe/unsubscribe message, for the log line only (never trusted). */
function clusterIdOfMessage(event: WsEvent): unknown {
  if (!event.body || event.body.length > WS_MESSAGE_LIMIT_BYTES) return undefined;
  try {
    const parsed: unknown = JSON.parse(event.body);
    return typeof parsed === 'object' && parsed !== null ? (parsed as { clusterId?: unknown }).clusterId : undefined;
  } catch {
    return undefined;
  }
}

/** Parses a client message: a JSON object of at most WS_MESSAGE_LIMIT_BYTES. */
export function messageOf(event: WsEvent): unknown {
  return parseJsonObject(event.body ?? '', event.isBase64Encoded === true, WS_MESSAGE_LIMIT_BYTES, 'message');
}

const clusterMessage = (action: string) =>
  z.strictObject({ action: z.literal(action), clusterId: idSchema });

export const subscribeMessageSchema = clusterMessage('subscribe');
export const unsubscribeMessageSchema = clusterMessage('unsubscribe');
export const pingMessageSchema = z.strictObject({ action: z.literal('ping') });

export function parseMessage<T>(schema: z.ZodType<T>, event: WsEvent): T {
  return parseWith(schema, messageOf(event), 'message');
}

/**
 * The claims of the token the connection was opened with (401 when there are
 * none), or undefined when auth is off. API Gateway passes the `$connect`
 * authorizer's context on `$connect` and on every later message of the
 * connection (`requestContext.authorizer`), so each message is checked
 * against that token. A token that has expired since is refused (401) for
 * new actions; subscriptions it already made last until the connection ends
 * (API Gateway ends every connection within 2 h).
 */
export function wsClaims(event: WsEvent): Claims | undefined {
  return authRequired() ? claimsFromContext(event.requestContext.authorizer) : undefined;
}

/** Checks that the connection's token may use `clusterId` with `access` (401, 403); nothing when auth is off. */
export function authorizeWs(event: WsEvent, access: RouteAccess, clusterId: string): void {
  const claims = wsClaims(event);
  if (claims) authorize(access, claims, clusterId);
}
