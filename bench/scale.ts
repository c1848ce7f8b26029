/**
 * The `scale` scenario: one cluster of `nodes` nodes at the SDK's and the
 * stack's defaults, run by the SDK in child processes (bench/scale-clients.ts),
 * then a storm.
 *
 * - `subscribers` of the nodes are RosterClients (bound, subscribed, batched
 *   messages, the whole list cached); `storm` more are RosterClients too, in a
 *   process of their own; the rest keep alive and refresh their list without
 *   a connection (scale-clients.ts says why and how).
 * - The fleet starts spread over `rampMs` (as a fleet comes up, and so its
 *   refreshes and pings, every 300 s, are spread as in a long-running fleet);
 *   then a steady phase of `steadyMs`: every request the runtime served is
 *   counted per route (its `GET /metrics`), the items written per second are
 *   counted from the table's stream, and any `NODE_DOWN` is false.
 * - The storm: the storm process is SIGKILLed (every connection drops at
 *   once); once an observer has every `NODE_DOWN` (or the deadline passed), a
 *   new process starts the same nodes at once, as new incarnations. Measured:
 *   detection (kill → `NODE_DOWN` at the observer), and the time until every
 *   RosterClient's list equals the server's (a digest of node ids and
 *   incarnations); the requests, posts and writes of the storm.
 * - Beside the counts: `roster capacity`'s prediction for the same workload.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { listNodes, type SyncReason } from '@roster/client';
import { countOf, gatewayDelta, readGatewayCounts, type GatewayReading } from './gateway-counts.ts';
import { ItemWrites, type EventArrival, type WritesWindow } from './item-writes.ts';
import { cpuMicros, rssBytes, startChild, treeCpuMicros, type Child } from './procs.ts';
import type { ChildMessage, ParentMessage, ShareSpec, ShareStats } from './scale-clients.ts';
import { listDigest } from './scale-digest.ts';
import { scalePrediction, type ScalePrediction } from './scale-prediction.ts';
import { summarize, type Summary } from './stats.ts';
import { Subscriber } from './subscriber.ts';
import { watchMemory, type Progress, type RosterTarget } from './scenario.ts';
import type { StormTimeline } from './workload.ts';

const CLIENTS_MODULE = fileURLToPath(new URL('./scale-clients.ts', import.meta.url));

export interface ScaleOptions {
  nodes: number;
  /** Bound, subscribed RosterClients that live through the storm. */
  subscribers: number;
  /** Bound RosterClients killed and restarted in the storm. */
  storm: number;
  /** Child processes for the plain nodes and for the subscribers (the storm has one of its own). */
  processes: { plain: number; subscribers: number };
  /** Every node registers (and keeps alive) first, a few at a time per process, within this time; then the RosterClients start over `rampMs`. */
  registerMs: number;
  rampMs: number;
  steadyMs: number;
  /** How long the storm may take to be seen and to converge. */
  stormTimeoutMs: number;
  /** The SDK's list refresh; only a quick run shortens it. @default the SDK's 300 s */
  refreshIntervalMs?: number;
}

/** Requests per second the runtime served in a window, per route the SDK calls. */
export interface RouteRates {
  keepalive: number;
  list: number;
  /** List reads answered with the whole list (not 304), the bench's own excluded. */
  fullLists: number;
  register: number;
  connect: number;
  ping: number;
  /** `@connections` posts (messages to subscribers). */
  posts: number;
  /** Requests any route refused with 429 (throttled). */
  throttled: number;
}

export interface ChildCost {
  kind: 'plain' | 'subscribers' | 'storm';
  processes: number;
  nodes: number;
  /** CPU time of these processes per node per second, in the steady phase. */
  cpuUsPerNodeSecond: number;
  /** Resident memory per node at the end of the steady phase. */
  rssKiBPerNode: number;
}

export interface ScaleResult {
  /** The scenario's cluster (its client processes carry it on their command line). */
  clusterId: string;
  nodes: number;
  subscribers: number;
  stormNodes: number;
  rampSeconds: number;
  steadySeconds: number;
  /** Every node registered and, for the RosterClients, connected with a list. */
  allStarted: boolean;
  /** NODE_DOWN seen by the observer while nothing was stopped (goal 0): in the ramp, and in the steady phase. */
  falseDowns: { ramp: number; steady: number };
  /** Lapses and failed keepalives the SDK reported in the steady phase. */
  steadyClientTrouble: { keepaliveFailures: number; leasesLost: number; reRegistrations: number };
  steady: { rates: RouteRates; writes: WritesWindow };
  crash: {
    /** Storm nodes whose NODE_DOWN the observer saw. */
    observed: number;
    /** Kill → NODE_DOWN at the observer. */
    detectionMs: Summary;
    /** Kill → the same node's down reported by every surviving RosterClient (its first report in each process, the latest of them). */
    allSubscribersMs: Summary;
    /**
     * The detection in two parts: kill → the node's lease cut (the runtime's `$disconnect` writing it: here each
     * waits for DynamoDB Local to take the writes of the disconnects before it, on AWS they run side by side), and
     * cut → NODE_DOWN at the observer (the grace, the sweep, the delivery: what the 3.5 s bound is made of).
     */
    killToCutMs: Summary;
    cutToDownMs: Summary;
  };
  storm: {
    restartedAfterMs: number;
    /** Every RosterClient's list equals the server's (null: not within the deadline). */
    convergedMs: { fromKill: number | null; fromRestart: number | null };
    /** Counts over the storm, from the kill until converged. */
    counts: RouteRates;
    writes: WritesWindow;
    /** The full-list reads the clients made, by why: the restarts' first lists, revision gaps, refreshes that met a changed list (bound clients and plain processes), reconnections. */
    fullListsBy: { starts: number; gaps: number; refreshes: number; plainRefreshes: number; reconnects: number };
    /** When the storm's events and subscription changes reached the stream (as the bench read them), in slots from the kill, and the batches the observer got: what the planner's batching model is given. */
    timeline: Pick<StormTimeline, 'slotMs' | 'eventsPerSlot' | 'joinsPerSlot' | 'deliveries'> & { firstAfterKillMs: number | null };
    /** The longest sweep of the storm (the upper bound of its histogram bucket) and the mean. */
    longestSweepMs: number | null;
    meanSweepMs: number | null;
  };
  rssMiB: { runtime: { start: number; max: number; end: number }; dynamodbLocal: { start: number; max: number; end: number } };
  /** CPU the runtime (with its child processes) and DynamoDB Local used in the steady phase, as a share of one core. */
  steadyCpuCores: { runtime: number; dynamodbLocal: number; clients: number };
  clients: ChildCost[];
  /** `roster capacity` for the same workload, beside the measured figures. */
  prediction?: ScalePrediction;
}

const uid = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
const KEEPALIVE = (r: string) => r.endsWith('/keepalive');
const LIST = (r: string) => r === 'GET /v1/clusters/{clusterId}/nodes';
const REGISTER = (r: string) => r === 'PUT /v1/clusters/{clusterId}/nodes/{nodeId}';

/** Per-route rates of a reading's difference over `seconds`; `ownLists` are the bench's own full reads, left out. */
export function routeRates(d: GatewayReading, seconds: number, ownLists = 0): RouteRates {
  const per = (n: number) => Number((n / seconds).toFixed(2));
  return {
    keepalive: per(countOf(d, 'http', KEEPALIVE)),
    list: per(countOf(d, 'http', LIST) - ownLists),
    fullLists: per(countOf(d, 'http', LIST, (s) => s === 200) - ownLists),
    register: per(countOf(d, 'http', REGISTER)),
    connect: per(countOf(d, 'websocket', (r) => r === '$connect')),
    ping: per(countOf(d, 'websocket', (r) => r === 'ping')),
    posts: per(countOf(d, 'connections', (r) => r === 'POST @connections', (s) => s === 200)),
    throttled: per(d.filter((s) => s.status === 429).reduce((sum, s) => sum + s.count, 0)),
  };
}

/** A child process running a share of the nodes, and its IPC. */
class Share {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: ChildMessage) => void>();
  readonly ready: Promise<Extract<ChildMessage, { type: 'ready' }>>;
  readonly registered: Promise<void>;

  constructor(
    readonly child: Child,
    readonly spec: ShareSpec,
  ) {
    let onReady!: (m: Extract<ChildMessage, { type: 'ready' }>) => void;
    let onRegistered!: () => void;
    this.ready = new Promise((resolve) => (onReady = resolve));
    this.registered = new Promise((resolve) => (onRegistered = resolve));
    child.process.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') onReady(m);
      else if (m.type === 'registered') onRegistered();
      else this.waiting.get(m.id)?.(m);
    });
  }

  /** The RosterClients may start (the whole cluster is registered). */
  go(): void {
    this.child.process.send({ id: 0, type: 'go' } satisfies ParentMessage);
  }

  static start(spec: ShareSpec): Share {
    // A RosterClient's cache holds the whole list: thousands of them need more heap than V8's default.
    const child = startChild(process.execPath, ['--max-old-space-size=12288', '--conditions=@roster/source', '--import', 'tsx', CLIENTS_MODULE, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    return new Share(child, spec);
  }

  ask<T extends ChildMessage['type']>(type: ParentMessage['type'], timeoutMs = 120_000): Promise<Extract<ChildMessage, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`scale: a client process (pid ${this.child.pid}) did not answer ${type} within ${timeoutMs} ms:\n${this.child.output()}`));
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(m as Extract<ChildMessage, { type: T }>);
      });
      this.child.process.send({ id, type } satisfies ParentMessage);
    });
  }

  /** Waits for `what` (the child's registrations, or its whole start) for at most `timeoutMs`. */
  async waitFor(what: 'registered' | 'ready', timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`scale: a client process (pid ${this.child.pid}) was not ${what} (${this.spec.count} nodes) within ${timeoutMs} ms:\n${this.child.output()}`)), timeoutMs);
    });
    const exited = this.child.exited.then(() => {
      throw new Error(`scale: a client process (pid ${this.child.pid}) exited while starting:\n${this.child.output()}`);
    });
    try {
      await Promise.race([what === 'ready' ? this.ready : this.registered, deadline, exited]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Splits `count` nodes from `from` into `parts` shares of (nearly) equal size. */
function split(from: number, count: number, parts: number): { from: number; count: number }[] {
  const n = Math.max(1, Math.min(parts, count));
  return Array.from({ length: n }, (_, i) => {
    const start = Math.floor((i * count) / n);
    return { from: from + start, count: Math.floor(((i + 1) * count) / n) - start };
  }).filter((s) => s.count > 0);
}

/** The longest sweep (its histogram bucket's upper bound) and the mean, from two readings of `GET /metrics`. */
async function sweepFigures(httpUrl: string): Promise<{ buckets: Map<number, number>; sum: number; count: number }> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const buckets = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    const b = /^roster_sweep_duration_ms_bucket\{le="([^"]+)"\} (\S+)$/.exec(line);
    if (b) buckets.set(b[1] === '+Inf' ? Infinity : Number(b[1]), Number(b[2]));
    const s = /^roster_sweep_duration_ms_sum (\S+)$/.exec(line);
    if (s) sum = Number(s[1]);
    const c = /^roster_sweep_duration_ms_count (\S+)$/.exec(line);
    if (c) count = Number(c[1]);
  }
  return { buckets, sum, count };
}

function longestSweep(after: Awaited<ReturnType<typeof sweepFigures>>, before: Awaited<ReturnType<typeof sweepFigures>>): { longest: number | null; mean: number | null } {
  const count = after.count - before.count;
  if (count <= 0) return { longest: null, mean: null };
  // Cumulative buckets: the smallest bound that holds every sweep of the window.
  const bounds = [...after.buckets.keys()].sort((a, b) => a - b);
  const longest = bounds.find((le) => (after.buckets.get(le) ?? 0) - (before.buckets.get(le) ?? 0) >= count) ?? null;
  return { longest, mean: Number(((after.sum - before.sum) / count).toFixed(1)) };
}

/** The server's healthy list as the clients' digest. */
async function serverDigest(httpUrl: string, clusterId: string): Promise<{ digest: string; size: number }> {
  const list = await listNodes({ httpUrl, clusterId, timeoutMs: 60_000 });
  const nodes = [...list.nodes].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return { digest: listDigest(nodes), size: nodes.length };
}

/** Sums the children's counters. */
async function childStats(shares: Share[]): Promise<ShareStats[]> {
  return Promise.all(shares.map(async (s) => (await s.ask<'stats'>('stats')).stats));
}

const sumOf = (stats: ShareStats[], key: 'keepaliveFailures' | 'leasesLost' | 'reRegistrations'): number => stats.reduce((n, s) => n + s[key], 0);

/** What every phase works with: the runtime, the cluster, the fleet's processes, the observer and the stream reader. */
interface Run {
  target: RosterTarget;
  options: ScaleOptions;
  clusterId: string;
  observer: Subscriber;
  writes: ItemWrites;
  /** Every client process started, in order (the restarted storm process last). */
  all: Share[];
  plain: Share[];
  subs: Share[];
  storm: Share;
  stormSpec: ShareSpec;
  progress: Progress;
}

/** Starts the fleet: every node registers and keeps alive, then the RosterClients start over the ramp. */
async function startFleet(run: Run): Promise<number> {
  const { all, options, progress, observer } = run;
  const started = performance.now();
  await Promise.all(all.map((s) => s.waitFor('registered', options.registerMs)));
  progress(`scale: every node registered and kept alive (${Math.round((performance.now() - started) / 1000)} s); the RosterClients start over ${options.rampMs / 1000} s`);
  for (const s of all) s.go();
  await Promise.all(all.map((s) => s.waitFor('ready', options.rampMs + options.stormTimeoutMs)));
  progress(`scale: every node started (${Math.round((performance.now() - started) / 1000)} s); steady phase, ${options.steadyMs / 1000} s`);
  return observer.count('NODE_DOWN');
}

type Steady = Pick<ScaleResult, 'steady' | 'steadyClientTrouble' | 'steadyCpuCores' | 'clients'> & { falseDowns: number };

const serverCpu = (target: RosterTarget) => ({ runtime: treeCpuMicros(target.runtimePid) ?? 0, dynamodb: target.dynamodbPid === undefined ? 0 : (cpuMicros(target.dynamodbPid) ?? 0) });

/** The steady phase: nothing is stopped; what the runtime served, what was written, what it all cost. */
async function steadyPhase(run: Run): Promise<Steady> {
  const { all, target, observer, options } = run;
  const { steadyMs } = options;
  const downs0 = observer.count('NODE_DOWN');
  const cpu0 = all.map((s) => cpuMicros(s.child.pid) ?? 0);
  const server0 = serverCpu(target);
  const stats0 = await childStats(all);
  const g0 = await readGatewayCounts(target.httpUrl);
  const from = Date.now();
  await sleep(steadyMs);
  const g1 = await readGatewayCounts(target.httpUrl);
  const to = Date.now();
  const stats1 = await childStats(all);
  const cpu1 = all.map((s) => cpuMicros(s.child.pid) ?? 0);
  const server1 = serverCpu(target);
  const cores = (us: number) => Number((us / (steadyMs * 1000)).toFixed(2));
  const costOf = (kind: ChildCost['kind'], group: Share[]): ChildCost => {
    const count = group.reduce((n, s) => n + s.spec.count, 0);
    const cpu = group.map((s) => all.indexOf(s)).reduce((n, i) => n + ((cpu1[i] ?? 0) - (cpu0[i] ?? 0)), 0);
    const rss = group.reduce((n, s) => n + (rssBytes(s.child.pid) ?? 0), 0);
    return { kind, processes: group.length, nodes: count, cpuUsPerNodeSecond: Math.round(cpu / Math.max(1, count) / (steadyMs / 1000)), rssKiBPerNode: Math.round(rss / 1024 / Math.max(1, count)) };
  };
  const moved = (key: 'keepaliveFailures' | 'leasesLost' | 'reRegistrations') => sumOf(stats1, key) - sumOf(stats0, key);
  return {
    falseDowns: observer.count('NODE_DOWN') - downs0,
    steadyClientTrouble: { keepaliveFailures: moved('keepaliveFailures'), leasesLost: moved('leasesLost'), reRegistrations: moved('reRegistrations') },
    steady: { rates: routeRates(gatewayDelta(g1, g0), (to - from) / 1000), writes: run.writes.window(from, to) },
    steadyCpuCores: {
      runtime: cores(server1.runtime - server0.runtime),
      dynamodbLocal: cores(server1.dynamodb - server0.dynamodb),
      clients: cores(cpu1.reduce((n, c, i) => n + c - (cpu0[i] ?? 0), 0)),
    },
    clients: [costOf('plain', run.plain), costOf('subscribers', run.subs), costOf('storm', [run.storm])],
  };
}

/** Polls every RosterClient until all hold the server's list (a digest each); resolves with when, or undefined at the deadline. Counts its own full reads. */
async function convergence(run: Run, watchers: Share[], deadline: number): Promise<{ at: number | undefined; ownLists: number }> {
  let ownLists = 0;
  while (performance.now() < deadline) {
    const reports = await Promise.all(watchers.map(async (s) => (await s.ask<'digests'>('digests')).digests));
    const counts = new Map<string, number>();
    for (const r of reports) for (const [d, n] of Object.entries(r)) counts.set(d, (counts.get(d) ?? 0) + n);
    const [only] = [...counts.keys()];
    if (counts.size === 1 && only !== undefined && only !== 'stale') {
      const server = await serverDigest(run.target.httpUrl, run.clusterId);
      ownLists++;
      if (server.digest === only && server.size === run.options.nodes) return { at: performance.now(), ownLists };
    }
    await sleep(1000);
  }
  return { at: undefined, ownLists };
}

/** Why the clients read whole lists in the storm: the survivors' counters before and after it, and the restarted process's. */
function fullListCauses(before: ShareStats[], after: ShareStats[], restarted: ShareStats | undefined): ScaleResult['storm']['fullListsBy'] {
  const delta = (key: SyncReason): number => after.reduce((n, s, i) => n + (s.resyncs[key] ?? 0) - (before[i]?.resyncs[key] ?? 0), 0) + (key === 'start' ? 0 : (restarted?.resyncs[key] ?? 0));
  return {
    starts: restarted?.resyncs.start ?? 0,
    gaps: delta('gap'),
    refreshes: delta('refresh'),
    plainRefreshes: after.reduce((n, s, i) => n + s.fullLists - (before[i]?.fullLists ?? 0), 0),
    reconnects: delta('reconnect') + delta('retry'),
  };
}

/** Kill → each storm node's lease cut (as the stream had it), and cut → its NODE_DOWN at the observer. */
function detectionParts(arrivals: EventArrival[], observer: Subscriber, stormIds: string[], killedWall: number): Pick<ScaleResult['crash'], 'killToCutMs' | 'cutToDownMs'> {
  const cutAt = new Map<string, number>();
  for (const a of arrivals) if (a.kind === 'cut' && a.nodeId !== undefined && !cutAt.has(a.nodeId)) cutAt.set(a.nodeId, a.at);
  const killToCut: number[] = [];
  const cutToDown: number[] = [];
  for (const id of stormIds) {
    const cut = cutAt.get(id);
    const down = observer.arrivals.get(`NODE_DOWN/${id}`)?.wallAt;
    if (cut === undefined) continue;
    killToCut.push(cut - killedWall);
    if (down !== undefined) cutToDown.push(down - cut);
  }
  return { killToCutMs: summarize(killToCut, 0), cutToDownMs: summarize(cutToDown, 0) };
}

/** Slots of the measured storm timeline. */
const TIMELINE_SLOT_MS = 100;

/**
 * The storm as the stream had it (the cluster's writes), in slots from the
 * kill: its events, and its subscriptions removed (the killed nodes' connections) and
 * made (the restarts'), which decide whom each batch is posted to.
 */
function stormTimeline(arrivals: EventArrival[], killedWall: number, messages: readonly { wallAt: number; events: number }[]): ScaleResult['storm']['timeline'] {
  const eventsPerSlot: number[] = [];
  const joinsPerSlot: number[] = [];
  let first: number | undefined;
  for (const a of arrivals) {
    const slot = Math.max(0, Math.floor((a.at - killedWall) / TIMELINE_SLOT_MS));
    while (eventsPerSlot.length <= slot) {
      eventsPerSlot.push(0);
      joinsPerSlot.push(0);
    }
    if (a.kind === 'event') {
      eventsPerSlot[slot] = (eventsPerSlot[slot] ?? 0) + 1;
      first ??= a.at;
    } else joinsPerSlot[slot] = (joinsPerSlot[slot] ?? 0) + (a.kind === 'subscribed' ? 1 : -1);
  }
  const deliveries = messages.filter((m) => m.wallAt >= killedWall).map((m) => ({ atMs: m.wallAt - killedWall, events: m.events }));
  return { slotMs: TIMELINE_SLOT_MS, eventsPerSlot, joinsPerSlot, deliveries, firstAfterKillMs: first === undefined ? null : first - killedWall };
}

/** The storm: the storm process SIGKILLed, its nodes seen down, restarted at once; until every list is the server's. */
async function stormPhase(run: Run): Promise<Pick<ScaleResult, 'crash' | 'storm'>> {
  const { target, observer, options, progress } = run;
  progress(`scale: storm — SIGKILL the process of ${options.storm} bound nodes`);
  const stormIds = Array.from({ length: options.storm }, (_, i) => `s${i}`);
  const sweeps0 = await sweepFigures(target.httpUrl);
  const m0 = await readGatewayCounts(target.httpUrl);
  const survivors = [...run.plain, ...run.subs];
  const stats0 = await childStats(survivors);
  const killedAt = performance.now();
  const killedWall = Date.now();
  run.storm.child.signal('SIGKILL');
  const arrivals = await Promise.all(stormIds.map((id) => observer.waitFor('NODE_DOWN', id, options.stormTimeoutMs)));
  const detection = arrivals.flatMap((a) => (a === undefined ? [] : [a.at - killedAt]));
  progress(`scale: ${detection.length} of ${options.storm} NODE_DOWN seen; restarting the ${options.storm} nodes at once`);
  const restartedAt = performance.now();
  const restarted = Share.start({ ...run.stormSpec, registerMs: undefined, spreadMs: 0 });
  run.all.push(restarted);
  await restarted.waitFor('ready', options.stormTimeoutMs);
  const { at: converged, ownLists } = await convergence(run, [...run.subs, restarted], restartedAt + options.stormTimeoutMs);
  const m1 = await readGatewayCounts(target.httpUrl);
  const sweeps1 = await sweepFigures(target.httpUrl);
  const stormTo = Date.now();
  const stats1 = await childStats([...survivors, restarted]);
  const restartedStats = stats1.pop();
  // The subscribers' processes are the survivors after the plain ones.
  const downReports = stats1.slice(run.plain.length);
  const allSubscribersMs = stormIds.flatMap((id) => {
    const times = downReports.map((s) => s.firstDownAt[id]);
    return times.every((t) => t !== undefined) ? [Math.max(...(times as number[])) - killedWall] : [];
  });
  progress(converged === undefined ? 'scale: the lists did not converge before the deadline' : `scale: every list equals the server's ${Math.round((converged - killedAt) / 1000)} s after the kill`);
  // Records reach the bench's stream reader a poll or two after they are written.
  await sleep(2000);
  const sweep = longestSweep(sweeps1, sweeps0);
  const since = (t: number | undefined, from: number) => (t === undefined ? null : Math.round(t - from));
  const written = run.writes.events(killedWall, stormTo).filter((a) => a.clusterId === run.clusterId);
  return {
    crash: { observed: detection.length, detectionMs: summarize(detection, 0), allSubscribersMs: summarize(allSubscribersMs, 0), ...detectionParts(written, observer, stormIds, killedWall) },
    storm: {
      restartedAfterMs: Math.round(restartedAt - killedAt),
      convergedMs: { fromKill: since(converged, killedAt), fromRestart: since(converged, restartedAt) },
      counts: routeRates(gatewayDelta(m1, m0), 1, ownLists),
      writes: run.writes.window(killedWall, stormTo),
      fullListsBy: fullListCauses(stats0, stats1, restartedStats),
      timeline: stormTimeline(written, killedWall, observer.messageLog),
      longestSweepMs: sweep.longest,
      meanSweepMs: sweep.mean,
    },
  };
}

export async function scale(target: RosterTarget, options: ScaleOptions, progress: Progress): Promise<ScaleResult> {
  const { nodes, subscribers, storm } = options;
  const plainCount = nodes - subscribers - storm;
  if (plainCount < 0) throw new Error(`scale: ${subscribers} subscribers and ${storm} storm nodes do not fit in ${nodes} nodes`);
  const clusterId = uid('scale');
  const base = { httpUrl: target.httpUrl, wsUrl: target.wsUrl, clusterId, refreshIntervalMs: options.refreshIntervalMs, registerMs: options.registerMs, spreadMs: options.rampMs };
  const stormSpec: ShareSpec = { ...base, kind: 'bound', prefix: 's', from: 0, count: storm };
  const plainSpecs = split(0, plainCount, options.processes.plain).map((s): ShareSpec => ({ ...base, kind: 'plain', prefix: 'p', ...s }));
  const subSpecs = split(0, subscribers, options.processes.subscribers).map((s): ShareSpec => ({ ...base, kind: 'bound', prefix: 'b', ...s }));
  // Batched, as the SDK is; its messages are the fan-out's batches as every subscriber got them.
  const observer = await Subscriber.open(target.wsUrl, clusterId, { batch: true, logMessages: true });
  const writes = new ItemWrites(target.dynamodbEndpoint, target.tableName);
  await writes.start();
  const memory = watchMemory(target);
  let rss: ScaleResult['rssMiB'] | undefined;
  progress(`scale: ${nodes} nodes in one cluster register: ${plainCount} without a connection (${plainSpecs.length} processes), ${subscribers} RosterClients (${subSpecs.length} processes), ${storm} RosterClients to kill (1 process)`);
  const plain = plainSpecs.map((s) => Share.start(s));
  const subs = subSpecs.map((s) => Share.start(s));
  const run: Run = { target, options, clusterId, observer, writes, all: [], plain, subs, storm: Share.start(stormSpec), stormSpec, progress };
  run.all.push(...plain, ...subs, run.storm);
  try {
    const downsInRamp = await startFleet(run);
    const steady = await steadyPhase(run);
    const stormed = await stormPhase(run);
    rss = memory.stop();
    const { falseDowns, ...measured } = steady;
    const result: ScaleResult = {
      clusterId,
      nodes,
      subscribers,
      stormNodes: storm,
      rampSeconds: options.rampMs / 1000,
      steadySeconds: options.steadyMs / 1000,
      allStarted: true,
      falseDowns: { ramp: downsInRamp, steady: falseDowns },
      ...measured,
      ...stormed,
      rssMiB: rss,
    };
    progress('scale: stopping the nodes (each deregisters)');
    await Promise.all(run.all.filter((s) => s.child.process.connected).map((s) => s.ask<'stopped'>('stop', 300_000).catch(() => undefined)));
    progress("scale: roster capacity's prediction for the same workload");
    result.prediction = await scalePrediction(result);
    return result;
  } finally {
    if (!rss) memory.stop();
    await Promise.all(run.all.map((s) => s.child.kill()));
    await writes.stop();
    await observer.close();
  }
}
