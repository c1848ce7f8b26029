/**
 * The WebSocket API half of API Gateway.
 *
 * - An upgrade request on the WebSocket path first runs `$connect` (with the
 *   query string); only a 2xx result completes the upgrade, any other status
 *   refuses it with that status and body. The connection exists from the
 *   moment `$connect` returns, as on AWS.
 * - Each client message is routed by the route selection expression
 *   (`$request.body.action`), falling back to `$default`; the handler's
 *   `body` is sent back to the client (route responses). Messages of one
 *   connection are handled one after another, in arrival order.
 * - `$disconnect` runs when a socket closes for any reason: close frame,
 *   dropped TCP connection, idle or age limit, or a `DELETE` on `@connections`.
 *   It does not run when the runtime itself shuts down (see `closeAll`).
 * - `post` is the `@connections` backend. A post for a connection whose
 *   `$connect` is still running is queued and delivered, in order, once the
 *   socket is open, instead of being lost or answered 410.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { toErrorBody } from '../functions/core/errors.ts';
import { authorizeConnect, type ConnectAuthorizer } from './authorizers.ts';
import { invokeHandler, type LambdaHandler } from './handlers.ts';
import { gatewayId, gatewayTime } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import type { GatewayCount } from './metrics.ts';
import { THROTTLED_BODY, type StageThrottle } from './throttle.ts';

/** API Gateway's limits for WebSocket APIs. */
export const WS_LIMITS = {
  /** Largest client message (API Gateway: 128 KB). */
  maxMessageBytes: 128 * 1024,
  /** Idle connection timeout (API Gateway: 10 minutes). */
  idleTimeoutMs: 10 * 60_000,
  /** Maximum connection duration (API Gateway: 2 hours). */
  maxConnectionMs: 2 * 3600_000,
  /** Integration timeout (API Gateway: 29 seconds). */
  integrationTimeoutMs: 29_000,
} as const;

/** How long a post waits for a connection whose `$connect` has not returned yet. */
const PENDING_POST_TIMEOUT_MS = 30_000;
/** Client messages queued on one connection before it is closed for flooding. */
const MAX_QUEUED_MESSAGES = 1000;

export type PostOutcome = 'delivered' | 'gone';

export interface ConnectionInfo {
  connectedAt: number;
  lastActiveAt: number;
  sourceIp: string;
  userAgent: string;
}

interface PendingPost {
  data: Buffer;
  settle: (outcome: PostOutcome) => void;
}

interface Connection extends ConnectionInfo {
  id: string;
  state: 'connecting' | 'open' | 'closed';
  domainName: string;
  ws?: WebSocket;
  pending: PendingPost[];
  /** Client messages, handled one at a time. */
  chain: Promise<void>;
  queued: number;
  /** The `$connect` authorizer's context and principalId, passed on with every event of the connection. */
  authorizer?: Record<string, unknown>;
  idleTimer?: NodeJS.Timeout;
  ageTimer?: NodeJS.Timeout;
}

/** One route of the WebSocket API, as the template defines it. */
export interface WsRoute {
  handler: LambdaHandler;
  /** The function's name, for the invocation's context. */
  functionName: string;
  /** API Gateway's wait for the integration (at most 29 s). */
  timeoutMs: number;
  /** Whether the route has a route response: only then is the integration's answer sent back to the client. */
  respond: boolean;
}

export interface WebSocketApiOptions {
  /** Routes by route key (`$connect`, `$disconnect`, `$default`, custom routes). */
  routes: Map<string, WsRoute>;
  /** `$request.body.action`, as the API's `RouteSelectionExpression`. */
  routeSelectionExpression: string;
  log: RuntimeLog;
  apiId: string;
  stage: string;
  /** The URL path that accepts upgrades. @default '/ws' */
  path?: string;
  limits?: Partial<typeof WS_LIMITS>;
  /** With auth on: the `$connect` Lambda authorizer (local/authorizers.ts). */
  authorizer?: ConnectAuthorizer;
  /** The stage's throttle: `$connect` and each message's route take a token (local/throttle.ts). @default none */
  throttle?: StageThrottle;
  /** Counts `$connect`, each message and `$disconnect` by route key and status (local/metrics.ts). @default none */
  count?: GatewayCount;
}

/** The field of a client message that selects its route, from `$request.body.<field>`. */
function selectionPath(expression: string): string[] {
  const match = /^\$request\.body\.(.+)$/.exec(expression);
  if (!match?.[1]) throw new Error(`unsupported route selection expression ${expression}`);
  return match[1].split('.');
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const toBuffer = (data: RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);

function statusOf(result: unknown): number {
  if (isRecord(result) && typeof result.statusCode === 'number') return result.statusCode;
  // Lambda proxy integrations that return no status count as success.
  return 200;
}

function bodyOf(result: unknown): string | undefined {
  if (isRecord(result)) return typeof result.body === 'string' ? result.body : undefined;
  return typeof result === 'string' ? result : undefined;
}

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

const errorJson = (err: unknown): string => JSON.stringify(toErrorBody(err).body);

function splitUrl(url: string): { pathname: string; query: string } {
  const q = url.indexOf('?');
  return q < 0 ? { pathname: url, query: '' } : { pathname: url.slice(0, q), query: url.slice(q + 1) };
}

/** A connection whose `$connect` is about to run. */
function newConnection(req: IncomingMessage, now: number): Connection {
  return {
    id: gatewayId(),
    state: 'connecting',
    connectedAt: now,
    lastActiveAt: now,
    sourceIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
    userAgent: req.headers['user-agent'] ?? '',
    domainName: req.headers.host ?? '127.0.0.1',
    pending: [],
    chain: Promise.resolve(),
    queued: 0,
  };
}

export class WebSocketApi {
  private readonly connections = new Map<string, Connection>();
  private readonly wss: WebSocketServer;
  private readonly protocols = new WeakMap<IncomingMessage, string>();
  private readonly customRoutes: Set<string>;
  private readonly selection: string[];
  private readonly limits: typeof WS_LIMITS;
  private readonly inflight = new Set<Promise<unknown>>();
  private closing = false;

  constructor(private readonly options: WebSocketApiOptions) {
    this.limits = { ...WS_LIMITS, ...options.limits };
    this.customRoutes = new Set([...options.routes.keys()].filter((k) => !k.startsWith('$')));
    this.selection = selectionPath(options.routeSelectionExpression);
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: this.limits.maxMessageBytes,
      perMessageDeflate: false,
      // API Gateway completes a subprotocol handshake only when `$connect` returns the header.
      handleProtocols: (_protocols, req) => this.protocols.get(req) ?? false,
    });
  }

  get path(): string {
    return this.options.path ?? '/ws';
  }

  get size(): number {
    return this.connections.size;
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
    // From here on, posts for this id are queued rather than answered 410.
    this.connections.set(conn.id, conn);
    const event = this.connectEvent(req, conn, query, now);
    const { authorizer } = this.options;
    if (authorizer && !(await this.authorizeConnection(authorizer, conn, event, socket))) return;
    const result = await this.runConnect(event);
    const status = statusOf(result);
    if (status < 200 || status > 299) {
      this.forget(conn);
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

  /** Why an upgrade request is refused before any handler runs, if it is. */
  private refusalOf(req: IncomingMessage, pathname: string): { status: number; body: string } | undefined {
    if (this.closing) return { status: 503, body: errorJson(new Error('shutting down')) };
    if (pathname !== this.path) {
      return { status: 404, body: JSON.stringify({ error: { code: 'NOT_FOUND', message: `no WebSocket API at ${pathname.slice(0, 200)}; use ${this.path}` } }) };
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
      requestContext: this.requestContext(conn, '$connect', 'CONNECT', now),
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
    const outcome = await this.track(authorizeConnect(authorizer, event, this.options.apiId, this.options.stage));
    if (outcome.kind === 'refuse') {
      this.forget(conn);
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
      return await this.track(this.invoke('$connect', event));
    } catch (err) {
      this.options.log.error('$connect failed inside the runtime; refused with 500', { error: err as Error });
      return { statusCode: 500, body: errorJson(err) };
    }
  }

  /** `$connect` accepted: completes the WebSocket handshake, with the subprotocol it chose. */
  private completeHandshake(req: IncomingMessage, socket: Duplex, head: Buffer, conn: Connection, result: unknown): void {
    if (socket.destroyed || !socket.writable || this.closing) {
      // The client left (or the runtime is stopping) while `$connect` ran: the
      // connection never opened, but `$connect` already recorded it, so clean up.
      socket.destroy();
      this.finish(conn, 1006, 'connection closed during $connect');
      return;
    }
    const headers = isRecord(result) && isRecord(result.headers) ? result.headers : {};
    const protocolHeader = Object.entries(headers).find(([name]) => name.toLowerCase() === 'sec-websocket-protocol')?.[1];
    if (typeof protocolHeader === 'string') this.protocols.set(req, protocolHeader);
    // If the handshake itself fails, `ws` destroys the socket without calling back.
    socket.once('close', () => {
      if (conn.state === 'connecting') this.finish(conn, 1006, 'handshake failed');
    });
    this.wss.handleUpgrade(req, socket, head, (ws) => this.opened(conn, ws));
  }

  private opened(conn: Connection, ws: WebSocket): void {
    conn.ws = ws;
    conn.state = 'open';
    conn.lastActiveAt = Date.now();
    ws.on('message', (data, isBinary) => this.onMessage(conn, toBuffer(data), isBinary));
    ws.on('close', (code, reason) => this.finish(conn, code, reason.toString()));
    ws.on('error', (err) => this.options.log.debug('WebSocket error', { connectionId: conn.id, error: err }));
    this.armIdleTimer(conn, ws, this.limits.idleTimeoutMs);
    conn.ageTimer = setTimeout(() => ws.close(1001, 'Going away'), this.limits.maxConnectionMs).unref();
    // Posts that arrived while `$connect` ran, in their order.
    const pending = conn.pending.splice(0);
    for (const post of pending) void this.send(conn, post.data).then(post.settle);
    this.options.log.debug(`connected ${conn.id}`, { pendingPosts: pending.length });
  }

  /** Activity: the idle timer looks at `lastActiveAt` when it fires (no timer work per message). */
  private touch(conn: Connection): void {
    conn.lastActiveAt = Date.now();
  }

  /** Closes the connection once it has been idle for the idle timeout, measured from its last activity. */
  private armIdleTimer(conn: Connection, ws: WebSocket, delayMs: number): void {
    conn.idleTimer = setTimeout(() => {
      const idleMs = Date.now() - conn.lastActiveAt;
      if (idleMs >= this.limits.idleTimeoutMs) ws.close(1001, 'Going away');
      else this.armIdleTimer(conn, ws, this.limits.idleTimeoutMs - idleMs);
    }, delayMs).unref();
  }

  private requestContext(conn: Connection, routeKey: string, eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT', now: number) {
    const requestId = gatewayId();
    return {
      routeKey,
      eventType,
      extendedRequestId: requestId,
      requestTime: gatewayTime(now),
      messageDirection: 'IN',
      stage: this.options.stage,
      connectedAt: conn.connectedAt,
      requestTimeEpoch: now,
      identity: { sourceIp: conn.sourceIp, userAgent: conn.userAgent },
      requestId,
      domainName: conn.domainName,
      connectionId: conn.id,
      apiId: this.options.apiId,
      ...(conn.authorizer ? { authorizer: conn.authorizer } : {}),
    };
  }

  private invoke(routeKey: string, event: unknown): Promise<unknown> {
    const route = this.options.routes.get(routeKey);
    if (!route) return Promise.reject(new Error(`no WebSocket route ${routeKey}`));
    return invokeHandler(route.handler, event, route.functionName, Math.min(route.timeoutMs, this.limits.integrationTimeoutMs));
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inflight.add(promise);
    const done = () => this.inflight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** The route a message selects: the value of the selection field if it names a custom route, else `$default`. */
  selectRoute(text: string): string {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return '$default';
    }
    for (const key of this.selection) value = isRecord(value) ? value[key] : undefined;
    return typeof value === 'string' && this.customRoutes.has(value) ? value : '$default';
  }

  private onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    this.touch(conn);
    if (conn.queued >= MAX_QUEUED_MESSAGES) {
      conn.ws?.close(1008, 'too many messages in flight');
      return;
    }
    conn.queued++;
    const received = Date.now();
    conn.chain = conn.chain.then(async () => {
      try {
        const text = isBinary ? undefined : data.toString('utf8');
        const routeKey = text === undefined ? '$default' : this.selectRoute(text);
        const requestContext = { ...this.requestContext(conn, routeKey, 'MESSAGE', received), messageId: gatewayId() };
        if (this.options.throttle && !this.options.throttle.admit(routeKey)) {
          // API Gateway's own error frame, as for its other errors: the message, the connection and the request.
          this.options.count?.('websocket', routeKey, 429);
          const frame = JSON.stringify({ ...(JSON.parse(THROTTLED_BODY) as object), connectionId: conn.id, requestId: requestContext.requestId });
          if (conn.ws?.readyState === WebSocket.OPEN) conn.ws.send(frame);
          return;
        }
        const event = {
          requestContext,
          body: text ?? data.toString('base64'),
          isBase64Encoded: text === undefined,
        };
        let body: string | undefined;
        try {
          const result = await this.track(this.invoke(routeKey, event));
          this.options.count?.('websocket', routeKey, statusOf(result));
          body = bodyOf(result);
        } catch (err) {
          this.options.count?.('websocket', routeKey, 500);
          this.options.log.error(`WebSocket route ${routeKey} failed inside the runtime`, { error: err as Error });
          body = JSON.stringify({ type: 'ERROR', ...toErrorBody(err).body });
        }
        const respond = this.options.routes.get(routeKey)?.respond ?? false;
        if (respond && body !== undefined && conn.ws?.readyState === WebSocket.OPEN) conn.ws.send(body);
      } finally {
        conn.queued--;
      }
    }).catch((err: unknown) => this.options.log.error('WebSocket message handling failed', { connectionId: conn.id, error: err as Error }));
  }

  private send(conn: Connection, data: Buffer): Promise<PostOutcome> {
    const ws = conn.ws;
    if (conn.state !== 'open' || !ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve('gone');
    this.touch(conn);
    // Accepted for the connection, as PostToConnection's 200 means: a write that fails later closes the
    // connection ($disconnect runs) and the next post finds it gone. No per-message write callback: this
    // runs once per delivered message.
    ws.send(data, { binary: false });
    return Promise.resolve('delivered');
  }

  /** `POST @connections/{id}`: sends `data` as one text message. */
  post(connectionId: string, data: Buffer): Promise<PostOutcome> {
    const conn = this.connections.get(connectionId);
    if (!conn) return Promise.resolve('gone');
    if (conn.state === 'connecting') {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          conn.pending = conn.pending.filter((p) => p !== post);
          resolve('gone');
        }, PENDING_POST_TIMEOUT_MS).unref();
        const post: PendingPost = {
          data,
          settle: (outcome) => {
            clearTimeout(timer);
            resolve(outcome);
          },
        };
        conn.pending.push(post);
      });
    }
    return this.send(conn, data);
  }

  /** `GET @connections/{id}`. */
  info(connectionId: string): ConnectionInfo | undefined {
    const conn = this.connections.get(connectionId);
    if (!conn || conn.state !== 'open') return undefined;
    return { connectedAt: conn.connectedAt, lastActiveAt: conn.lastActiveAt, sourceIp: conn.sourceIp, userAgent: conn.userAgent };
  }

  /** `DELETE @connections/{id}`: closes the connection; `$disconnect` follows. */
  disconnect(connectionId: string): boolean {
    const conn = this.connections.get(connectionId);
    if (!conn || conn.state !== 'open' || !conn.ws) return false;
    conn.ws.close(1000, 'Goodbye');
    return true;
  }

  private forget(conn: Connection): void {
    conn.state = 'closed';
    this.connections.delete(conn.id);
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.ageTimer);
    for (const post of conn.pending.splice(0)) post.settle('gone');
  }

  /** The connection is gone: forget it and run `$disconnect` after its queued messages. */
  private finish(conn: Connection, code: number, reason: string): void {
    if (conn.state === 'closed') return;
    this.forget(conn);
    this.options.log.debug(`disconnected ${conn.id}`, { code });
    if (this.closing) return;
    const now = Date.now();
    const event = {
      headers: { Host: conn.domainName, 'x-api-key': '', 'X-Forwarded-For': '', 'x-restapi': '' },
      multiValueHeaders: { Host: [conn.domainName], 'x-api-key': [''], 'X-Forwarded-For': [''], 'x-restapi': [''] },
      requestContext: { ...this.requestContext(conn, '$disconnect', 'DISCONNECT', now), disconnectStatusCode: code, disconnectReason: reason },
      isBase64Encoded: false,
    };
    void this.track(
      conn.chain
        .then(() => this.invoke('$disconnect', event))
        .then(
          (result) => {
            this.options.count?.('websocket', '$disconnect', statusOf(result));
            if (statusOf(result) >= 300) this.options.log.warn('$disconnect did not succeed', { connectionId: conn.id, result });
          },
          (err: unknown) => {
            this.options.count?.('websocket', '$disconnect', 500);
            this.options.log.error('$disconnect failed inside the runtime', { connectionId: conn.id, error: err as Error });
          },
        ),
    );
  }

  /**
   * Closes every connection with 1001 (going away), as when API Gateway
   * itself goes away. `$disconnect` is not run for these: the information
   * center stopping is not the nodes' fault, and cutting every bound node's
   * lease would turn a restart of Roster into a `NODE_DOWN` storm. Stale
   * connection records are removed later by the fan-out (410) or their TTL.
   */
  async closeAll(timeoutMs = 2000): Promise<void> {
    this.closing = true;
    const waits: Promise<void>[] = [];
    for (const conn of [...this.connections.values()]) {
      const ws = conn.ws;
      if (conn.state === 'open' && ws) {
        waits.push(new Promise<void>((resolve) => ws.once('close', () => resolve())));
        ws.close(1001, 'the information center is shutting down');
      } else this.forget(conn);
    }
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
    await Promise.race([Promise.all(waits), deadline]);
    for (const conn of [...this.connections.values()]) {
      conn.ws?.terminate();
      this.forget(conn);
    }
    // Let handler invocations already under way (a `$connect`, a message) finish against the store.
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
    this.wss.close();
  }
}
