/**
 * The `@connections` management API of the local WebSocket API, for the
 * fan-out function's real `ApiGatewayManagementApiClient`:
 *
 * - `POST /@connections/{id}` sends the body bytes as one text message (200),
 * - `GET /@connections/{id}` describes the connection (200),
 * - `DELETE /@connections/{id}` closes it (204),
 *
 * and answers 410 `GoneException` for a connection that does not exist, in
 * the error shape the SDK's REST-JSON protocol reads (`x-amzn-ErrorType`).
 *
 * It listens on its own loopback-only port, never on the public one, and
 * also refuses any peer that is not a loopback address.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BodyTooLargeError, readBody } from './http-api.ts';
import { gatewayId } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import { listenOnLoopback } from './loopback.ts';
import type { GatewayCount } from './metrics.ts';
import type { BackendPostOutcome } from './websocket-backend.ts';
import type { ConnectionInfo } from './websocket-connection.ts';

/** PostToConnection's payload limit on AWS (128 KB). */
export const POST_LIMIT_BYTES = 128 * 1024;

export interface ConnectionsBackend {
  post(connectionId: string, data: Buffer): Promise<BackendPostOutcome>;
  info(connectionId: string): ConnectionInfo | undefined;
  disconnect(connectionId: string): boolean;
}

/**
 * The WebSocket API, once it exists. The management API starts first: its URL
 * is one of the handlers' settings, and the WebSocket API needs the handlers.
 */
export class ConnectionsRelay implements ConnectionsBackend {
  private target: ConnectionsBackend | undefined;

  attach(target: ConnectionsBackend): void {
    this.target = target;
  }

  post(connectionId: string, data: Buffer): Promise<BackendPostOutcome> {
    return this.target?.post(connectionId, data) ?? Promise.resolve('gone');
  }

  info(connectionId: string): ConnectionInfo | undefined {
    return this.target?.info(connectionId);
  }

  disconnect(connectionId: string): boolean {
    return this.target?.disconnect(connectionId) ?? false;
  }
}

/**
 * What API Gateway checks before a `@connections` call reaches the connection:
 * IAM (`execute-api:ManageConnections` for the caller's role) and the
 * account's throttle, which every API and every `@connections` call share.
 * Attached once the runtime has read the template (the endpoint starts first:
 * its URL is part of the functions' environment).
 */
/** API Gateway's 403 for an unsigned call, or IAM's refusal of a signed one. */
export interface CallRefusal {
  errorType: 'MissingAuthenticationTokenException' | 'AccessDeniedException';
  body: Record<string, string>;
}

export interface CallGuard {
  /** The refusal when the call is unsigned or IAM refuses it, else undefined. */
  authorize(req: IncomingMessage, method: string, stage: string | undefined, connectionId: string): Promise<CallRefusal | undefined>;
  /** False when the call is throttled. */
  admit(): boolean;
}

export class CallGuards {
  private guard: CallGuard | undefined;
  private counter: GatewayCount | undefined;

  attach(guard: CallGuard, count?: GatewayCount): void {
    this.guard = guard;
    this.counter = count;
  }

  /** Counts a call by its route (`POST @connections`, …) and status, once the runtime counts (local/metrics.ts). */
  count(route: string, status: number): void {
    this.counter?.('connections', route, status);
  }

  authorize(req: IncomingMessage, method: string, stage: string | undefined, connectionId: string): Promise<CallRefusal | undefined> {
    return this.guard?.authorize(req, method, stage, connectionId) ?? Promise.resolve(undefined);
  }

  admit(): boolean {
    return this.guard?.admit() ?? true;
  }
}

export interface ManagementApi {
  /** The callback URL for `WEBSOCKET_CALLBACK_URL`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
/** `/@connections/{id}`, optionally under a stage segment as on AWS (`/prod/@connections/{id}`). */
const PATH = /^(?:\/([^/@][^/]*))?\/@connections\/([^/?]+)$/;

function send(res: ServerResponse, status: number, body?: unknown, errorType?: string): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  // One writeHead with every header: this runs once per delivered message.
  const headers: Record<string, string | number> = { 'x-amzn-RequestId': gatewayId(), 'content-length': Buffer.byteLength(text) };
  if (errorType) headers['x-amzn-ErrorType'] = errorType;
  if (text) headers['content-type'] = 'application/json';
  res.writeHead(status, headers);
  res.end(text);
}

const GONE = { message: 'Gone' };

/** `send`, counted as the gateway counts the call (`POST @connections`, …) with its status. */
const counted = (req: IncomingMessage, res: ServerResponse, guards: CallGuards) => (status: number, body?: unknown, errorType?: string) => {
  guards.count(`${req.method ?? 'GET'} @connections`, status);
  send(res, status, body, errorType);
};

export function managementListener(backend: ConnectionsBackend, log: RuntimeLog, guards: CallGuards = new CallGuards()) {
  // Keep-alive sockets already found to come from a loopback address (the check runs once per socket, not per post).
  const loopbackSockets = new WeakSet<IncomingMessage['socket']>();
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const answer = counted(req, res, guards);
    try {
      if (!loopbackSockets.has(req.socket)) {
        if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) {
          answer(403, { message: 'Forbidden' }, 'ForbiddenException');
          req.socket.destroy();
          return;
        }
        loopbackSockets.add(req.socket);
      }
      const match = PATH.exec((req.url ?? '').split('?')[0] ?? '');
      let connectionId: string | undefined;
      try {
        connectionId = match?.[2] === undefined ? undefined : decodeURIComponent(match[2]);
      } catch {
        connectionId = undefined;
      }
      if (connectionId === undefined) {
        req.resume();
        answer(404, { message: 'Not Found' }, 'NotFoundException');
        return;
      }
      if (!guards.admit()) {
        req.resume();
        answer(429, { message: 'Too Many Requests' }, 'LimitExceededException');
        return;
      }
      const refusal = await guards.authorize(req, req.method ?? 'GET', match?.[1], connectionId);
      if (refusal !== undefined) {
        req.resume();
        answer(403, refusal.body, refusal.errorType);
        return;
      }
      switch (req.method) {
        case 'POST': {
          let data: Buffer;
          try {
            data = await readBody(req, POST_LIMIT_BYTES);
          } catch (err) {
            if (err instanceof BodyTooLargeError) {
              answer(413, { message: `Message too long; limit is ${POST_LIMIT_BYTES} bytes` }, 'PayloadTooLargeException');
              req.socket.destroySoon();
            } else res.destroy();
            return;
          }
          const outcome = await backend.post(connectionId, data);
          if (outcome === 'gone') answer(410, GONE, 'GoneException');
          else answer(200);
          return;
        }
        case 'GET': {
          req.resume();
          const info = backend.info(connectionId);
          if (!info) return answer(410, GONE, 'GoneException');
          // The wire names of GetConnection (the SDK maps them to ConnectedAt, Identity, LastActiveAt).
          answer(200, {
            connectedAt: new Date(info.connectedAt).toISOString(),
            identity: { sourceIp: info.sourceIp, userAgent: info.userAgent },
            lastActiveAt: new Date(info.lastActiveAt).toISOString(),
          });
          return;
        }
        case 'DELETE': {
          req.resume();
          if (!backend.disconnect(connectionId)) return answer(410, GONE, 'GoneException');
          answer(204);
          return;
        }
        default:
          req.resume();
          answer(405, { message: 'Method Not Allowed' }, 'MethodNotAllowedException');
      }
    } catch (err) {
      log.error('@connections request failed', { error: err as Error });
      answer(500, { message: 'Internal server error' }, 'InternalServerErrorException');
    }
  };
}

/** Starts the management API on a random loopback port. */
export async function startManagementApi(backend: ConnectionsBackend, log: RuntimeLog, guards?: CallGuards): Promise<ManagementApi> {
  return listenOnLoopback(createServer(managementListener(backend, log, guards)));
}
