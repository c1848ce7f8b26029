/**
 * The WebSocket side of every handler. API Gateway sends a handler's
 * response body back to the client (route responses are enabled), so replies
 * to client messages are plain return values: `SUBSCRIBED`, `UNSUBSCRIBED`,
 * `PONG`, or `ERROR` with the same `{code, message}` as the HTTP API.
 */
import { toErrorBody } from './errors.ts';
import { logger } from './log.ts';
import { PayloadTooLargeError, ValidationError } from './errors.ts';
import { idSchema, parseWith } from './validation.ts';
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
    try {
      return await fn(event);
    } catch (err) {
      const { statusCode, body, internal } = toErrorBody(err);
      if (internal) logger.error('websocket route failed', { route, connectionId: event.requestContext.connectionId, error: err as Error });
      return reply({ type: 'ERROR', ...body }, statusCode);
    }
  };
}

/** Parses a client message: a JSON object of at most WS_MESSAGE_LIMIT_BYTES. */
export function messageOf(event: WsEvent): unknown {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > WS_MESSAGE_LIMIT_BYTES) throw new PayloadTooLargeError(WS_MESSAGE_LIMIT_BYTES);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError('message is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError('message must be a JSON object');
  }
  return parsed;
}

const clusterMessage = (action: string) =>
  z.strictObject({ action: z.literal(action), clusterId: idSchema });

export const subscribeMessageSchema = clusterMessage('subscribe');
export const unsubscribeMessageSchema = clusterMessage('unsubscribe');
export const pingMessageSchema = z.strictObject({ action: z.literal('ping') });

export function parseMessage<T>(schema: z.ZodType<T>, event: WsEvent): T {
  return parseWith(schema, messageOf(event), 'message');
}
