/**
 * RosterClient: a node's (or a watcher's) view of one cluster — the front
 * that composes four parts:
 * - the connection (connection.ts) keeps one WebSocket open, subscribed to
 *   the cluster and, for a node, bound to it;
 * - the lease (lease.ts, nodes only) registers, keeps alive every lease/3,
 *   re-registers on 404 and gives up for good on 409;
 * - the sync coordinator (sync.ts) reconciles the cache (cache.ts) with the
 *   server's list after every (re)connection, on a revision gap, and
 *   periodically;
 * - the cache file (cache-file.ts, optional) keeps the last confirmed list
 *   for a start while the information center is unreachable.
 * The front (its options are in options.ts) runs start and stop, routes what the
 * connection receives, and turns it all into the events users see.
 *
 * Start order: register → connect (which subscribes) → fetch the list. The
 * subscription exists before the fetch begins, so no event can fall between
 * the two; an event that is also in the list is dropped by the per-node
 * revision rule.
 */
import { eventsIn, isObject } from '@roster/contract';
import { toBackoff, type Backoff } from './backoff.ts';
import { ClusterCache, type NodeChange, type SnapshotOutcome } from './cache.ts';
import { CacheFile, type CacheFileContent } from './cache-file.ts';
import { Connection, isTokenRefusal, isUnknownNode, type ConnectionState, type DropInfo } from './connection.ts';
import { attemptError, closedError, errorOfAnswer, RosterClientError, toClientError } from './errors.ts';
import { EventHub } from './events.ts';
import { HttpClient } from './http-client.ts';
import { Lease } from './lease.ts';
import { checkOptions, DEFAULT_PING_INTERVAL_MS, DEFAULT_REFRESH_INTERVAL_MS, type RosterClientOptions } from './options.ts';
import { stopOnSignals } from './signals.ts';
import { Sync } from './sync.ts';
import type {
  ChangeEvent,
  ChangeSource,
  ClientEvent,
  ClientEventOf,
  ClientEventType,
  ClosedEvent,
  ConnectedEvent,
  DisconnectedEvent,
  DownEvent,
  KeepaliveFailedEvent,
  KeepaliveRecoveredEvent,
  LostEvent,
  MembershipEvent,
  Node,
  RegisteredEvent,
  ResyncedEvent,
  SyncReason,
  UpdatedEvent,
  WarningEvent,
} from './types.ts';

export type { RosterClientOptions };

type Phase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

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

export class RosterClient implements AsyncDisposable {
  readonly clusterId: string;
  readonly nodeId: string | undefined;
  readonly incarnation: number;

  private readonly options: RosterClientOptions;
  private readonly requestTimeoutMs: number;
  private readonly backoff: Backoff;
  private readonly http: HttpClient;
  private readonly cache: ClusterCache;
  private readonly hub = new EventHub();
  private readonly connection: Connection;
  private readonly sync: Sync;
  /** Present for a node. */
  private readonly lease: Lease | undefined;
  private readonly file: CacheFile | undefined;

  private phase: Phase = 'new';
  private startPromise: Promise<void> | undefined;
  private stopPromise: Promise<void> | undefined;
  /** Settles when the first connection opens or fails, while start() waits for it. */
  private firstOpen: Deferred<void> | undefined;
  private startRefusals = 0;
  /** Set when the token was refused while running; the client then stops by itself. */
  private authFailure: RosterClientError | undefined;
  /** Connections opened so far. */
  private connections = 0;
  /** The registration a connection being opened was prepared after; an open connection bound to an older one is rebound. */
  private preparedRegistration = 0;
  private boundRegistration = 0;
  /** The cache came from the cache file and no sync has confirmed it yet: the first sync's differences are `resync`. */
  private fromFile = false;
  private removeSignalHandlers: (() => void) | undefined;
  /** Fires at the cache's gap deadline (`armGapTimer`). */
  private gapTimer: NodeJS.Timeout | undefined;
  private gapTimerAt = 0;

  constructor(options: RosterClientOptions) {
    checkOptions(options);
    this.options = { ...options, metadata: { ...options.metadata } };
    this.clusterId = options.clusterId;
    this.nodeId = options.nodeId;
    this.incarnation = options.incarnation ?? Date.now();
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.backoff = toBackoff(options.backoff);
    this.http = new HttpClient({ baseUrl: options.httpUrl, token: options.token, timeoutMs: this.requestTimeoutMs });
    this.cache = new ClusterCache(this.clusterId, { gapWaitMs: options.gapWaitMs });
    this.connection = this.createConnection();
    this.sync = this.createSync();
    this.lease = this.nodeId === undefined ? undefined : this.createLease(this.nodeId);
    if (options.cacheFile) {
      this.file = new CacheFile(options.cacheFile, this.clusterId, (message, error) => this.emit({ type: 'warning', message, error }));
    }
  }

  private createConnection(): Connection {
    const { options } = this;
    return new Connection(
      {
        backoff: this.backoff,
        pingIntervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
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

  private createSync(): Sync {
    return new Sync(
      { clusterId: this.clusterId, http: this.http, cache: this.cache, backoff: this.backoff, refreshIntervalMs: this.options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS },
      {
        connection: () => ({ open: this.connection.state === 'connected', opened: this.connections }),
        retrying: () => this.phase === 'running',
        synced: (reason, outcome) => this.onSynced(reason, outcome),
        refused: (error) => this.refused(error),
      },
    );
  }

  private createLease(nodeId: string): Lease {
    const { clusterId, incarnation, http, options } = this;
    const { leaseSeconds, metadata = {} } = options;
    const lease = new Lease({
      transport: {
        register: () => http.register(clusterId, nodeId, { metadata, incarnation, ...(leaseSeconds === undefined ? {} : { leaseSeconds }) }),
        keepalive: (signal) => http.keepalive(clusterId, nodeId, incarnation, { signal }),
      },
      leaseSeconds,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      backoff: this.backoff,
    });
    lease.on('keepaliveFailed', (event) => this.emit(event));
    lease.on('keepaliveRecovered', (event) => this.emit(event));
    lease.on('lost', (event) => {
      this.emit(event);
      if (event.reason === 'unauthorized' && event.error) this.refused(event.error);
    });
    lease.on('registered', (count) => {
      // A connection opened before this registration may have lost its binding
      // with the old record (a record that was gone has no binding): rebind it.
      if (this.connection.state === 'connected' && this.boundRegistration !== count) {
        this.connection.reconnect('rebinding the node after it registered again');
      }
    });
    return lease;
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
    return this.sync.lastSyncedAt;
  }

  /**
   * True while the list may be behind the server: not connected, not yet
   * synced since the connection opened, or a revision gap not yet resynced.
   */
  get stale(): boolean {
    return this.sync.stale;
  }

  /** The connection's state: idle → connecting → connected (→ connecting …) → closed. */
  get state(): ConnectionState {
    return this.connection.state;
  }

  /** A node joined the healthy list or came back as a new incarnation. */
  on(type: 'registered', listener: (event: RegisteredEvent) => void): this;
  /** A healthy node re-registered with different metadata or lease. */
  on(type: 'updated', listener: (event: UpdatedEvent) => void): this;
  /** A node left the healthy list; `reason` says why (`expired`, `deregistered`, `disconnected`; undefined only when the server no longer has the record). */
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
  /** A keepalive (or the registration that replaced one) succeeded after `failures` failed in a row. */
  on(type: 'keepaliveRecovered', listener: (event: KeepaliveRecoveredEvent) => void): this;
  /**
   * The lease is gone. `expired` is recoverable: by this client's clock the
   * lease certainly lapsed, and the client registers anew once it can.
   * `superseded` (a newer incarnation took over: no more keepalives, the
   * client keeps watching) and `unauthorized` (the client stops) are terminal.
   */
  on(type: 'lost', listener: (event: LostEvent) => void): this;
  /** Terminal: the client stopped; `deregistered` says whether it deregistered its node. */
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
    if (this.options.stopOnSignals) this.removeSignalHandlers = stopOnSignals(() => this.stop());
    const saved = await this.loadCacheFile();
    try {
      await this.lease?.ensureRegistered();
      this.firstOpen = new Deferred();
      if (this.isStopping) throw closedError();
      this.connection.start();
      await this.firstOpen.promise;
      const outcome = await this.sync.request('start');
      if (!outcome.ok) throw outcome.error;
    } catch (err) {
      const error = toClientError(err);
      if (this.isStopping) throw new RosterClientError('CLOSED', 'the client was stopped while starting', { cause: error });
      if (!saved || !error.retriable) {
        await this.stop();
        throw error;
      }
      this.runFromCacheFile(saved, error);
      return;
    } finally {
      this.firstOpen = undefined;
    }
    this.run();
  }

  /** The information center is unreachable, but the cache file gave a list: serve it and keep trying. */
  private runFromCacheFile(saved: CacheFileContent, error: RosterClientError): void {
    this.emit({
      type: 'warning',
      message: `serving the list cached in ${this.options.cacheFile} at ${saved.savedAt} until the information center answers (${error.message})`,
      error,
    });
    this.run();
    if (this.connection.state === 'idle') this.connection.start();
    else if (this.connection.state === 'connected') void this.sync.request('retry');
  }

  /** From here on the background loops own the client. */
  private run(): void {
    this.phase = 'running';
    this.lease?.start();
    this.sync.startRefreshing();
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopping';
    this.removeSignalHandlers?.();
    this.sync.stop();
    clearTimeout(this.gapTimer);
    this.firstOpen?.reject(closedError());
    await this.lease?.stop();
    const deregistered = await this.deregister();
    await this.connection.close();
    await this.file?.flushed();
    this.phase = 'stopped';
    this.emit(this.authFailure ? { type: 'closed', deregistered, error: this.authFailure } : { type: 'closed', deregistered });
    this.hub.end();
  }

  /**
   * Only a node that was registered is deregistered. (A registration that
   * timed out may have landed all the same; unbound, it simply expires with
   * its lease.) With a refused token a deregistration would be refused too;
   * the lease runs out instead. It comes before closing the socket: closing
   * first would cut the lease and might report the node `disconnected`
   * instead of `deregistered`.
   */
  private async deregister(): Promise<boolean> {
    const { lease, nodeId } = this;
    if (!lease || nodeId === undefined || lease.registrations === 0 || lease.superseded || this.authFailure) return false;
    try {
      await this.http.deregister(this.clusterId, nodeId, this.incarnation, { timeoutMs: Math.min(this.requestTimeoutMs, DEREGISTER_TIMEOUT_MS) });
      return true;
    } catch (err) {
      const error = toClientError(err);
      // 409: a newer incarnation owns the node now; it is not ours to deregister.
      if (error.code !== 'STALE_INCARNATION') {
        this.emit({ type: 'warning', message: `could not deregister ${this.clusterId}/${nodeId}; it will expire with its lease (${error.message})`, error });
      }
      return false;
    }
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
    this.lease?.refuse(error);
    void this.stop();
  }

  // ─── Events ────────────────────────────────────────────────────────────

  private emit(event: ClientEvent): void {
    this.hub.emit(event);
  }

  private emitNodeChange(change: NodeChange, source: ChangeSource): void {
    this.emit({ ...change, source });
  }

  /** `change` carries the whole list; build it only for someone who listens. */
  private emitList(): void {
    if (this.hub.wants('change')) this.emit({ type: 'change', nodes: this.cache.nodes(), revision: this.cache.revision });
  }

  // ─── Cache file and syncs ──────────────────────────────────────────────

  private async loadCacheFile(): Promise<CacheFileContent | undefined> {
    const content = await this.file?.load();
    if (!content) return undefined;
    this.cache.load(content);
    this.sync.seeded(new Date(content.savedAt));
    this.fromFile = true;
    this.emitList();
    return content;
  }

  private onSynced(reason: SyncReason, outcome: SnapshotOutcome | undefined): void {
    // Differences from the cache file's list happened while this process was not running.
    const source: ChangeSource = this.fromFile ? 'resync' : 'sync';
    this.fromFile = false;
    const { revision, size } = this.cache;
    if (outcome === undefined) {
      // Confirmed as it is. A quiet periodic refresh is not worth an event; a reconnect's sync is.
      if (reason !== 'refresh') this.emit({ type: 'resynced', reason, revision, nodes: size, reset: false });
    } else {
      for (const change of outcome.changes) this.emitNodeChange(change, source);
      this.emit({ type: 'resynced', reason, revision, nodes: size, reset: outcome.reset });
      if (outcome.changed) this.emitList();
    }
    const { lastSyncedAt } = this.sync;
    if (lastSyncedAt) this.file?.save(revision, lastSyncedAt, this.cache.nodes());
  }

  // ─── Connection hooks ──────────────────────────────────────────────────

  private socketUrl(bind: boolean): string {
    const url = new URL(this.options.wsUrl);
    url.searchParams.set('clusterId', this.clusterId);
    if (bind && this.nodeId) {
      url.searchParams.set('nodeId', this.nodeId);
      // Bind only our own incarnation: a successor's record must not be tied to this connection.
      url.searchParams.set('incarnation', String(this.incarnation));
    }
    // Several events of the cluster may arrive in one `EVENTS` message; a server that does not batch ignores it.
    url.searchParams.set('batch', 'true');
    if (this.options.token) url.searchParams.set('token', this.options.token);
    return url.toString();
  }

  /** Before each attempt: a node must be registered, or `$connect` refuses to bind it (404). */
  private async prepareConnection(): Promise<string> {
    const { lease } = this;
    if (lease && !lease.superseded) {
      try {
        await lease.ensureRegistered();
      } catch (err) {
        const error = toClientError(err);
        if (error.refused) this.refused(error);
        if (error.code !== 'STALE_INCARNATION') throw error;
      }
    }
    this.preparedRegistration = lease?.registrations ?? 0;
    // A superseded node connects as a watcher: binding would tie the new incarnation's record to this zombie.
    return this.socketUrl(lease !== undefined && !lease.superseded);
  }

  private onOpened(url: string): void {
    this.connections++;
    const bound = new URL(url).searchParams.has('nodeId');
    if (bound) {
      this.boundRegistration = this.preparedRegistration;
      // `$connect` with nodeId renews the lease, like a keepalive.
      this.lease?.renewed();
    }
    this.emit({ type: 'connected', bound, reconnect: this.connections > 1 });
    if (this.phase === 'starting' && this.firstOpen) this.firstOpen.resolve();
    else void this.sync.request('reconnect');
  }

  private onDropped(info: DropInfo): void {
    const unknownNode = isUnknownNode(info);
    if (unknownNode) this.lease?.forget(); // the next attempt's prepare() re-registers
    if (info.wasOpen) this.emit({ type: 'disconnected', reason: info.reason });
    if (isTokenRefusal(info)) {
      void this.refusedConnection(info.status, info.body);
      return;
    }
    if (this.phase === 'starting' && this.firstOpen) {
      // One 404 is expected if the node went down in between; the connection re-registers and retries at once.
      if (unknownNode && this.startRefusals++ === 0) return;
      this.firstOpen.reject(attemptError(`WebSocket ${this.options.wsUrl}`, info));
    }
  }

  /**
   * The upgrade was refused for the token (401, 403). The reason is the
   * HTTP API's, word for word: from the refusal's body when the server sent
   * the contract's error there, else from asking the HTTP API the same
   * question (API Gateway answers a WebSocket refusal with a status only).
   */
  private async refusedConnection(status: number, body: unknown): Promise<void> {
    const what = `WebSocket ${this.options.wsUrl}`;
    let error = errorOfAnswer(what, status, body, this.options.token !== undefined);
    if (!isObject(body) || !isObject(body.error)) {
      error = (await this.http.refusalReason(this.clusterId, { timeoutMs: this.requestTimeoutMs }).catch(() => undefined)) ?? error;
    }
    if (this.phase === 'starting' && this.firstOpen) this.firstOpen.reject(error);
    else this.refused(error);
  }

  private onMessage(message: unknown): void {
    const events = eventsIn(message);
    if (events) return this.onEvents(events);
    if (isObject(message) && (message.type === 'SUBSCRIBED' || message.type === 'UNSUBSCRIBED')) return;
    if (isObject(message) && message.type === 'ERROR' && isObject(message.error)) {
      this.emit({ type: 'warning', message: `the server reported ${String(message.error.code)}: ${String(message.error.message)}` });
      return;
    }
    this.emit({ type: 'warning', message: `ignoring an unexpected message: ${JSON.stringify(message).slice(0, 200)}` });
  }

  /** Live events, one message's worth: each node's change as it comes, the whole list once at the end. */
  private onEvents(events: readonly MembershipEvent[]): void {
    let changed = false;
    let gap = false;
    for (const event of events) {
      const outcome = this.cache.applyEvent(event);
      if (outcome.change) {
        this.emitNodeChange(outcome.change, 'event');
        changed = true;
      }
      gap ||= outcome.gap;
      const self = event.node.nodeId === this.nodeId && event.node.incarnation === this.incarnation;
      if (outcome.applied && self && event.type === 'NODE_DOWN' && this.phase === 'running') {
        // The server says this node is down (its lease lapsed or was cut): register again now, not at the next keepalive.
        this.lease?.forget(true);
      }
    }
    if (changed) this.emitList();
    if (gap) this.sync.gap();
    this.armGapTimer();
  }

  /** Wakes the client when a revision still missing would turn into a gap (a late event that comes first disarms nothing: the check then finds none). */
  private armGapTimer(): void {
    const deadline = this.cache.gapDeadline;
    if (deadline === undefined || this.isStopping) return;
    if (this.gapTimer !== undefined && this.gapTimerAt <= deadline) return;
    clearTimeout(this.gapTimer);
    this.gapTimerAt = deadline;
    this.gapTimer = setTimeout(() => {
      this.gapTimer = undefined;
      if (this.cache.checkGap()) this.sync.gap();
      this.armGapTimer();
    }, Math.max(0, deadline - Date.now()));
  }
}
