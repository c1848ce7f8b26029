/**
 * A child process of the `scale` scenario (bench/scale.ts): a share of the
 * cluster's nodes, run by the SDK, so the bench's own process stays free to
 * observe. Started with an IPC channel and its share as JSON in argv[2].
 *
 * Two kinds of share:
 * - `bound`: each node is a RosterClient with its nodeId — it registers,
 *   keeps alive every lease/3, holds a bound WebSocket connection with
 *   batched messages, keeps the cluster's list in its cache and refreshes it
 *   (everything at the SDK's defaults).
 * - `plain`: nodes without a connection: each a `RosterLease` (the SDK's
 *   registration and keepalive loop, lease/3, retries and re-registration,
 *   without a WebSocket or a cache: a RosterClient's cache holds the whole
 *   list, 6.9 MB at 10,000 nodes), and a list refresh at the SDK's interval
 *   and jitter by `listNodesIfChanged` (If-None-Match), as the SDK's sync
 *   does. The revision offered is the newest list this process has read: a
 *   host's nodes share one list, so a changed cluster costs one full read per
 *   process, not one per node.
 *
 * Messages from the parent: `stats`, `digests` (each bound client's healthy
 * list as one digest, to compare with the server's), `stop` (every node
 * deregisters, as a stopping fleet does). Every answer carries the request's
 * `id`.
 */
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_REFRESH_INTERVAL_SECONDS } from '@roster/contract';
import { listNodes, listNodesIfChanged, RosterClient, RosterLease, type SyncReason } from '@roster/client';
import { Agent, setGlobalDispatcher } from 'undici';
import { listDigest } from './scale-digest.ts';

export interface ShareSpec {
  kind: 'bound' | 'plain';
  httpUrl: string;
  wsUrl: string;
  clusterId: string;
  /** Node ids are `${prefix}${i}` for i in [from, from + count). */
  prefix: string;
  from: number;
  count: number;
  /**
   * With `registerMs` (the parent's bound on it), every node first registers, a few at a time, and
   * keeps alive (the SDK's lease); the RosterClients then start, at the parent's `go`, evenly spread
   * over `spreadMs` with the incarnations already registered, so their starts change nothing a
   * subscriber is told (a fleet that came up before its watchers did). Without it (a restart)
   * the RosterClients start at once as new incarnations.
   */
  registerMs?: number;
  /** The RosterClients' starts are spread over this time; it also spreads their refreshes and pings. */
  spreadMs: number;
  /** @default the SDK's 300 s */
  refreshIntervalMs?: number;
}

export type ParentMessage = { id: number; type: 'stats' | 'digests' | 'stop' | 'go' };

export interface ShareStats {
  /** Nodes whose start finished (registered; bound ones connected with a list). */
  started: number;
  /** Starts that failed (retried until they succeed), and why the last one did. */
  startFailures: number;
  lastStartError?: string;
  keepaliveFailures: number;
  /** Leases this side saw lapse (`lost` expired). */
  leasesLost: number;
  /** Registrations after the first (a 404 made a node register again). */
  reRegistrations: number;
  /** Plain nodes: list refreshes, and those that read the whole list (not 304). */
  refreshes: number;
  fullLists: number;
  /** Bound nodes: the RosterClients' syncs with the server's list, by reason (`resynced`; a quiet refresh answered 304 is not one). */
  resyncs: Partial<Record<SyncReason, number>>;
  /** Bound nodes: `down` events their clients reported, by node id (for false downs and detection). */
  downs: number;
  /** The wall-clock time each node's down was first reported by a client of this process. */
  firstDownAt: Record<string, number>;
}

export type ChildMessage =
  | { type: 'registered' }
  | { type: 'ready'; incarnations: Record<string, number> }
  | { id: number; type: 'stats'; stats: ShareStats }
  | { id: number; type: 'digests'; digests: Record<string, number> }
  | { id: number; type: 'stopped' };

const spec = JSON.parse(process.argv[2] ?? '{}') as ShareSpec;
/**
 * The SDK's requests go through fetch's global pool, which opens a connection for every request in flight:
 * thousands of nodes in one process would open thousands when the server slows, and each one that times out
 * is closed and opened again. A host's processes share a few connections; so do these.
 */
const CONNECTIONS_PER_PROCESS = 64;
/** Registrations one process keeps in flight before the ramp. */
const REGISTRATIONS_IN_FLIGHT = 8;
const agent = new Agent({ connections: CONNECTIONS_PER_PROCESS });
setGlobalDispatcher(agent);
const send = (message: ChildMessage): void => {
  process.send?.(message);
};

const stats: ShareStats = { started: 0, startFailures: 0, keepaliveFailures: 0, leasesLost: 0, reRegistrations: 0, refreshes: 0, fullLists: 0, resyncs: {}, downs: 0, firstDownAt: {} };
const incarnations: Record<string, number> = {};
const nodeIds = Array.from({ length: spec.count }, (_, i) => `${spec.prefix}${spec.from + i}`);
const refreshMs = spec.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_SECONDS * 1000;
let stopping = false;

// ─── Bound nodes: RosterClients ─────────────────────────────────────────────

const clients: RosterClient[] = [];
/** The digest of each client's list, kept until its revision moves (a digest of 10,000 nodes is not free). */
const digestOf = new Map<RosterClient, { revision: number; size: number; digest: string }>();


/** Counts a failed start or registration and waits 1-3 s before the next try; false once the process is stopping. */
async function afterStartFailure(err: unknown): Promise<boolean> {
  stats.startFailures++;
  stats.lastStartError = err instanceof Error ? err.message : String(err);
  if (stopping) return false;
  await sleep(1000 + Math.random() * 2000);
  return true;
}

/** Starts a RosterClient for `nodeId`; a node registered beforehand passes its incarnation and the lease that kept it alive until now. */
async function startBound(nodeId: string, registered?: RosterLease): Promise<void> {
  for (;;) {
    // A failed start() stops its client for good: an application starts a new one.
    const client = new RosterClient({ httpUrl: spec.httpUrl, wsUrl: spec.wsUrl, clusterId: spec.clusterId, nodeId, refreshIntervalMs: refreshMs, incarnation: registered?.incarnation });
    client.on('down', (e) => {
      stats.downs++;
      stats.firstDownAt[e.node.nodeId] ??= Date.now();
    });
    client.on('keepaliveFailed', () => stats.keepaliveFailures++);
    client.on('resynced', (e) => {
      stats.resyncs[e.reason] = (stats.resyncs[e.reason] ?? 0) + 1;
    });
    client.on('lost', (e) => {
      if (e.reason === 'expired') stats.leasesLost++;
    });
    try {
      await client.start();
      // The RosterClient keeps the same incarnation alive from here: the lease ends without deregistering.
      await registered?.stop({ deregister: false });
      incarnations[nodeId] = client.incarnation;
      clients.push(client);
      stats.started++;
      return;
    } catch (err) {
      // Refused under load (a 429, a timeout): retried, as an application would.
      if (!(await afterStartFailure(err))) return;
    }
  }
}

function digests(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const client of clients) {
    let known = digestOf.get(client);
    const size = client.nodes().length;
    if (!known || known.revision !== client.revision || known.size !== size) {
      known = { revision: client.revision, size, digest: client.stale ? 'stale' : listDigest(client.nodes()) };
      if (!client.stale) digestOf.set(client, known);
    }
    counts[known.digest] = (counts[known.digest] ?? 0) + 1;
  }
  return counts;
}

// ─── Plain nodes: the SDK's lease and a conditional refresh ────────────────

const leases: RosterLease[] = [];
/** The newest list revision this process read (the If-None-Match its nodes offer). */
let knownRevision: number | undefined;
const refreshTimers = new Set<NodeJS.Timeout>();

/** The refresh in progress, and the one queued behind it that every later caller shares (see `refresh`). */
let inFlight: Promise<void> | undefined;
let next: Promise<void> | undefined;
/** Refreshes asked for and not yet done (the one in progress and those that share the queued one). */
let refreshesWaiting = 0;

/**
 * One node's refresh of the process's shared list. The process's nodes read
 * one list, as one host's would: one refresh at a time, and every node that
 * asks while one is under way shares the single refresh queued behind it,
 * which asks with the revision the first brought (304, unless the list moved
 * again). Sent side by side, each refresh of a storm's seconds read the whole
 * list (16 a second at 4,850 nodes); queued one behind the other, a slow
 * server made the queue grow without end (4,000 waiting, 16 more a second,
 * on a box that answered a list in seconds).
 */
function refresh(): Promise<void> {
  stats.refreshes++;
  refreshesWaiting++;
  const mine = inFlight
    ? (next ??= inFlight.then(() => {
        next = undefined;
        return inFlight ?? startRefresh();
      }))
    : startRefresh();
  return mine.finally(() => refreshesWaiting--);
}

function startRefresh(): Promise<void> {
  const started = refreshOnce().finally(() => {
    if (inFlight === started) inFlight = undefined;
  });
  inFlight = started;
  return started;
}

async function refreshOnce(): Promise<void> {
  try {
    const list =
      knownRevision === undefined
        ? await listNodes({ httpUrl: spec.httpUrl, clusterId: spec.clusterId, all: true })
        : await listNodesIfChanged({ httpUrl: spec.httpUrl, clusterId: spec.clusterId, all: true, revision: knownRevision });
    if (list !== 'not-modified') {
      stats.fullLists++;
      knownRevision = Math.max(knownRevision ?? 0, list.revision);
    }
  } catch {
    // A failed refresh waits for the next one, as the SDK's does.
  }
}

function scheduleRefresh(delayMs = refreshMs * (0.9 + 0.2 * Math.random())): void {
  if (stopping) return;
  // By default the SDK's jitter: ±10% of the interval.
  const timer = setTimeout(() => {
    refreshTimers.delete(timer);
    void refresh().then(() => scheduleRefresh());
  }, delayMs);
  refreshTimers.add(timer);
}

/** Registers `nodeId` and keeps it alive with the SDK's RosterLease, from now on (a failed start is tried again). */
async function keepAlive(nodeId: string): Promise<RosterLease | undefined> {
  const incarnation = Date.now();
  for (;;) {
    // A failed start() stops its lease for good: an application starts a new one.
    const lease = new RosterLease({ httpUrl: spec.httpUrl, clusterId: spec.clusterId, nodeId, incarnation });
    lease.on('keepaliveFailed', () => stats.keepaliveFailures++);
    lease.on('lost', (e) => {
      if (e.reason === 'expired') stats.leasesLost++;
    });
    lease.on('registered', (count) => {
      if (count > 1) stats.reRegistrations++;
    });
    try {
      await lease.start();
      return lease;
    } catch (err) {
      if (!(await afterStartFailure(err))) return undefined;
    }
  }
}

/** A plain node: its lease; its refreshes begin once the process has its list (`refreshAll`). */
async function startPlain(nodeId: string): Promise<void> {
  const lease = await keepAlive(nodeId);
  if (!lease) return;
  leases.push(lease);
  incarnations[nodeId] = lease.incarnation;
  stats.started++;
}

/** Reads the process's list once, then each plain node refreshes at the SDK's interval, the first time anywhere in it (a fleet long up has every phase). */
async function refreshAll(): Promise<void> {
  await refresh();
  for (let i = 0; i < leases.length; i++) scheduleRefresh(Math.random() * refreshMs);
}

// ─── Start, answer, stop ────────────────────────────────────────────────────

/**
 * With ROSTER_SCALE_TRACE naming a file, each process appends a line of its state to it every 10 s:
 * memory, the connection pool's requests in flight and queued, the refreshes waiting, the failures so far
 * (for a run that goes wrong; `jq` reads it).
 */
const TRACE_FILE = process.env.ROSTER_SCALE_TRACE;
if (TRACE_FILE) {
  setInterval(() => {
    const { rss, heapUsed } = process.memoryUsage();
    const pools = Object.values(agent.stats).map(({ connected, pending, running, size }) => ({ connected, pending, running, size }));
    const line = { at: new Date().toISOString(), pid: process.pid, kind: spec.kind, nodes: spec.count, rssMiB: Math.round(rss / 2 ** 20), heapMiB: Math.round(heapUsed / 2 ** 20), pools, refreshesWaiting, ...stats, firstDownAt: undefined };
    appendFileSync(TRACE_FILE, `${JSON.stringify(line)}\n`);
  }, 10_000).unref();
}

async function stopAll(): Promise<void> {
  stopping = true;
  for (const timer of refreshTimers) clearTimeout(timer);
  const all: (() => Promise<unknown>)[] = [...leases.map((l) => () => l.stop()), ...clients.map((c) => () => c.stop())];
  // A few dozen at a time: a stopping host does not flood the information center either.
  for (let i = 0; i < all.length; i += 32) await Promise.all(all.slice(i, i + 32).map((stop) => stop()));
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'stats') send({ id: message.id, type: 'stats', stats });
  else if (message.type === 'digests') send({ id: message.id, type: 'digests', digests: digests() });
  else if (message.type === 'stop') void stopAll().finally(() => send({ id: message.id, type: 'stopped' }));
});
// The parent gone (killed, or its IPC closed): nothing left to serve.
process.on('disconnect', () => process.exit(0));

/**
 * Registers the nodes a few at a time, as fast as the information center answers: a registration
 * that waits in the pool past its timeout is sent again, and a loaded box then registers each node
 * several times over (10,776 renewals for 3,000 nodes when they were spread over a minute).
 */
async function registerAll(start: (nodeId: string) => Promise<void>): Promise<void> {
  const queue = [...nodeIds];
  await Promise.all(
    Array.from({ length: REGISTRATIONS_IN_FLIGHT }, async () => {
      for (let id = queue.shift(); id !== undefined && !stopping; id = queue.shift()) await start(id);
    }),
  );
}

/** Runs `start` for each node, evenly spread over `spreadMs`. */
async function spread<T>(ids: readonly T[], spreadMs: number, start: (id: T) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await Promise.all(
    ids.map(async (id, i) => {
      const at = ids.length <= 1 ? 0 : (i / ids.length) * spreadMs;
      await sleep(Math.max(0, at - (performance.now() - t0)));
      if (!stopping) await start(id);
    }),
  );
}

let go: () => void = () => undefined;
const released = new Promise<void>((resolve) => (go = resolve));
process.on('message', (message: ParentMessage) => {
  if (message.type === 'go') go();
});

if (spec.registerMs === undefined) {
  // A restart: new incarnations, at once.
  send({ type: 'registered' });
  await spread(nodeIds, spec.spreadMs, (nodeId) => (spec.kind === 'bound' ? startBound(nodeId) : startPlain(nodeId)));
  if (spec.kind === 'plain') await refreshAll();
} else if (spec.kind === 'plain') {
  await registerAll(startPlain);
  send({ type: 'registered' });
  await released;
  await refreshAll();
} else {
  const registered = new Map<string, RosterLease>();
  await registerAll(async (nodeId) => {
    const lease = await keepAlive(nodeId);
    if (lease) registered.set(nodeId, lease);
  });
  send({ type: 'registered' });
  await released;
  await spread(nodeIds, spec.spreadMs, (nodeId) => startBound(nodeId, registered.get(nodeId)));
}
send({ type: 'ready', incarnations });
