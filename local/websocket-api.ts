/**
 * The WebSocket API half of API Gateway, composed of its parts:
 *
 * - the handshake (websocket-handshake.ts): the upgrade request, the
 *   `$connect` authorizer and `$connect`;
 * - message routing (websocket-routing.ts): each client message to its
 *   route, in arrival order per connection;
 * - the `@connections` backend (websocket-backend.ts): post, describe,
 *   close, with posts held while `$connect` runs;
 * - the Lambda integration they share (websocket-integration.ts).
 *
 * This file keeps the connections and their lifecycle: the idle and age
 * limits, and `$disconnect`, which runs when a socket closes for any reason:
 * close frame, dropped TCP connection, idle or age limit, or a `DELETE` on
 * `@connections`. It does not run when the runtime itself shuts down (see
 * `closeAll`).
 */
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { ConnectAuthorizer } from './authorizers.ts';
import type { RuntimeLog } from './log.ts';
import type { GatewayCount } from './metrics.ts';
import type { StageThrottle } from './throttle.ts';
import { WebSocketBackend, type BackendPostOutcome } from './websocket-backend.ts';
import type { Connection, ConnectionInfo } from './websocket-connection.ts';
import { Handshake } from './websocket-handshake.ts';
import { statusOf, WsIntegration, type WsRoute } from './websocket-integration.ts';
import { MessageRouter } from './websocket-routing.ts';

export type { WsRoute } from './websocket-integration.ts';

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

export class WebSocketApi {
  private readonly connections = new Map<string, Connection>();
  private readonly limits: typeof WS_LIMITS;
  private readonly integration: WsIntegration;
  private readonly handshake: Handshake;
  private readonly router: MessageRouter;
  private readonly backend: WebSocketBackend;
  private closing = false;

  constructor(private readonly options: WebSocketApiOptions) {
    this.limits = { ...WS_LIMITS, ...options.limits };
    const { apiId, stage, log } = options;
    this.integration = new WsIntegration(options.routes, { apiId, stage, integrationTimeoutMs: this.limits.integrationTimeoutMs });
    this.router = new MessageRouter(this.integration, options.routeSelectionExpression, log, options.throttle, options.count);
    this.backend = new WebSocketBackend(this.connections);
    const handshakeOptions = { path: this.path, maxMessageBytes: this.limits.maxMessageBytes, log, apiId, stage, authorizer: options.authorizer, throttle: options.throttle, count: options.count };
    this.handshake = new Handshake(handshakeOptions, this.integration, {
      closing: () => this.closing,
      admit: (conn) => this.connections.set(conn.id, conn),
      forget: (conn) => this.forget(conn),
      finish: (conn, code, reason) => this.finish(conn, code, reason),
      opened: (conn, ws) => this.opened(conn, ws),
    });
  }

  get path(): string {
    return this.options.path ?? '/ws';
  }

  get size(): number {
    return this.connections.size;
  }

  /** Handles an HTTP upgrade request (the server's `upgrade` event). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    return this.handshake.handleUpgrade(req, socket, head);
  }

  /** `POST @connections/{id}`: sends `data` as one text message. */
  post(connectionId: string, data: Buffer): Promise<BackendPostOutcome> {
    return this.backend.post(connectionId, data);
  }

  /** `GET @connections/{id}`. */
  info(connectionId: string): ConnectionInfo | undefined {
    return this.backend.info(connectionId);
  }

  /** `DELETE @connections/{id}`: closes the connection; `$disconnect` follows. */
  disconnect(connectionId: string): boolean {
    return this.backend.disconnect(connectionId);
  }

  private opened(conn: Connection, ws: WebSocket): void {
    conn.ws = ws;
    conn.state = 'open';
    conn.lastActiveAt = Date.now();
    ws.on('message', (data, isBinary) => this.router.receive(conn, data, isBinary));
    ws.on('close', (code, reason) => this.finish(conn, code, reason.toString()));
    ws.on('error', (err) => this.options.log.debug('WebSocket error', { connectionId: conn.id, error: err }));
    this.armIdleTimer(conn, ws, this.limits.idleTimeoutMs);
    conn.ageTimer = setTimeout(() => ws.close(1001, 'Going away'), this.limits.maxConnectionMs).unref();
    const pendingPosts = this.backend.flush(conn);
    this.options.log.debug(`connected ${conn.id}`, { pendingPosts });
  }

  /** Closes the connection once it has been idle for the idle timeout, measured from its last activity. */
  private armIdleTimer(conn: Connection, ws: WebSocket, delayMs: number): void {
    conn.idleTimer = setTimeout(() => {
      const idleMs = Date.now() - conn.lastActiveAt;
      if (idleMs >= this.limits.idleTimeoutMs) ws.close(1001, 'Going away');
      else this.armIdleTimer(conn, ws, this.limits.idleTimeoutMs - idleMs);
    }, delayMs).unref();
  }

  private forget(conn: Connection): void {
    conn.state = 'closed';
    this.connections.delete(conn.id);
    clearTimeout(conn.idleTimer);
    clearTimeout(conn.ageTimer);
    this.backend.drop(conn);
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
      requestContext: { ...this.integration.requestContext(conn, '$disconnect', 'DISCONNECT', now), disconnectStatusCode: code, disconnectReason: reason },
      isBase64Encoded: false,
    };
    void this.integration.track(
      conn.chain
        .then(() => this.integration.invoke('$disconnect', event))
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
    await Promise.race([Promise.all(waits), sleep(timeoutMs, undefined, { ref: false })]);
    for (const conn of [...this.connections.values()]) {
      conn.ws?.terminate();
      this.forget(conn);
    }
    // Let handler invocations already under way (a `$connect`, a message) finish against the store.
    await this.integration.settled(timeoutMs);
    this.handshake.close();
  }
}
