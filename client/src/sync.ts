/**
 * The sync coordinator: when and how the cache is reconciled with the
 * server's list.
 *
 * A sync fetches the list (`?status=all`, so DOWN nodes' revisions are
 * known) and merges it with the live events (cache.ts). It runs after every
 * (re)connection, on a revision gap, and every `refreshIntervalMs`. At most
 * one runs at a time and at most one more waits; every request made while
 * one waits joins it, and the waiting one starts after the running one ends,
 * so it always begins after the request was made.
 *
 * A sync "confirms" the cache when it began on an open connection that is
 * still the current one, after every gap seen so far; until then the cache
 * is `stale`.
 */
import type { Backoff } from './backoff.ts';
import type { ClusterCache, SnapshotOutcome } from './cache.ts';
import { closedError, toClientError, type RosterClientError } from './errors.ts';
import type { HttpClient } from './http-client.ts';
import type { SyncReason } from './types.ts';

/** What a sync ended with. Syncs never reject: callers that care look at this. */
export type SyncOutcome = { ok: true } | { ok: false; error: RosterClientError };

export interface SyncHooks {
  /** The connection as it is now: whether it is open, and how many connections have opened so far. */
  connection(): { open: boolean; opened: number };
  /** Whether a failed sync should be retried (the client is running). */
  retrying(): boolean;
  /** A sync confirmed the cache; `outcome` is undefined when the list had not changed (the server answered 304). */
  synced(reason: SyncReason, outcome: SnapshotOutcome | undefined): void;
  /** The server refused the token. */
  refused(error: RosterClientError): void;
}

export interface SyncOptions {
  clusterId: string;
  http: HttpClient;
  cache: ClusterCache;
  backoff: Backoff;
  /** Time between periodic syncs (±10% jitter); 0 turns them off. */
  refreshIntervalMs: number;
}

export class Sync {
  private running = false;
  private queued: { reason: SyncReason; waiters: ((outcome: SyncOutcome) => void)[] } | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** The connection after whose opening a sync succeeded. */
  private syncedConnection = 0;
  private gaps = 0;
  private gapsResolved = 0;
  private last: Date | undefined;
  private stopped = false;
  /** Aborts a fetch in flight when the client stops. */
  private readonly aborter = new AbortController();

  constructor(
    private readonly options: SyncOptions,
    private readonly hooks: SyncHooks,
  ) {}

  /** When the server last confirmed the list (or when the cache file that seeded the cache was saved). */
  get lastSyncedAt(): Date | undefined {
    return this.last;
  }

  /** The cache was seeded from a list the server confirmed at `savedAt`. */
  seeded(savedAt: Date): void {
    this.last = savedAt;
  }

  /** True while the list may be behind the server: not connected, not yet synced since the connection opened, or a gap not yet resynced. */
  get stale(): boolean {
    const { open, opened } = this.hooks.connection();
    return !open || this.syncedConnection !== opened || this.gapsResolved < this.gaps;
  }

  /** An event skipped a revision: something may be missing until the next sync. */
  gap(): void {
    this.gaps++;
    void this.request('gap');
  }

  /** Asks for a sync (see the rules above). */
  request(reason: SyncReason): Promise<SyncOutcome> {
    return new Promise((resolve) => {
      if (this.stopped) {
        resolve({ ok: false, error: closedError() });
        return;
      }
      if (this.queued) {
        this.queued.waiters.push(resolve);
        return;
      }
      this.queued = { reason, waiters: [resolve] };
      if (!this.running) void this.drain();
    });
  }

  /** Starts the periodic refreshes. */
  startRefreshing(): void {
    const { refreshIntervalMs } = this.options;
    if (refreshIntervalMs <= 0 || this.stopped) return;
    // Jitter keeps a fleet started together from refreshing together.
    const delay = refreshIntervalMs * (0.9 + 0.2 * Math.random());
    this.refreshTimer = setTimeout(() => void this.refresh(), delay);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    this.aborter.abort();
  }

  private async refresh(): Promise<void> {
    await this.request('refresh');
    this.startRefreshing();
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queued) {
      const { reason, waiters } = this.queued;
      this.queued = undefined;
      const outcome = await this.once(reason);
      for (const resolve of waiters) resolve(outcome);
    }
    this.running = false;
  }

  private async once(reason: SyncReason): Promise<SyncOutcome> {
    if (this.stopped) return { ok: false, error: closedError() };
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const { cache, http, clusterId } = this.options;
    const before = this.hooks.connection();
    const gaps = this.gaps;

    // Unless a gap says an event is missing, the cache is exactly the server's state at its complete
    // revision (every one up to it seen or listed; a late event may still be missing above it, and then
    // the cluster is past it): ask for the list only if the cluster moved past it. Anything missed while
    // disconnected has a higher revision, so this holds after a reconnect too; the server answers 304
    // from one read of its revision counter instead of reading the whole cluster. Before the first list
    // the cache holds only the events that came before it, whatever their revision: read it all.
    const unless = gaps === this.gapsResolved && cache.viewed && cache.complete > 0 ? cache.complete : undefined;
    cache.beginSnapshot();
    let outcome: SnapshotOutcome | undefined;
    try {
      const list = await http.listNodesUnless(clusterId, unless, { all: true }, { signal: this.aborter.signal });
      if (list === 'not-modified') cache.cancelSnapshot();
      else outcome = cache.applySnapshot(list);
    } catch (err) {
      cache.cancelSnapshot();
      return this.failed(toClientError(err));
    }

    this.failures = 0;
    this.last = new Date();
    const after = this.hooks.connection();
    if (before.open && after.open && before.opened === after.opened) this.syncedConnection = after.opened;
    this.gapsResolved = Math.max(this.gapsResolved, gaps);
    this.hooks.synced(reason, outcome);
    return { ok: true };
  }

  private failed(error: RosterClientError): SyncOutcome {
    if (error.refused) {
      this.hooks.refused(error);
      return { ok: false, error };
    }
    this.failures++;
    // While the cache is known to be behind, retry; a failed periodic refresh just waits for the next one.
    if (!this.stopped && this.hooks.retrying() && this.hooks.connection().open && this.stale) {
      const delay = Math.max(this.options.backoff.delay(this.failures), error.retryAfterMs ?? 0);
      this.retryTimer = setTimeout(() => void this.request('retry'), delay);
    }
    return { ok: false, error };
  }
}
