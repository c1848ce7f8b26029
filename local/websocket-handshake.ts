/**
 * The handshake of the local WebSocket API: an upgrade request on the
 * WebSocket path first runs the `$connect` authorizer (with auth on) and
 * `$connect` (with the query string); only a 2xx result completes the
 * upgrade, any other status refuses it with that status and body. The
 * connection exists from the moment `$connect` starts, as on AWS: posts for
 * it are held from then on.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { toErrorBody } from '../functions/core/errors.ts';
import { authorizeConnect, type ConnectAuthorizer } from './authorizers.ts';
import type { RuntimeLog } from './log.ts';
import type { GatewayCount } from './metrics.ts';
import { THROTTLED_BODY, type StageThrottle } from './throttle.ts';
import { newConnection, type Connection } from './websocket-connection.ts';
import { bodyOf, isRecord, statusOf, type WsIntegration } from './websocket-integration.ts';

export interface HandshakeOptions {
  /** The URL path that accepts upgrades. */
  path: string;
  /** The largest client message the socket accepts. */
  maxMessageBytes: number;
  log: RuntimeLog;
  apiId: string;
  stage: string;
  /** With auth on: the `$connect` Lambda authorizer (local/authorizers.ts). */
  authorizer?: ConnectAuthorizer;
  /** The stage's throttle: `$connect` takes a token. */
  throttle?: StageThrottle;
  /** Counts each `$connect` by its status (local/metrics.ts). @default none */
  count?: GatewayCount;
}

/** What the handshake asks of the API that keeps the connections. */
export interface HandshakeHooks {
  /** True once the API is shutting down: upgrades are refused with 503. */
  closing(): boolean;
  /** The connection exists: from here on, posts for its id are held rather than answered 410. */
  admit(conn: Connection): void;
  /** The connection never opened and `$connect` recorded nothing to undo. */
  forget(conn: Connection): void;
  /** The connection is gone after `$connect` accepted it: `$disconnect` runs. */
  finish(conn: Connection, code: number, reason: string): void;
  /** The socket is open. */
  opened(conn: Connection, ws: WebSocket): void;
}

const errorJson = (err: unknown): string => JSON.stringify(toErrorBody(err).body);

/** Headers with their original spelling, as the WebSocket `$connect` event carries them. */
function rawHeaders(req: IncomingMessage): { headers: Record<string, string>; multiValueHeaders: Record<string, string[]> } {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i] as string;
    const value = req.rawHeaders[i + 1] as string;
    (multiValueHeaders[name] ??= []).push(value);
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  return { headers, multiValueHeaders };
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const key = req.headers['sec-websocket-key'];
  return (
    req.method === 'GET' &&
    req.headers.upgrade?.toLowerCase() === 'websocket' &&
    typeof key === 'string' &&
    /^[+/0-9A-Za-z]{22}==$/.test(key) &&
    (req.headers['sec-websocket-version'] === '13' || req.headers['sec-websocket-version'] === '8')
  );
}

/** Refuses an upgrade with a plain HTTP response. */
export function refuseUpgrade(socket: Duplex, statusCode: number, body = '', headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Error'}`, 'Connection: close'];
  const all = { 'content-type': 'application/json; charset=utf-8', ...headers, 'content-length': String(Buffer.byteLength(body)) };
  for (const [name, value] of Object.entries(all)) {
    if (!/[\r\n]/.test(name + value)) lines.push(`${name}: ${value}`);
  }
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function splitUrl(url: string): { pathname: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { pathname: url, query: '' } : { pathname: url.slice(0, q), query: url.slice(q + 1) };
}

export class Handshake {
  private readonly wss: WebSocketServer;
  private readonly protocols = new WeakMap<IncomingMessage, string>();

  constructor(
    private readonly options: HandshakeOptions,
    private readonly integration: WsIntegration,
    private readonly hooks: HandshakeHooks,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxMessageBytes,
      perMessageDeflate: false,
      // API Gateway completes a subprotocol handshake only when `$connect` returns the header.
      handleProtocols: (_protocols, req) => this.protocols.get(req) ?? false,
    });
  }

  /** Handles an HTTP upgrade request (the server's `upgrade` event). */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', (err) => this.options.log.debug('WebSocket socket error', { error: err }));
    const { pathname, query } = splitUrl(req.url ?? '/');
    const refusal = this.refusalOf(req, pathname);
    if (refusal) return this.refuse(socket, refusal.status, refusal.body);
    if (this.options.throttle && !this.options.throttle.admit('$connect')) return this.refuse(socket, 429, THROTTLED_BODY);
    const now = Date.now();
    const conn = newConnection(req, now);
    this.hooks.admit(conn);
    const event = this.connectEvent(req, conn, query, now);
    const { authorizer } = this.options;
    if (authorizer && !(await this.authorizeConnection(authorizer, conn, event, socket))) return;
    const result = await this.runConnect(event);
    const status = statusOf(result);
    if (status < 200 || status > 299) {
      this.hooks.forget(conn);
      this.refuse(socket, status, bodyOf(result) ?? '');
      this.options.log.debug(`$connect refused ${conn.id} with ${status}`);
      return;
    }
    this.options.count?.('websocket', '$connect', status);
    this.completeHandshake(req, socket, head, conn, result);
  }

  /** Refuses an upgrade, counted as a `$connect` with that status. */
  private refuse(socket: Duplex, status: number, body: string): void {
    this.options.count?.('websocket', '$connect', status);
    refuseUpgrade(socket, status, body);
  }

  /** Stops accepting upgrades' sockets. */
  close(): void {
    this.wss.close();
  }

  /** Why an upgrade request is refused before any handler runs, if it is. */
  private refusalOf(req: IncomingMessage, pathname: string): { status: number; body: string } | undefined {
    const { path } = this.options;
    if (this.hooks.closing()) return { status: 503, body: errorJson(new Error('shutting down')) };
    if (pathname !== path) {
      return { status: 404, body: JSON.stringify({ error: { code: 'NOT_FOUND', message: `no WebSocket API at ${pathname.slice(0, 200)}; use ${path}` } }) };
    }
    if (!isWebSocketUpgrade(req)) {
      return { status: 400, body: JSON.stringify({ error: { code: 'VALIDATION_FAILED', message: 'not a valid WebSocket upgrade request' } }) };
    }
    return undefined;
  }

  /** The `$connect` event: the request's headers and query string, as API Gateway passes them. */
  private connectEvent(req: IncomingMessage, conn: Connection, query: string, now: number): Record<string, unknown> {
    const queryStringParameters: Record<string, string> = {};
    const multiValueQueryStringParameters: Record<string, string[]> = {};
    for (const [key, value] of new URLSearchParams(query)) {
      queryStringParameters[key] = value;
      (multiValueQueryStringParameters[key] ??= []).push(value);
    }
    const event: Record<string, unknown> = {
      ...rawHeaders(req),
      requestContext: this.integration.requestContext(conn, '$connect', 'CONNECT', now),
      isBase64Encoded: false,
    };
    if (Object.keys(queryStringParameters).length > 0) {
      event.queryStringParameters = queryStringParameters;
      event.multiValueQueryStringParameters = multiValueQueryStringParameters;
    }
    return event;
  }

  /** Runs the `$connect` authorizer; false when it refused (the upgrade is answered then). */
  private async authorizeConnection(authorizer: ConnectAuthorizer, conn: Connection, event: Record<string, unknown>, socket: Duplex): Promise<boolean> {
    const outcome = await this.integration.track(authorizeConnect(authorizer, event, this.options.apiId, this.options.stage));
    if (outcome.kind === 'refuse') {
      this.hooks.forget(conn);
      this.refuse(socket, outcome.reply.statusCode, outcome.reply.body);
      this.options.log.debug(`$connect authorizer refused ${conn.id} with ${outcome.reply.statusCode}`);
      return false;
    }
    conn.authorizer = outcome.context;
    event.requestContext = { ...(event.requestContext as Record<string, unknown>), authorizer: outcome.context };
    return true;
  }

  private async runConnect(event: Record<string, unknown>): Promise<unknown> {
    try {
      return await this.integration.track(this.integration.invoke('$connect', event));
    } catch (err) {
      this.options.log.error('$connect failed inside the runtime; refused with 500', { error: err as Error });
      return { statusCode: 500, body: errorJson(err) };
    }
  }

  /** `$connect` accepted: completes the WebSocket handshake, with the subprotocol it chose. */
  private completeHandshake(req: IncomingMessage, socket: Duplex, head: Buffer, conn: Connection, result: unknown): void {
    if (socket.destroyed || !socket.writable || this.hooks.closing()) {
      // The client left (or the runtime is stopping) while `$connect` ran: the
      // connection never opened, but `$connect` already recorded it, so clean up.
      socket.destroy();
      this.hooks.finish(conn, 1006, 'connection closed during $connect');
      return;
    }
    const headers = isRecord(result) && isRecord(result.headers) ? result.headers : {};
    const protocolHeader = Object.entries(headers).find(([name]) => name.toLowerCase() === 'sec-websocket-protocol')?.[1];
    if (typeof protocolHeader === 'string') this.protocols.set(req, protocolHeader);
    // If the handshake itself fails, `ws` destroys the socket without calling back.
    socket.once('close', () => {
      if (conn.state === 'connecting') this.hooks.finish(conn, 1006, 'handshake failed');
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => this.hooks.opened(conn, ws));
  }
}
