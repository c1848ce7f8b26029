/**
 * The WebSocket connection to the information center, as an explicit state
 * machine:
 *
 *   idle ──start──▶ connecting ──open──▶ connected
 *                    ▲    │ attempt failed:       │ dropped, dead (no PONG),
 *                    │    └─ wait (backoff) ──┐   │ age limit, rebind
 *                    └────────────────────────┴───┘
 *   any ──close──▶ closed (terminal)
 *
 * "connecting" covers both the wait before an attempt and the attempt itself.
 * The connection knows nothing of registrations or caches: the owner says
 * what URL to use (`prepare`, run before every attempt) and hears about
 * opens, messages and drops. What a refused upgrade means for the owner
 * (`isUnknownNode`, `isTokenRefusal`) is read here, beside `DropInfo`.
 */
import { isErrorBody, isObject } from '@roster/contract';
import WebSocket, { type RawData } from 'ws';
import type { Backoff } from './backoff.ts';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'closed';

const TRANSITIONS: Record<ConnectionState, readonly ConnectionState[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['connecting', 'connected', 'closed'],
  connected: ['connecting', 'closed'],
  closed: [],
};

export interface DropInfo {
  /** Whether the connection had opened; false when an attempt failed. */
  wasOpen: boolean;
  reason: string;
  /** The HTTP status with which the server refused the upgrade (404: the bound node is not registered). */
  status?: number;
  /** The body of that refusal (its first 4 KiB), parsed as JSON when it is JSON. */
  body?: unknown;
}

/**
 * A refused upgrade that means "this node is not registered": 404 with the
 * contract's `NODE_NOT_FOUND`, or with no reason at all (API Gateway passes
 * a `$connect` refusal on as a bare status). A 404 that names another reason
 * — the local runtime answers `NOT_FOUND` for a path where no WebSocket API
 * is, such as a URL without its `/ws` — is a wrong URL, and registering
 * again cannot help.
 */
export function isUnknownNode(info: DropInfo): boolean {
  return info.status === 404 && (!isErrorBody(info.body) || info.body.error.code === 'NODE_NOT_FOUND');
}

/** A refused upgrade that means "not with this token" (401, 403): no attempt can succeed until the client has another one. */
export function isTokenRefusal(info: DropInfo): info is DropInfo & { status: 401 | 403 } {
  return info.status === 401 || info.status === 403;
}

export interface ConnectionHooks {
  /** Runs before every attempt and returns the URL to open; throwing counts as a failed attempt. */
  prepare(): Promise<string>;
  opened(url: string): void;
  /** A parsed server message other than PONG (or the raw text when it was not JSON). */
  message(message: unknown): void;
  /** The connection closed or an attempt failed; the next attempt is already scheduled. */
  dropped(info: DropInfo): void;
}

export interface ConnectionOptions {
  backoff: Backoff;
  /** API Gateway closes connections idle for 10 minutes; a ping also proves the path still works. */
  pingIntervalMs: number;
  /** A PONG that does not come back within this is a dead connection. */
  pongTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** Reconnect on our own terms before API Gateway's 2-hour limit; up to 15% is added as jitter. */
  maxAgeMs: number;
  random?: () => number;
}

/** Spreads the proactive reconnections of clients that connected together. */
const MAX_AGE_JITTER = 0.15;
/** How long a close handshake may take before the socket is simply destroyed. */
const CLOSE_GRACE_MS = 1000;
/** Enough for the contract's error body; a refusal's body is never worth more. */
const REFUSAL_BODY_LIMIT = 4096;

const PING = JSON.stringify({ action: 'ping' });

function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** The JSON value of `text`, or `text` itself when it is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export class Connection {
  private current: ConnectionState = 'idle';
  private socket: WebSocket | undefined;
  /** Failed attempts in a row; reset when a connection opens. */
  private failures = 0;
  /** Upgrades refused with 404 in a row. */
  private refusals = 0;
  /** The next attempt is a reconnection we asked for: no backoff. */
  private planned = false;
  /** Why we closed the socket ourselves; undefined when it closed on its own. */
  private closingReason: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pongTimer: NodeJS.Timeout | undefined;
  private ageTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {}

  get state(): ConnectionState {
    return this.current;
  }

  start(): void {
    this.transition('connecting');
    void this.attempt();
  }

  /**
   * Closes the open connection and opens a new one at once (no backoff); when
   * waiting to retry, retries now. Used to rebind a node and before the age limit.
   */
  reconnect(reason: string): void {
    if (this.current === 'connected' && this.socket) {
      const socket = this.socket;
      this.planned = true;
      this.closingReason = reason;
      socket.close(1000);
      setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    } else if (this.current === 'connecting' && this.retryTimer) {
      clearTimeout(this.retryTimer);
      void this.attempt();
    }
  }

  /** Closes for good. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.transition('closed');
    clearTimeout(this.retryTimer);
    this.stopTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
      socket.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN) socket.close(1000);
      else socket.terminate();
    });
  }

  private transition(next: ConnectionState): void {
    if (!TRANSITIONS[this.current].includes(next)) {
      throw new Error(`connection state machine: ${this.current} → ${next} is not a transition`);
    }
    this.current = next;
  }

  /** One attempt. Never rejects: every outcome ends in `opened` or in a scheduled retry. */
  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    let url: string;
    try {
      url = await this.hooks.prepare();
    } catch (err) {
      if (this.current !== 'closed') this.drop({ wasOpen: false, reason: err instanceof Error ? err.message : String(err) });
      return;
    }
    if (this.current !== 'closed') this.open(url);
  }

  private open(url: string): void {
    const socket = new WebSocket(url, { handshakeTimeout: this.options.handshakeTimeoutMs, perMessageDeflate: false });
    this.socket = socket;
    let wasOpen = false;
    let status: number | undefined;
    let body: unknown;
    let error: string | undefined;

    socket.on('unexpected-response', (req, res) => {
      status = res.statusCode;
      // Read the refusal's reason (the contract's error body, where the server sends one), then drop the socket.
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < REFUSAL_BODY_LIMIT) text += chunk;
      });
      res.on('error', () => undefined);
      res.on('close', () => {
        body = parseJson(text.slice(0, REFUSAL_BODY_LIMIT));
        req.destroy();
        socket.terminate();
      });
    });
    socket.on('error', (err) => {
      error ??= err.message;
    });
    socket.on('open', () => {
      if (this.current === 'closed') return;
      wasOpen = true;
      this.failures = 0;
      this.refusals = 0;
      this.transition('connected');
      this.startTimers(socket);
      this.hooks.opened(url);
    });
    socket.on('message', (data) => this.received(data));
    socket.on('close', (code, reasonBytes) => {
      this.stopTimers();
      if (this.socket === socket) this.socket = undefined;
      if (this.current === 'closed') return;
      let reason = this.closingReason;
      this.closingReason = undefined;
      if (reason === undefined) {
        if (status !== undefined) reason = `the server refused the connection (HTTP ${status})`;
        else if (!wasOpen) reason = `cannot connect: ${error ?? 'the connection closed during the handshake'}`;
        else if (code === 1006) reason = 'the connection was lost';
        else reason = `the server closed the connection (${code}${reasonBytes.length ? `: ${reasonBytes.toString('utf8')}` : ''})`;
      }
      this.drop(status === undefined ? { wasOpen, reason } : { wasOpen, reason, status, body });
    });
  }

  private drop(info: DropInfo): void {
    this.transition('connecting');
    let delay: number;
    if (this.planned) {
      delay = 0;
      this.planned = false;
    } else if (info.status === 404 && this.refusals++ === 0) {
      // The node is not registered: `prepare` re-registers, so try again at once — once.
      delay = 0;
    } else {
      delay = this.options.backoff.delay(++this.failures);
    }
    this.hooks.dropped(info);
    if (this.current === 'connecting') this.retryTimer = setTimeout(() => void this.attempt(), delay);
  }

  private received(data: RawData): void {
    const text = textOf(data);
    const message = parseJson(text);
    if (isObject(message) && message.type === 'PONG') {
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
      return;
    }
    this.hooks.message(message);
  }

  private startTimers(socket: WebSocket): void {
    this.pingTimer = setInterval(() => this.ping(socket), this.options.pingIntervalMs);
    const random = this.options.random ?? Math.random;
    const age = this.options.maxAgeMs * (1 + MAX_AGE_JITTER * random());
    this.ageTimer = setTimeout(() => this.reconnect('the connection reached its age limit'), age);
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.ageTimer);
    this.pingTimer = this.pongTimer = this.ageTimer = undefined;
  }

  private ping(socket: WebSocket): void {
    if (this.pongTimer || socket.readyState !== WebSocket.OPEN) return;
    socket.send(PING);
    this.pongTimer = setTimeout(() => {
      this.pongTimer = undefined;
      this.closingReason = `no PONG within ${this.options.pongTimeoutMs} ms: the connection is dead`;
      socket.terminate();
    }, this.options.pongTimeoutMs);
  }
}
