/**
 * A node's lease, in the manner of etcd3's `Lease`: it registers the node,
 * owns the keepalive timer and the clock that says when the lease has
 * certainly lapsed, and reports `keepaliveFailed`, `keepaliveRecovered` and `lost`.
 *
 *   keepalive every interval (a third of the lease unless set)
 *     ok ─────────────▶ next keepalive in one interval; the lapse clock restarts
 *     404 ────────────▶ register again at once (the node is unknown or DOWN)
 *     409 ────────────▶ superseded: a newer incarnation owns the node; no more
 *                       keepalives, ever (`lost` superseded)
 *     401/403 ────────▶ refused: no more keepalives (`lost` unauthorized)
 *     anything else ──▶ retry with backoff (jittered, capped at the interval),
 *     (no answer, 429,   never sooner than the server's Retry-After
 *      5xx)
 *   no renewal for a whole lease ─▶ `lost` expired; the next keepalive
 *                       registers anew (recoverable)
 *
 * The lease knows nothing of connections or caches; its transport does the
 * requests, and the client tells it when something else renewed or ended the
 * lease (a bound WebSocket connect, the node's own NODE_DOWN event).
 */
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import { EventEmitter } from 'node:events';
import type { Backoff } from './backoff.ts';
import { closedError, toClientError, type RosterClientError } from './errors.ts';
import type { KeepaliveFailedEvent, KeepaliveRecoveredEvent, LostEvent, Node } from './types.ts';

/** The two requests a lease makes; both answer with the node as the server now has it. */
export interface LeaseTransport {
  /**
   * Takes no abort signal on purpose: an abandoned registration still reaches
   * the server and may land after the deregistration that follows it (only
   * the request's own timeout ends it).
   */
  register(): Promise<Node>;
  keepalive(signal: AbortSignal): Promise<Node>;
}

export interface LeaseOptions {
  transport: LeaseTransport;
  /** The lease asked for at registration; undefined leaves it to the server (15 s unless configured). */
  leaseSeconds?: number;
  /** Time between keepalives; undefined: a third of the lease. */
  keepaliveIntervalMs?: number;
  /** Delays between retries after failures in a row. */
  backoff: Backoff;
}

export interface LeaseEvents {
  /** Recoverable: a keepalive (or the registration that replaces one) failed. */
  keepaliveFailed: [KeepaliveFailedEvent];
  /** A keepalive (or registration) succeeded after failures. */
  keepaliveRecovered: [KeepaliveRecoveredEvent];
  /** The lease is gone (see LostEvent for which reasons are terminal). */
  lost: [LostEvent];
  /** A registration succeeded; `count` numbers them from 1. */
  registered: [count: number];
}

export type LeaseState = 'idle' | 'running' | 'superseded' | 'refused' | 'stopped';

export class Lease extends EventEmitter<LeaseEvents> {
  private current: LeaseState = 'idle';
  /** Whether the server holds a lease of ours, as far as this client knows. */
  private held = false;
  private registering: Promise<void> | undefined;
  private count = 0;
  /** The lease the server granted last; until then the one asked for, or the contract's default. */
  private leaseMs: number;
  private failures = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lapseTimer: NodeJS.Timeout | undefined;
  private supersededBy: RosterClientError | undefined;
  private supersededReported = false;
  /** Aborts keepalives in flight when the lease stops (registrations are waited for). */
  private readonly aborter = new AbortController();

  constructor(private readonly options: LeaseOptions) {
    super();
    this.leaseMs = (options.leaseSeconds ?? DEFAULT_LEASE_SECONDS) * 1000;
  }

  get state(): LeaseState {
    return this.current;
  }

  /** Whether the node is registered (as far as this client knows). */
  get registered(): boolean {
    return this.held;
  }

  /** Successful registrations so far. */
  get registrations(): number {
    return this.count;
  }

  /** The 409 that ended this node's keepalives, once a newer incarnation took over. */
  get superseded(): RosterClientError | undefined {
    return this.supersededBy;
  }

  /** Time between keepalives. */
  get intervalMs(): number {
    return this.options.keepaliveIntervalMs ?? this.leaseMs / 3;
  }

  /** Registers unless registered; concurrent callers share one request. */
  ensureRegistered(): Promise<void> {
    // Once stopped, never register: it could land after the deregistration.
    if (this.current === 'stopped' || this.current === 'refused') return Promise.reject(closedError());
    if (this.supersededBy) return Promise.reject(this.supersededBy);
    if (this.held) return Promise.resolve();
    this.registering ??= this.register().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  /** From now on keep the lease alive on the timer: the first keepalive after one interval, or a registration at once. */
  start(): void {
    // Superseded while the client was starting: report it now that it runs.
    if (this.current === 'superseded') this.reportSuperseded();
    if (this.current !== 'idle') return;
    this.current = 'running';
    this.schedule(this.held ? this.intervalMs : 0);
  }

  /** Something else renewed the lease (a `$connect` that binds the node): restart the lapse clock. */
  renewed(): void {
    if (this.current !== 'idle' && this.current !== 'running') return;
    clearTimeout(this.lapseTimer);
    // The server started the new lease before this client heard of it, so once
    // leaseMs passes from now without another renewal, it has certainly lapsed.
    this.lapseTimer = setTimeout(() => this.lapsed(), this.leaseMs);
  }

  /**
   * The server no longer has the lease (a 404 when binding, the node's own
   * NODE_DOWN event): the next keepalive registers anew; with `now`, at once.
   */
  forget(now = false): void {
    this.held = false;
    if (now && this.current === 'running') this.schedule(0);
  }

  /** The token was refused (here or elsewhere): no more keepalives; reports `lost` once. */
  refuse(error: RosterClientError): void {
    if (this.current === 'stopped' || this.current === 'refused') return;
    this.current = 'refused';
    this.clearTimers();
    this.emit('lost', { type: 'lost', reason: 'unauthorized', error });
  }

  /** Stops for good: no more requests; waits for a registration in flight, which could otherwise land after a deregistration. */
  async stop(): Promise<void> {
    if (this.current !== 'refused') this.current = 'stopped';
    this.clearTimers();
    this.aborter.abort();
    await this.registering?.catch(() => undefined);
  }

  private async register(): Promise<void> {
    let node: Node;
    try {
      node = await this.options.transport.register();
    } catch (err) {
      const error = toClientError(err);
      if (error.code === 'STALE_INCARNATION') this.supersede(error);
      throw error;
    }
    this.held = true;
    this.count++;
    this.granted(node);
    this.emit('registered', this.count);
  }

  private granted(node: Node): void {
    this.leaseMs = node.leaseSeconds * 1000;
    this.renewed();
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.keepaliveTimer);
    if (this.current !== 'running') return;
    this.keepaliveTimer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    this.keepaliveTimer = undefined;
    try {
      if (this.held) this.granted(await this.options.transport.keepalive(this.aborter.signal));
      else await this.ensureRegistered();
      const failures = this.failures;
      this.failures = 0;
      this.schedule(this.intervalMs);
      if (failures > 0) this.emit('keepaliveRecovered', { type: 'keepaliveRecovered', failures });
    } catch (err) {
      if (this.current !== 'running') return;
      this.failed(toClientError(err));
    }
  }

  private failed(error: RosterClientError): void {
    this.failures++;
    this.emit('keepaliveFailed', { type: 'keepaliveFailed', error, consecutive: this.failures });
    if (error.refused) {
      this.refuse(error);
    } else if (error.code === 'STALE_INCARNATION') {
      this.supersede(error);
    } else if (error.code === 'NODE_NOT_FOUND') {
      // Unknown or DOWN: register again at once.
      this.forget(true);
    } else {
      this.schedule(this.retryDelay(error));
    }
  }

  /**
   * Sooner than the interval (two missed keepalives already eat most of the
   * lease), growing with each failure in a row, and never sooner than the
   * server asked: a fleet that backs off together lets a struggling server
   * recover instead of flooding it.
   */
  private retryDelay(error: RosterClientError): number {
    const backoff = Math.min(this.intervalMs, this.options.backoff.delay(this.failures));
    return Math.max(backoff, error.retryAfterMs ?? 0);
  }

  private lapsed(): void {
    this.lapseTimer = undefined;
    if (this.current !== 'idle' && this.current !== 'running') return;
    // The next keepalive registers anew (a mere renewal if the server kept the node after all).
    this.held = false;
    this.emit('lost', { type: 'lost', reason: 'expired' });
  }

  /**
   * A newer incarnation registered: stop keepalives for good and never
   * register again. A running lease reports `lost` at once; during start-up
   * a rejected start() reports it, or start() reports it if the client runs
   * all the same (as a watcher).
   */
  private supersede(error: RosterClientError): void {
    this.supersededBy ??= error;
    this.held = false;
    const running = this.current === 'running';
    if (running || this.current === 'idle') this.current = 'superseded';
    this.clearTimers();
    if (running) this.reportSuperseded();
  }

  private reportSuperseded(): void {
    if (this.supersededReported || !this.supersededBy) return;
    this.supersededReported = true;
    this.emit('lost', { type: 'lost', reason: 'superseded', error: this.supersededBy });
  }

  private clearTimers(): void {
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.lapseTimer);
    this.keepaliveTimer = this.lapseTimer = undefined;
  }
}
