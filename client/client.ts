/**
 * RegistryClient: a node's (or a watcher's) view of one cluster.
 *
 * Three loops run side by side once started:
 * - the connection (connection.ts) keeps one WebSocket open, subscribed to
 *   the cluster and, for a node, bound to it;
 * - the keepalive loop renews the lease every lease/3, re-registers on 404
 *   and gives up for good on 409 (a newer incarnation took over);
 * - syncs fetch the list (`?status=all`, so DOWN nodes' revisions are known)
 *   after every (re)connection, on a revision gap, and every
 *   `refreshIntervalMs`; cache.ts merges them with the live events.
 *
 * Start order: register → connect (which subscribes) → fetch the list. The
 * subscription exists before the fetch begins, so no event can fall between
 * the two; an event that is also in the list is dropped by the per-node
 * revision rule.
 */
import { toBackoff, type Backoff, type BackoffOption } from './backoff.ts';
import { ClusterCache, type NodeChange, type SnapshotOutcome } from './cache.ts';
import { cacheFileContent, readCacheFile, writeCacheFile, type CacheFileContent } from './cache-file.ts';
import { Connection, type ConnectionState, type DropInfo } from './connection.ts';
import { RosterClientError, toClientError, type ClientErrorCode } from './errors.ts';
import { EventHub } from './events.ts';
import { HttpApi } from './http.ts';
import type {
  ChangeEvent,
  ClientEvent,
  ClientEventOf,
  ClientEventType,
  ClosedEvent,
  ConnectedEvent,
  DisconnectedEvent,
  DownEvent,
  KeepaliveFailedEvent,
  LostEvent,
  MembershipEvent,
  Node,
  RegisteredEvent,
  ResyncedEvent,
  SyncReason,
  UpdatedEvent,
  WarningEvent,
} from './types.ts';
import { ID_PATTERN, isMembershipEvent, isObject } from './wire.ts';

export interface RegistryClientOptions {
  /** Base URL of the HTTP API: the `HttpApiUrl` stack output, or `http://127.0.0.1:4000` locally. */
  httpUrl: string;
  /** URL of the WebSocket API: the `WebSocketUrl` stack output, or `ws://127.0.0.1:4000/ws` locally. */
  wsUrl: string;
  /** The cluster to watch (and to register in). */
  clusterId: string;
  /**
   * Registers this process as node `nodeId`, keeps it alive and binds it to
   * the WebSocket connection. Without it the client only watches.
   * @default undefined (a watcher)
   */
  nodeId?: string;
  /** Flat string metadata sent with the registration (at most 32 keys, 4 KiB). @default {} */
  metadata?: Record<string, string>;
  /** Lease in seconds (2–3600). @default the information center's default, 15 */
  leaseSeconds?: number;
  /** Time between keepalives. @default a third of the lease */
  keepaliveIntervalMs?: number;
  /** Time between periodic syncs that reconcile the cache with the server (±10% jitter); 0 turns them off. @default 30000 */
  refreshIntervalMs?: number;
  /** Sent as `Authorization: Bearer` and as `token=` on the WebSocket URL. @default undefined */
  token?: string;
  /**
   * A file that keeps the last confirmed list. When the information center
   * cannot be reached at start, the list from this file is served (marked
   * `stale`) while the client keeps trying in the background.
   * @default undefined (no file)
   */
  cacheFile?: string;
  /** Delays between retries (reconnecting, keepalive retries, failed syncs). @default exponentialBackoff(): 200 ms doubling to 1.5 s, jittered */
  backoff?: BackoffOption;
  /** Time between `{"action":"ping"}` messages; API Gateway drops connections idle for 10 minutes. @default 30000 */
  pingIntervalMs?: number;
  /** A PONG not received within this marks the connection dead. @default 10000 */
  pongTimeoutMs?: number;
  /** Timeout of each HTTP request and of the WebSocket handshake. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * Age at which the connection is replaced, ahead of API Gateway's 2-hour
   * limit; 0–15% jitter is added, so by default it happens 100–115 minutes in.
   * @default 6000000
   */
  maxConnectionAgeMs?: number;
  /**
   * Identifies this run of the node. A restarted process registers a higher
   * one, which makes a still-running predecessor's keepalives fail with 409.
   * @default Date.now() when the client is constructed
   */
  incarnation?: number;
}

/** What a sync ended with. Syncs never reject: callers that care look at this. */
type SyncOutcome = { ok: true } | { ok: false; error: RosterClientError };

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The server's default lease, assumed until the registration answer says otherwise. */
const DEFAULT_LEASE_MS = 15_000;
/** A stopping process should not hang on an unreachable server for long. */
const DEREGISTER_TIMEOUT_MS = 5_000;

class Deferred<T> {
  readonly promise: Promise<T>;
  resolve: (value: T) => void = () => undefined;
  reject: (error: unknown) => void = () => undefined;
  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

const closedError = (): RosterClientError => new RosterClientError('CLOSED', 'the client was stopped');

/** A refused token: no retry can succeed until someone gives the client another one. */
const isAuthError = (error: RosterClientError): boolean => error.code === 'UNAUTHORIZED' || error.code === 'FORBIDDEN';

function invalid(message: string): RosterClientError {
  return new RosterClientError('VALIDATION_FAILED', message);
}

function checkUrl(value: string, name: string, protocols: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${name} is not a URL: ${value}`);
  }
  if (!protocols.includes(url.protocol)) throw invalid(`${name} must use ${protocols.join(' or ')}: ${value}`);
}

/** The error a failed WebSocket attempt stands for. */
function attemptError(info: DropInfo, wsUrl: string): RosterClientError {
  const byStatus: Record<number, ClientErrorCode> = { 401: 'UNAUTHORIZED', 403: 'FORBIDDEN', 404: 'NODE_NOT_FOUND', 429: 'THROTTLED' };
  const { status } = info;
  let code: ClientErrorCode = 'NETWORK';
  if (status !== undefined) code = byStatus[status] ?? (status >= 500 ? 'INTERNAL' : 'UNEXPECTED_STATUS');
  return new RosterClientError(code, `WebSocket ${wsUrl}: ${info.reason}`, status === undefined ? {} : { status });
}

export class RegistryClient implements AsyncDisposable {
  readonly clusterId: string;
  readonly nodeId: string | undefined;
  readonly incarnation: number;

  private readonly wsUrl: string;
  private readonly token: string | undefined;
  private readonly metadata: Record<string, string>;
  private readonly leaseSeconds: number | undefined;
  private readonly keepaliveIntervalMs: number | undefined;
  private readonly refreshIntervalMs: number;
  private readonly requestTimeoutMs: number;
  private readonly cacheFile: string | undefined;
  private readonly backoff: Backoff;
  private readonly http: HttpApi;
  private readonly cache: ClusterCache;
  private readonly hub = new EventHub();
  private readonly connection: Connection;
  /** Aborts in-flight keepalives and syncs when the client stops. */
  private readonly stopping = new AbortController();

  private phase: Phase = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  /** Settles when the first connection opens or fails, while start() waits for it. */
  private firstOpen: Deferred<void> | undefined;
  private startRefusals = 0;

  // Registration and lease.
  private registered = false;
  private registering: Promise<void> | undefined;
  /** Successful registrations so far; a connection opened after registration k is bound to record k. */
  private registrations = 0;
  private preparedRegistration = 0;
  private boundRegistration = 0;
  /** Set once a newer incarnation took the node over (409); final. */
  private superseded: RosterClientError | undefined;
  /** Set when the token was refused while running; the client then stops by itself. */
  private authFailure: RosterClientError | undefined;
  private supersededReported = false;
  private leaseMs: number | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private keepaliveFailures = 0;

  // Syncs. A sync "confirms" the cache when it began on an open connection
  // that is still the current one, after every gap seen so far.
  private syncRunning = false;
  private syncQueue: { reason: SyncReason; waiters: ((outcome: SyncOutcome) => void)[] } | undefined;
  private syncFailures = 0;
  private syncRetryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Connections opened so far. */
  private connections = 0;
  /** The connection after whose opening a sync succeeded. */
  private syncedConnection = 0;
  private gaps = 0;
  private gapsResolved = 0;
  private lastSync: Date | undefined;

  // Cache file writes: one at a time, the latest content wins.
  private fileWrite: Promise<void> | undefined;
  private fileNext: CacheFileContent | undefined;

  constructor(options: RegistryClientOptions) {
    const { clusterId, nodeId, leaseSeconds, metadata = {} } = options;
    if (!ID_PATTERN.test(clusterId)) throw invalid(`invalid clusterId "${clusterId}": 1-64 characters of A-Z a-z 0-9 . _ -`);
    if (nodeId !== undefined && !ID_PATTERN.test(nodeId)) {
      throw invalid(`invalid nodeId "${nodeId}": 1-64 characters of A-Z a-z 0-9 . _ -`);
    }
    if (leaseSeconds !== undefined && (!Number.isInteger(leaseSeconds) || leaseSeconds < 2 || leaseSeconds > 3600)) {
      throw invalid(`leaseSeconds must be a whole number from 2 to 3600, not ${leaseSeconds}`);
    }
    if (!Object.values(metadata).every((v) => typeof v === 'string')) throw invalid('metadata values must be strings');
    checkUrl(options.httpUrl, 'httpUrl', ['http:', 'https:']);
    checkUrl(options.wsUrl, 'wsUrl', ['ws:', 'wss:']);

    this.clusterId = clusterId;
    this.nodeId = nodeId;
    this.incarnation = options.incarnation ?? Date.now();
    this.wsUrl = options.wsUrl;
    this.token = options.token;
    this.metadata = { ...metadata };
    this.leaseSeconds = leaseSeconds;
    this.keepaliveIntervalMs = options.keepaliveIntervalMs;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.cacheFile = options.cacheFile;
    this.backoff = toBackoff(options.backoff);
    this.http = new HttpApi({ baseUrl: options.httpUrl, token: options.token, timeoutMs: this.requestTimeoutMs });
    this.cache = new ClusterCache(clusterId);
    this.connection = new Connection(
      {
        backoff: this.backoff,
        pingIntervalMs: options.pingIntervalMs ?? 30_000,
        pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
        handshakeTimeoutMs: this.requestTimeoutMs,
        maxAgeMs: options.maxConnectionAgeMs ?? 6_000_000,
      },
      {
        prepare: () => this.prepareConnection(),
        opened: (url) => this.onOpened(url),
        message: (message) => this.onMessage(message),
        dropped: (info) => this.onDropped(info),
      },
    );
  }

  // ─── Public API ────────────────────────────────────────────────────────

  /**
   * Registers (for a node), connects, and fetches the list. Resolves once the
   * cache holds a confirmed list. Rejects when the information center cannot
   * be reached — unless a `cacheFile` supplied a list: then it resolves with
   * that list marked `stale` and keeps trying in the background. Rejects
   * with `STALE_INCARNATION` when a newer incarnation of the node is registered.
   * Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'stopped') {
      return Promise.reject(new RosterClientError('CLOSED', 'the client was stopped; create a new one'));
    }
    this.startPromise ??= this.startup();
    return this.startPromise;
  }

  /**
   * Deregisters the node (only if this incarnation is still the registered
   * one) and closes the connection. Safe to call more than once, and before
   * or during start().
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.shutdown();
    return this.stopPromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** The cached healthy nodes, sorted by node id. Shared until the next change: do not mutate. */
  nodes(): readonly Node[] {
    return this.cache.nodes();
  }

  /** A cached healthy node. */
  node(nodeId: string): Node | undefined {
    return this.cache.node(nodeId);
  }

  /** The highest cluster revision the cache has seen. */
  get revision(): number {
    return this.cache.revision;
  }

  /** When the server last confirmed the list (from the cache file's time until the first sync). */
  get lastSyncedAt(): Date | undefined {
    return this.lastSync;
  }

  /**
   * True while the list may be behind the server: not connected, not yet
   * synced since the connection opened, or a revision gap not yet resynced.
   */
  get stale(): boolean {
    return this.connection.state !== 'connected' || this.syncedConnection !== this.connections || this.gapsResolved < this.gaps;
  }

  /** The connection's state: idle → connecting → connected (→ connecting …) → closed. */
  get state(): ConnectionState {
    return this.connection.state;
  }

  /** A node joined the healthy list or came back as a new incarnation. */
  on(type: 'registered', listener: (event: RegisteredEvent) => void): this;
  /** A healthy node re-registered with different metadata or lease. */
  on(type: 'updated', listener: (event: UpdatedEvent) => void): this;
  /** A node left the healthy list; `reason` says why (`expired`, `deregistered`, `disconnected`). */
  on(type: 'down', listener: (event: DownEvent) => void): this;
  /** The healthy list changed; the event carries the whole new list. */
  on(type: 'change', listener: (event: ChangeEvent) => void): this;
  /** The WebSocket connection opened; a resync follows. */
  on(type: 'connected', listener: (event: ConnectedEvent) => void): this;
  /** Recoverable: the connection dropped; the client reconnects with backoff and resyncs. */
  on(type: 'disconnected', listener: (event: DisconnectedEvent) => void): this;
  /** The cache was replaced by the server's list (after a connection, a gap, or periodically). */
  on(type: 'resynced', listener: (event: ResyncedEvent) => void): this;
  /** Recoverable: a keepalive failed; the client retries (and re-registers on 404). */
  on(type: 'keepaliveFailed', listener: (event: KeepaliveFailedEvent) => void): this;
  /**
   * Terminal for the lease: it certainly lapsed (`expired`, by this client's
   * clock) or a newer incarnation took over (`superseded`, final: no more
   * keepalives). After `expired` the client registers anew when it can.
   */
  on(type: 'lost', listener: (event: LostEvent) => void): this;
  /** Terminal: the client stopped. */
  on(type: 'closed', listener: (event: ClosedEvent) => void): this;
  /** Something the client works around: an unreadable cache file, an unexpected message, a failed deregistration. */
  on(type: 'warning', listener: (event: WarningEvent) => void): this;
  on(type: ClientEventType, listener: (event: never) => void): this {
    this.hub.on(type, listener);
    return this;
  }

  off<T extends ClientEventType>(type: T, listener: (event: ClientEventOf<T>) => void): this {
    this.hub.off(type, listener);
    return this;
  }

  /** Every event from now on, as a tagged union; the iteration ends after `closed`. */
  events(): AsyncIterableIterator<ClientEvent> {
    return this.hub.iterate();
  }

  // ─── Start and stop ────────────────────────────────────────────────────

  private get isStopping(): boolean {
    return this.phase === 'stopping' || this.phase === 'stopped';
  }

  private async startup(): Promise<void> {
    this.phase = 'starting';
    const saved = await this.loadCacheFile();
    try {
      if (this.nodeId) await this.ensureRegistered();
      this.firstOpen = new Deferred();
      if (this.isStopping) throw closedError();
      this.connection.start();
      await this.firstOpen.promise;
      const outcome = await this.requestSync('start');
      if (!outcome.ok) throw outcome.error;
    } catch (err) {
      const error = toClientError(err);
      if (this.isStopping) throw new RosterClientError('CLOSED', 'the client was stopped while starting', { cause: error });
      if (saved && error.retriable) {
        this.emit({
          type: 'warning',
          message: `serving the list cached in ${this.cacheFile} at ${saved.savedAt} until the information center answers (${error.message})`,
          error,
        });
        this.run();
        if (this.connection.state === 'idle') this.connection.start();
        else if (this.connection.state === 'connected') void this.requestSync('retry');
        return;
      }
      await this.stop();
      throw error;
    } finally {
      this.firstOpen = undefined;
    }
    this.run();
  }

  /** From here on the background loops own the client. */
  private run(): void {
    this.phase = 'running';
    if (this.nodeId) this.scheduleKeepalive(this.registered ? this.keepaliveInterval() : 0);
    this.scheduleRefresh();
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopping';
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.leaseTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.syncRetryTimer);
    this.firstOpen?.reject(closedError());
    this.stopping.abort();

    // Wait for a registration in flight, or it could land after the deregistration.
    await this.registering?.catch(() => undefined);
    // Only a node that was registered is deregistered. (A registration that timed
    // out may have landed all the same; unbound, it simply expires with its lease.)
    // With a refused token a deregistration would be refused too; the lease runs out instead.
    if (this.nodeId && this.registrations > 0 && !this.superseded && !this.authFailure) {
      // Deregister before closing the socket: closing first would cut the lease
      // and might report the node `disconnected` instead of `deregistered`.
      try {
        await this.http.deregister(this.clusterId, this.nodeId, this.incarnation, {
          timeoutMs: Math.min(this.requestTimeoutMs, DEREGISTER_TIMEOUT_MS),
        });
      } catch (err) {
        const error = toClientError(err);
        // 409: a newer incarnation owns the node now; it is not ours to deregister.
        if (error.code !== 'STALE_INCARNATION') {
          this.emit({ type: 'warning', message: `could not deregister ${this.clusterId}/${this.nodeId}; it will expire with its lease (${error.message})`, error });
        }
      }
    }
    await this.connection.close();
    await this.fileWrite;
    this.phase = 'stopped';
    this.emit(this.authFailure ? { type: 'closed', error: this.authFailure } : { type: 'closed' });
    this.hub.end();
  }

  // ─── Events ────────────────────────────────────────────────────────────

  private emit(event: ClientEvent): void {
    this.hub.emit(event);
  }

  private emitNodeChange(change: NodeChange, source: 'event' | 'sync'): void {
    this.emit({ ...change, source });
  }

  /** `change` carries the whole list; build it only for someone who listens. */
  private emitList(): void {
    if (this.hub.wants('change')) this.emit({ type: 'change', nodes: this.cache.nodes(), revision: this.cache.revision });
  }

  // ─── Connection hooks ──────────────────────────────────────────────────

  private socketUrl(bind: boolean): string {
    const url = new URL(this.wsUrl);
    url.searchParams.set('clusterId', this.clusterId);
    if (bind && this.nodeId) {
      url.searchParams.set('nodeId', this.nodeId);
      // Bind only our own incarnation: a successor's record must not be tied to this connection.
      url.searchParams.set('incarnation', String(this.incarnation));
    }
    if (this.token) url.searchParams.set('token', this.token);
    return url.toString();
  }

  /** Before each attempt: a node must be registered, or `$connect` refuses to bind it (404). */
  private async prepareConnection(): Promise<string> {
    if (this.nodeId && !this.superseded) {
      try {
        await this.ensureRegistered();
      } catch (err) {
        const error = toClientError(err);
        if (isAuthError(error)) this.refused(error);
        if (error.code !== 'STALE_INCARNATION') throw error;
        this.supersede(error);
      }
    }
    this.preparedRegistration = this.registrations;
    // A superseded node connects as a watcher: binding would tie the new incarnation's record to this zombie.
    return this.socketUrl(this.superseded === undefined);
  }

  private onOpened(url: string): void {
    this.connections++;
    const bound = new URL(url).searchParams.has('nodeId');
    if (bound) {
      this.boundRegistration = this.preparedRegistration;
      // `$connect` with nodeId renews the lease, like a keepalive.
      this.renewLease();
    }
    this.emit({ type: 'connected', bound, reconnect: this.connections > 1 });
    if (this.phase === 'starting' && this.firstOpen) this.firstOpen.resolve();
    else void this.requestSync('reconnect');
  }

  private onDropped(info: DropInfo): void {
    if (info.status === 401 || info.status === 403) this.refused(attemptError(info, this.wsUrl));
    if (info.status === 404 && this.nodeId) this.registered = false; // the next attempt's prepare() re-registers
    if (info.wasOpen) this.emit({ type: 'disconnected', reason: info.reason });
    if (this.phase === 'starting' && this.firstOpen) {
      // One 404 is expected if the node went down in between; the connection re-registers and retries at once.
      if (info.status === 404 && this.startRefusals++ === 0) return;
      this.firstOpen.reject(attemptError(info, this.wsUrl));
    }
  }

  private onMessage(message: unknown): void {
    if (isMembershipEvent(message)) {
      this.onEvent(message);
      return;
    }
    if (isObject(message) && (message.type === 'SUBSCRIBED' || message.type === 'UNSUBSCRIBED')) return;
    if (isObject(message) && message.type === 'ERROR' && isObject(message.error)) {
      this.emit({ type: 'warning', message: `the server reported ${String(message.error.code)}: ${String(message.error.message)}` });
      return;
    }
    this.emit({ type: 'warning', message: `ignoring an unexpected message: ${JSON.stringify(message).slice(0, 200)}` });
  }

  private onEvent(event: MembershipEvent): void {
    const outcome = this.cache.applyEvent(event);
    if (outcome.change) {
      this.emitNodeChange(outcome.change, 'event');
      this.emitList();
    }
    if (outcome.gap) {
      this.gaps++;
      void this.requestSync('gap');
    }
    const self = event.node.nodeId === this.nodeId && event.node.incarnation === this.incarnation;
    if (outcome.applied && self && event.type === 'NODE_DOWN' && this.phase === 'running' && !this.superseded) {
      // The server says this node is down (its lease lapsed or was cut): re-register now, not at the next keepalive.
      this.registered = false;
      this.scheduleKeepalive(0);
    }
  }

  // ─── Registration, keepalive, lease ────────────────────────────────────

  /** Registers unless registered; concurrent callers share one request. */
  private ensureRegistered(): Promise<void> {
    // Once stopping, never register: it could land after the deregistration.
    if (this.isStopping) return Promise.reject(closedError());
    if (this.superseded) return Promise.reject(this.superseded);
    if (this.registered) return Promise.resolve();
    this.registering ??= this.register().finally(() => {
      this.registering = undefined;
    });
    return this.registering;
  }

  private async register(): Promise<void> {
    if (!this.nodeId) return;
    let node: Node;
    try {
      node = await this.http.register(this.clusterId, this.nodeId, {
        metadata: this.metadata,
        incarnation: this.incarnation,
        ...(this.leaseSeconds === undefined ? {} : { leaseSeconds: this.leaseSeconds }),
      });
    } catch (err) {
      const error = toClientError(err);
      if (error.code === 'STALE_INCARNATION') this.superseded = error;
      throw error;
    }
    this.registered = true;
    this.registrations++;
    this.leaseMs = node.leaseSeconds * 1000;
    this.renewLease();
    // A connection opened before this registration may have lost its binding
    // with the old record (a record that was gone has no binding): rebind it.
    if (this.connection.state === 'connected' && this.boundRegistration !== this.registrations) {
      this.connection.reconnect('rebinding the node after it registered again');
    }
  }

  private keepaliveInterval(): number {
    return this.keepaliveIntervalMs ?? (this.leaseMs ?? this.leaseSeconds ?? DEFAULT_LEASE_MS) / 3;
  }

  private scheduleKeepalive(delayMs: number): void {
    clearTimeout(this.keepaliveTimer);
    if (this.phase !== 'running' || this.superseded || !this.nodeId) return;
    this.keepaliveTimer = setTimeout(() => void this.keepaliveTick(), delayMs);
  }

  private async keepaliveTick(): Promise<void> {
    if (!this.nodeId) return;
    try {
      if (this.registered) {
        const node = await this.http.keepalive(this.clusterId, this.nodeId, this.incarnation, { signal: this.stopping.signal });
        this.leaseMs = node.leaseSeconds * 1000;
        this.renewLease();
      } else {
        await this.ensureRegistered();
      }
      this.keepaliveFailures = 0;
      this.scheduleKeepalive(this.keepaliveInterval());
    } catch (err) {
      if (this.isStopping) return;
      const error = toClientError(err);
      this.keepaliveFailures++;
      this.emit({ type: 'keepaliveFailed', error, consecutive: this.keepaliveFailures });
      if (isAuthError(error)) {
        this.refused(error);
      } else if (error.code === 'STALE_INCARNATION') {
        this.supersede(error);
      } else if (error.code === 'NODE_NOT_FOUND') {
        // Unknown or DOWN: register again at once (and rebind, see register()).
        this.registered = false;
        this.scheduleKeepalive(0);
      } else if (error.code === 'THROTTLED') {
        // The server asks for less traffic: retrying sooner than usual would add to it.
        this.scheduleKeepalive(this.keepaliveInterval());
      } else {
        // Retry sooner than the interval: two missed keepalives already eat most of the lease.
        this.scheduleKeepalive(Math.min(this.keepaliveInterval(), this.backoff.delay(this.keepaliveFailures)));
      }
    }
  }

  /**
   * A renewal just succeeded. The server started the new lease before this
   * answer arrived, so once `leaseMs` passes from now without another
   * renewal, the lease has certainly lapsed by this client's clock.
   */
  private renewLease(): void {
    if (this.leaseMs === undefined || this.isStopping) return;
    clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => this.leaseLapsed(), this.leaseMs);
  }

  private leaseLapsed(): void {
    this.leaseTimer = undefined;
    if (this.isStopping || this.superseded) return;
    // The next keepalive tick registers anew (a mere renewal if the server kept the node after all).
    this.registered = false;
    this.emit({ type: 'lost', reason: 'expired' });
  }

  /** A newer incarnation registered: stop keepalives for good, never re-register, keep watching. */
  private supersede(error: RosterClientError): void {
    this.superseded = error;
    this.registered = false;
    clearTimeout(this.keepaliveTimer);
    clearTimeout(this.leaseTimer);
    this.keepaliveTimer = this.leaseTimer = undefined;
    if (this.supersededReported) return;
    this.supersededReported = true;
    this.emit({ type: 'lost', reason: 'superseded', error });
  }

  /**
   * The information center refused the token (401 or 403) while running:
   * terminal. Retrying would only repeat the refusal (and, for a node, hide
   * that it is no longer kept alive), so the client reports `lost`
   * (a node) and stops; `closed` carries the error. During start() the
   * rejected start() is the report.
   */
  private refused(error: RosterClientError): void {
    if (this.phase !== 'running' || this.authFailure) return;
    this.authFailure = error;
    clearTimeout(this.keepaliveTimer);
    if (this.nodeId) this.emit({ type: 'lost', reason: 'unauthorized', error });
    void this.stop();
  }

  // ─── Syncs ─────────────────────────────────────────────────────────────

  /**
   * Asks for a sync. At most one runs at a time and at most one more waits;
   * every request made while one waits joins it. The waiting one starts after
   * the running one ends, so it always begins after the request was made.
   */
  private requestSync(reason: SyncReason): Promise<SyncOutcome> {
    return new Promise((resolve) => {
      if (this.isStopping) {
        resolve({ ok: false, error: closedError() });
        return;
      }
      if (this.syncQueue) {
        this.syncQueue.waiters.push(resolve);
        return;
      }
      this.syncQueue = { reason, waiters: [resolve] };
      if (!this.syncRunning) void this.drainSyncs();
    });
  }

  private async drainSyncs(): Promise<void> {
    this.syncRunning = true;
    while (this.syncQueue) {
      const { reason, waiters } = this.syncQueue;
      this.syncQueue = undefined;
      const outcome = await this.syncOnce(reason);
      for (const resolve of waiters) resolve(outcome);
    }
    this.syncRunning = false;
  }

  private async syncOnce(reason: SyncReason): Promise<SyncOutcome> {
    if (this.isStopping) return { ok: false, error: closedError() };
    clearTimeout(this.syncRetryTimer);
    this.syncRetryTimer = undefined;
    const connection = this.connection.state === 'connected' ? this.connections : undefined;
    const gaps = this.gaps;

    // Unless a gap says an event below the highest revision seen is missing, the cache is exactly the
    // server's state at that revision: ask for the list only if the cluster moved past it. Anything
    // missed while disconnected has a higher revision, so this holds after a reconnect too; the server
    // answers 304 from one read of its revision counter instead of reading the whole cluster. Before the
    // first list the cache holds only the events that came before it, whatever their revision: read it all.
    const unless = gaps === this.gapsResolved && this.cache.viewed && this.cache.revision > 0 ? this.cache.revision : undefined;
    this.cache.beginSnapshot();
    let outcome: SnapshotOutcome | 'unchanged';
    try {
      const list = await this.http.listNodesUnless(this.clusterId, unless, { all: true }, { signal: this.stopping.signal });
      if (list === 'not-modified') {
        this.cache.cancelSnapshot();
        outcome = 'unchanged';
      } else {
        outcome = this.cache.applySnapshot(list);
      }
    } catch (err) {
      this.cache.cancelSnapshot();
      const error = toClientError(err);
      if (isAuthError(error)) {
        this.refused(error);
        return { ok: false, error };
      }
      this.syncFailures++;
      // While the cache is known to be behind, retry; a failed periodic refresh just waits for the next one.
      if (!this.isStopping && this.phase === 'running' && this.connection.state === 'connected' && this.stale) {
        this.syncRetryTimer = setTimeout(() => void this.requestSync('retry'), this.backoff.delay(this.syncFailures));
      }
      return { ok: false, error };
    }

    this.syncFailures = 0;
    this.lastSync = new Date();
    if (connection !== undefined && connection === this.connections && this.connection.state === 'connected') {
      this.syncedConnection = connection;
    }
    this.gapsResolved = Math.max(this.gapsResolved, gaps);
    if (outcome === 'unchanged') {
      // Confirmed as it is. A quiet periodic refresh is not worth an event; a reconnect's sync is.
      if (reason !== 'refresh') this.emit({ type: 'resynced', reason, revision: this.cache.revision, nodes: this.cache.size, reset: false });
      this.saveCacheFile();
      return { ok: true };
    }
    for (const change of outcome.changes) this.emitNodeChange(change, 'sync');
    this.emit({ type: 'resynced', reason, revision: this.cache.revision, nodes: this.cache.size, reset: outcome.reset });
    if (outcome.changed) this.emitList();
    this.saveCacheFile();
    return { ok: true };
  }

  private scheduleRefresh(): void {
    if (this.refreshIntervalMs <= 0 || this.isStopping) return;
    // Jitter keeps a fleet started together from refreshing together.
    const delay = this.refreshIntervalMs * (0.9 + 0.2 * Math.random());
    this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  private async refresh(): Promise<void> {
    await this.requestSync('refresh');
    this.scheduleRefresh();
  }

  // ─── Cache file ────────────────────────────────────────────────────────

  private async loadCacheFile(): Promise<CacheFileContent | undefined> {
    if (!this.cacheFile) return undefined;
    try {
      const content = await readCacheFile(this.cacheFile, this.clusterId);
      if (!content) return undefined;
      this.cache.load(content);
      this.lastSync = new Date(content.savedAt);
      this.emitList();
      return content;
    } catch (err) {
      this.emit({ type: 'warning', message: `ignoring the cache file ${this.cacheFile}: ${err instanceof Error ? err.message : String(err)}`, error: err });
      return undefined;
    }
  }

  /** Saves the list a sync just confirmed. Writes never overlap; only the newest pending content is written. */
  private saveCacheFile(): void {
    if (!this.cacheFile || !this.lastSync) return;
    this.fileNext = cacheFileContent(this.clusterId, this.cache.revision, this.lastSync, this.cache.nodes());
    this.fileWrite ??= this.writeCacheFiles(this.cacheFile).finally(() => {
      this.fileWrite = undefined;
    });
  }

  private async writeCacheFiles(path: string): Promise<void> {
    for (let content = this.fileNext; content; content = this.fileNext) {
      this.fileNext = undefined;
      try {
        await writeCacheFile(path, content);
      } catch (err) {
        this.emit({ type: 'warning', message: `could not write the cache file ${path}: ${err instanceof Error ? err.message : String(err)}`, error: err });
      }
    }
  }
}
