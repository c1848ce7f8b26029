/**
 * The console's one WebSocket connection: it follows up to 100 clusters
 * (the server's limit per connection) with subscribe/unsubscribe messages,
 * reconnects with jittered backoff, and notices a dead path with pings.
 *
 * Every subscription is made by message, so every one is acknowledged
 * (`SUBSCRIBED`): the owner fetches a cluster's list only after that, which
 * is what "subscribe first, then fetch" needs to miss nothing.
 */
import { eventsIn, isObject, type MembershipEvent } from '@roster/contract';

export const MAX_SUBSCRIPTIONS = 100;
/** API Gateway closes connections idle for 10 minutes; a ping also proves the path still works. */
const PING_INTERVAL_MS = 60_000;
const PONG_TIMEOUT_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** One console is one client, not a herd: a short cap gets it back quickly after the server returns. */
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 5_000;

export type LiveState = 'connecting' | 'open' | 'closed';

export interface LiveHooks {
  /** The URL of each attempt (with the token, if any). */
  url(): string;
  opened(reconnect: boolean): void;
  /** The server confirmed a subscription: fetch that cluster's list now. */
  subscribed(clusterId: string): void;
  event(event: MembershipEvent): void;
  /** The connection closed, or an attempt failed; the next attempt is scheduled. */
  dropped(info: { failures: number; retryInMs: number; everOpened: boolean }): void;
  /** An `ERROR` reply (e.g. a subscription the token does not allow). */
  serverError(message: string): void;
}

export class Live {
  state: LiveState = 'connecting';
  private socket: WebSocket | undefined;
  private want = new Set<string>();
  private acked = new Set<string>();
  private failures = 0;
  private everOpened = false;
  private retryTimer: number | undefined;
  private pingTimer: number | undefined;
  private pongTimer: number | undefined;
  private handshakeTimer: number | undefined;
  private suspended = false;

  constructor(private readonly hooks: LiveHooks) {}

  start(): void {
    this.connect();
  }

  /** Follows exactly these clusters (the first 100 of them). */
  follow(clusterIds: Iterable<string>): void {
    const next = new Set([...clusterIds].slice(0, MAX_SUBSCRIPTIONS));
    for (const id of this.want) {
      if (next.has(id)) continue;
      this.acked.delete(id);
      this.send({ action: 'unsubscribe', clusterId: id });
    }
    const added = [...next].filter((id) => !this.want.has(id));
    this.want = next;
    for (const id of added) this.send({ action: 'subscribe', clusterId: id });
  }

  /** Whether every followed cluster is subscribed on an open connection. */
  allSubscribed(): boolean {
    return this.state === 'open' && [...this.want].every((id) => this.acked.has(id));
  }

  /** Reconnects at once (a new token, signed out), also after `suspend`. */
  restart(): void {
    if (this.state === 'closed') return;
    this.suspended = false;
    this.drop();
    this.failures = 0;
    this.connect();
  }

  /** Stops connecting until `restart` (no token yet: every attempt would only be refused). */
  suspend(): void {
    this.suspended = true;
    this.drop();
    this.state = 'connecting';
  }

  /** Retries now if the connection is down; nothing if it is up. */
  retryNow(): void {
    if (this.state === 'connecting' && this.socket === undefined && !this.suspended) this.connect();
  }

  close(): void {
    this.state = 'closed';
    this.drop();
  }

  private send(message: object): void {
    if (this.state === 'open' && this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private drop(): void {
    clearTimeout(this.retryTimer);
    this.stopTimers();
    const socket = this.socket;
    this.socket = undefined;
    this.acked.clear();
    socket?.close(1000);
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.handshakeTimer);
  }

  private connect(): void {
    clearTimeout(this.retryTimer);
    this.state = 'connecting';
    let socket: WebSocket;
    try {
      const url = new URL(this.hooks.url());
      // Several events of one cluster may come in one `EVENTS` message; a server that does not batch ignores it.
      url.searchParams.set('batch', 'true');
      socket = new WebSocket(url.href);
    } catch {
      this.retry();
      return;
    }
    this.socket = socket;
    this.handshakeTimer = window.setTimeout(() => socket.close(), HANDSHAKE_TIMEOUT_MS);
    socket.onopen = () => {
      if (this.socket !== socket) return;
      clearTimeout(this.handshakeTimer);
      this.state = 'open';
      this.failures = 0;
      const reconnect = this.everOpened;
      this.everOpened = true;
      this.hooks.opened(reconnect);
      for (const id of this.want) this.send({ action: 'subscribe', clusterId: id });
      this.pingTimer = window.setInterval(() => this.ping(socket), PING_INTERVAL_MS);
    };
    socket.onmessage = (message: MessageEvent<unknown>) => {
      if (this.socket === socket && typeof message.data === 'string') this.receive(message.data);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.stopTimers();
      this.acked.clear();
      if (this.state !== 'closed') this.retry();
    };
  }

  private retry(): void {
    this.state = 'connecting';
    if (this.suspended) return;
    this.failures++;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1));
    // Half fixed, half random: spreads the consoles that lost the same server.
    const retryInMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.hooks.dropped({ failures: this.failures, retryInMs, everOpened: this.everOpened });
    this.retryTimer = window.setTimeout(() => this.connect(), retryInMs);
  }

  private ping(socket: WebSocket): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ action: 'ping' }));
    clearTimeout(this.pongTimer);
    // No PONG in time: the path is dead even though no close arrived.
    this.pongTimer = window.setTimeout(() => socket.close(4000, 'no pong'), PONG_TIMEOUT_MS);
  }

  private receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (!isObject(message)) return;
    if (message.type === 'PONG') clearTimeout(this.pongTimer);
    else if (message.type === 'SUBSCRIBED' && typeof message.clusterId === 'string') {
      if (!this.want.has(message.clusterId)) return;
      this.acked.add(message.clusterId);
      this.hooks.subscribed(message.clusterId);
    } else if (message.type === 'ERROR') {
      const error = isObject(message.error) ? message.error : {};
      this.hooks.serverError(typeof error.message === 'string' ? error.message : 'the server refused a request');
    } else {
      // One event, or several of a cluster in one EVENTS message (the connection asks for batch=true).
      for (const event of eventsIn(message) ?? []) this.hooks.event(event);
    }
  }
}
