/**
 * The `@connections` backend of the local WebSocket API: what the management
 * API (management-api.ts) does to a connection. A post for a connection whose
 * `$connect` is still running is held and delivered, in order, once the
 * socket is open, instead of being lost or answered 410.
 */
import { WebSocket } from 'ws';
import { touch, type Connection, type ConnectionInfo } from './websocket-connection.ts';

/**
 * What became of a post on the gateway's side, as the management API answers
 * it: 200, or 410 `GoneException`. The fan-out's view of the same call has
 * two more (throttled, failed: `PosterOutcome`, functions/core/poster.ts),
 * which come from the network and API Gateway's checks before the backend.
 */
export type BackendPostOutcome = 'delivered' | 'gone';

/** How long a post waits for a connection whose `$connect` has not returned yet. */
const PENDING_POST_TIMEOUT_MS = 30_000;

interface PendingPost {
  data: Buffer;
  settle: (outcome: BackendPostOutcome) => void;
}

export class WebSocketBackend {
  /** Posts held for connections whose `$connect` is running, in arrival order. */
  private readonly pending = new Map<Connection, PendingPost[]>();

  constructor(private readonly connections: ReadonlyMap<string, Connection>) {}

  /** `POST @connections/{id}`: sends `data` as one text message. */
  post(connectionId: string, data: Buffer): Promise<BackendPostOutcome> {
    const conn = this.connections.get(connectionId);
    if (!conn) return Promise.resolve('gone');
    if (conn.state === 'connecting') return this.hold(conn, data);
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

  /** The connection opened: delivers the posts that arrived while `$connect` ran, in their order; returns how many. */
  flush(conn: Connection): number {
    const held = this.pending.get(conn) ?? [];
    this.pending.delete(conn);
    for (const post of held) void this.send(conn, post.data).then(post.settle);
    return held.length;
  }

  /** The connection is gone: the posts held for it answer 410. */
  drop(conn: Connection): void {
    const held = this.pending.get(conn) ?? [];
    this.pending.delete(conn);
    for (const post of held) post.settle('gone');
  }

  private hold(conn: Connection, data: Buffer): Promise<BackendPostOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const rest = (this.pending.get(conn) ?? []).filter((p) => p !== post);
        if (rest.length > 0) this.pending.set(conn, rest);
        else this.pending.delete(conn);
        resolve('gone');
      }, PENDING_POST_TIMEOUT_MS).unref();
      const post: PendingPost = {
        data,
        settle: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
      const held = this.pending.get(conn);
      if (held) held.push(post);
      else this.pending.set(conn, [post]);
    });
  }

  private send(conn: Connection, data: Buffer): Promise<BackendPostOutcome> {
    const ws = conn.ws;
    if (conn.state !== 'open' || !ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve('gone');
    touch(conn);
    // Accepted for the connection, as PostToConnection's 200 means: a write that fails later closes the
    // connection ($disconnect runs) and the next post finds it gone. No per-message write callback: this
    // runs once per delivered message.
    ws.send(data, { binary: false });
    return Promise.resolve('delivered');
  }
}
