/**
 * `runRobustness`: one seeded run. It starts the information center
 * (center.ts), a fault proxy per client slot, and the client processes;
 * carries out the schedule; heals every fault; keeps quiet while the clients
 * settle; then checks the history (checker.ts) and reports.
 *
 * Timeline of a run:
 *   set-up  DynamoDB Local (data directory), the runtime, every node and the
 *           first watchers, until all have a list
 *   active  the schedule's steps at their offsets (`durationSeconds`)
 *   heal    proxies restored, hung processes continued, the store and the
 *           runtime up, no fault left
 *   quiet   nothing happens; the harness reads the list every 500 ms
 *   check   the history against the six invariants
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Center } from './center.ts';
import { check, type CheckResult, type CheckSettings } from './checker.ts';
import { History, type HistoryRecord, type RunRecord } from './history.ts';
import { observeStream, type StreamObserver } from './observer.ts';
import { ClientProcess } from './processes.ts';
import { startProxy, type TcpProxy } from './proxy.ts';
import { recordingFetch } from './recording.ts';
import { Random } from './random.ts';
import { countKinds, generateSchedule, type Kind, type Step } from './schedule.ts';

export interface RobustnessOptions {
  seed: number;
  /** Length of the active phase. @default 60 */
  durationSeconds?: number;
  /** Client processes: about two thirds nodes, the rest watchers (at least one). @default 6 */
  clients?: number;
  /** Where the history goes (JSON lines). @default a temporary file, deleted after a clean run */
  historyFile?: string;
  /** Run these steps instead of the seed's schedule (regression tests). */
  schedule?: Step[];
  /** Leases the nodes draw from, in seconds. @default [3, 4, 5] */
  leases?: number[];
  /** Client refresh interval (the SDK's refreshIntervalMs). @default 4000 */
  refreshMs?: number;
  /** Added to every time bound. @default 2000 */
  marginMs?: number;
  /** One line per phase and per step, for a human watching. */
  progress?: (line: string) => void;
}

export interface RobustnessReport {
  seed: number;
  durationSeconds: number;
  clients: { nodes: number; watchers: number };
  leases: Record<string, number>;
  settings: CheckSettings;
  /** Steps of each kind in the schedule. */
  kinds: Record<Kind, number>;
  /** What the harness actually did, by operation (steps it could not carry out are `skipped`). */
  actions: Record<string, number>;
  /** Requests the clients sent, by route. */
  requests: Record<string, number>;
  result: CheckResult;
  /** The machine's 1-minute load average during the run (lowest, highest). */
  load: { min: number; max: number } | undefined;
  historyFile: string | undefined;
  wallSeconds: number;
}

const SETTINGS = { graceMs: 2000, sweepMs: 1000, deliveryMs: 1000, pollIntervalMs: 100 };
const READY_TIMEOUT_MS = 90_000;
const QUIET_READ_MS = 500;
const LOAD_EVERY_MS = 5000;
/** The quiet period may end once every client has agreed with the server's list for this long. */
const SETTLED_MS = 3000;
const ACTIVE_READ_MS = 2000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Slot {
  id: string;
  proxy: TcpProxy;
  lease?: number;
  proc?: ClientProcess;
  /** Processes started in this slot so far. */
  spawned: number;
}

class Harness {
  readonly slots = new Map<string, Slot>();
  private lastIncarnation = 0;
  private centerQueue: Promise<void> = Promise.resolve();
  private readonly zombies = new Set<ClientProcess>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    readonly history: History,
    readonly center: Center,
    readonly clusterId: string,
    readonly refreshMs: number,
    readonly log: (line: string) => void,
  ) {}

  /** Starts a new process in a slot: a new incarnation for a node. */
  spawn(slot: Slot): ClientProcess {
    slot.spawned++;
    const id = `${slot.id}.${slot.spawned}`;
    const node = slot.lease !== undefined;
    const inc = node ? (this.lastIncarnation = Math.max(Date.now(), this.lastIncarnation + 1)) : undefined;
    const proc = new ClientProcess(
      id,
      {
        httpUrl: slot.proxy.via(this.center.httpUrl),
        wsUrl: slot.proxy.via(this.center.wsUrl),
        clusterId: this.clusterId,
        refreshIntervalMs: this.refreshMs,
        ...(node ? { nodeId: slot.id, incarnation: inc, leaseSeconds: slot.lease, metadata: { slot: slot.id, v: 'v0' } } : {}),
      },
      (record) => this.history.add(record),
    );
    this.history.act('spawn', id, node ? { node: slot.id, inc, ms: (slot.lease ?? 0) * 1000 } : {});
    slot.proc = proc;
    return proc;
  }

  /** Runs a center step after the previous one finished: an outage's end needs its start done. */
  private centerStep(fn: () => Promise<void>): void {
    this.track((this.centerQueue = this.centerQueue.then(fn).catch((err: unknown) => this.log(`center step failed: ${String(err)}`))));
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  step(step: Step): void {
    const slot = step.target === undefined ? undefined : this.slots.get(step.target);
    const proc = slot?.proc;
    const skip = (why: string) => this.history.act(step.op, step.target ?? 'center', { skipped: why });
    switch (step.op) {
      case 'crash':
      case 'hang':
        if (!proc?.running || proc.hung) return void skip('not running');
        proc.signal(step.op === 'crash' ? 'SIGKILL' : 'SIGSTOP');
        this.history.act(step.op, proc.id);
        return;
      case 'resume':
        if (!proc?.hung) return void skip('not hung');
        proc.signal('SIGCONT');
        this.history.act('resume', proc.id);
        return;
      case 'restart':
      case 'join':
        return void this.restart(slot as Slot, skip);
      case 'leave':
        if (!proc?.running || proc.hung) return void skip('not running');
        this.history.act('leave', proc.id);
        this.track(proc.stop(15_000));
        return;
      case 'meta':
        if (!proc?.running || proc.hung) return void skip('not running');
        this.history.act('meta', proc.id, { detail: step.value });
        proc.command({ cmd: 'meta', metadata: { slot: slot?.id ?? '', v: step.value ?? 'v' } });
        return;
      case 'cut':
        slot?.proxy.cut();
        return void this.history.act('cut', step.target ?? '');
      case 'delay':
        slot?.proxy.delay(step.ms ?? 0);
        return void this.history.act('delay', step.target ?? '', { ms: step.ms });
      case 'restore':
        slot?.proxy.restore();
        return void this.history.act('restore', step.target ?? '');
      case 'posts-fail':
      case 'sweeper-stall':
      case 'poller-stall':
        // Faults of the runtime's parts end by themselves; they need not wait for an outage to finish.
        return this.track(this.centerOp(step));
      default:
        return this.centerStep(() => this.centerOp(step));
    }
  }

  private restart(slot: Slot, skip: (why: string) => void): void {
    const old = slot.proc;
    // A process still deregistering (the store may be out) is waited for: the new incarnation comes after it.
    if (old?.running && old.leaving) return this.track(old.exited.then(() => this.spawn(slot)));
    if (old?.running && !old.hung) return void skip('still running');
    if (old?.hung) {
      // A zombie: the new incarnation takes over while the old process hangs; it wakes a second later, is
      // told it was superseded (409), and is killed a lease after that.
      this.zombies.add(old);
      const lease = (slot.lease ?? 5) * 1000;
      this.track(
        sleep(1000).then(async () => {
          if (old.signal('SIGCONT')) this.history.act('resume', old.id);
          await sleep(lease);
          this.zombies.delete(old);
          if (old.running) this.history.act('kill', old.id);
          await old.kill();
        }),
      );
    }
    this.spawn(slot);
  }

  private async centerOp(step: Step): Promise<void> {
    const c = this.center;
    const act = (op: string, done: boolean) => this.history.act(op, op.split('-')[0] ?? op, done ? (step.ms ? { ms: step.ms } : {}) : { skipped: 'not applicable now' });
    switch (step.op) {
      case 'store-pause':
        return void act('store-pause', c.pauseStore());
      case 'store-resume':
        return void act('store-resume', c.resumeStore());
      case 'store-kill':
        act('store-kill', c.storeUp);
        await c.killStore();
        return;
      case 'store-restart':
        act('store-restart', true);
        await c.startStore();
        return void this.history.act('store-up', 'store');
      case 'runtime-kill':
        act('runtime-kill', c.runtimeUp);
        await c.killRuntime();
        return;
      case 'runtime-restart':
        act('runtime-restart', true);
        await c.startRuntime();
        return void this.history.act('runtime-up', 'runtime');
      case 'posts-fail':
        return void act('posts-fail', await c.fault('posts', step.ms ?? 0));
      case 'sweeper-stall':
        return void act('sweeper-stall', await c.fault('sweeper', step.ms ?? 0));
      case 'poller-stall':
        return void act('poller-stall', await c.fault('poller', step.ms ?? 0));
      default:
        return;
    }
  }

  /** Every fault undone: the proxies, hung processes, the store, the runtime, the runtime's parts. */
  async heal(): Promise<void> {
    await Promise.allSettled([...this.pending]);
    for (const slot of this.slots.values()) {
      if (slot.proxy.mode !== 'open') {
        slot.proxy.restore();
        this.history.act('restore', slot.id);
      }
      if (slot.proc?.hung) {
        slot.proc.signal('SIGCONT');
        this.history.act('resume', slot.proc.id);
      }
    }
    const wasStoreUp = this.center.storeUp;
    const wasRuntimeUp = this.center.runtimeUp;
    await this.center.heal();
    if (!wasStoreUp) this.history.act('store-up', 'store');
    if (!wasRuntimeUp) this.history.act('runtime-up', 'runtime');
  }

  async stopAll(): Promise<void> {
    const procs = [...[...this.slots.values()].map((s) => s.proc), ...this.zombies].filter((p): p is ClientProcess => p !== undefined);
    await Promise.all(procs.map((p) => p.kill()));
    await Promise.all([...this.slots.values()].map((s) => s.proxy.close()));
  }
}

const upKey = (nodes: readonly { id: string; st: string; inc: number; meta?: string }[]) =>
  nodes
    .filter((n) => n.st === 'UP')
    .map((n) => `${n.id}#${n.inc}${n.meta ?? ''}`)
    .sort()
    .join(',');

/**
 * Whether the server's list has not changed for `forMs` and every running
 * client's cache has equalled it for as long: nothing more will happen.
 */
function settled(records: readonly HistoryRecord[], forMs: number): boolean {
  const now = Date.now();
  let truth: string | undefined;
  const caches = new Map<string, { key: string; t: number }>();
  const gone = new Set<string>();
  let since = 0;
  for (const r of records) {
    if (r.k === 'req' && r.c === 'harness' && r.list) {
      const key = upKey(r.list.nodes);
      if (key !== truth) since = r.t0;
      truth = key;
    } else if (r.k === 'cache') caches.set(r.c, { key: upKey(r.nodes), t: r.t });
    else if (r.k === 'act' && (r.op === 'crash' || r.op === 'kill' || r.op === 'leave')) gone.add(r.on);
  }
  if (truth === undefined || now - since < forMs) return false;
  return [...caches].every(([c, { key, t }]) => gone.has(c) || (key === truth && now - t >= forMs));
}

/** Waits until every given process has a confirmed list (its `ready` record). */
async function allReady(history: History, procs: ClientProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const ready = (p: ClientProcess) => history.records.some((r) => r.k === 'proc' && r.c === p.id && r.what === 'ready');
  while (!procs.every(ready)) {
    const dead = procs.find((p) => !p.running);
    if (dead) throw new Error(`client ${dead.id} exited before it was ready:\n${dead.errors()}`);
    if (Date.now() > deadline) throw new Error(`clients not ready within ${timeoutMs} ms: ${procs.filter((p) => !ready(p)).map((p) => p.id).join(', ')}`);
    await sleep(100);
  }
}

/** Reads the server's list (everything, DOWN included) as the harness, recorded like a client's request. */
function harnessReader(history: History, center: Center, clusterId: string): () => Promise<void> {
  const read = recordingFetch(globalThis.fetch, (r) => history.add({ ...r, c: 'harness' }));
  return async () => {
    try {
      const res = await read(`${center.httpUrl}/v1/clusters/${clusterId}/nodes?status=all`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
    } catch {
      // Recorded; the information center may be out.
    }
  };
}

function slotsFor(clients: number, rnd: Random, leases: number[]): { nodes: Record<string, number>; watchers: string[] } {
  const nodeCount = clients <= 1 ? 1 : Math.max(1, Math.min(clients - 1, Math.round((clients * 2) / 3)));
  const nodes: Record<string, number> = {};
  for (let i = 0; i < nodeCount; i++) nodes[`n${i}`] = rnd.pick(leases);
  return { nodes, watchers: Array.from({ length: clients - nodeCount }, (_, i) => `w${i}`) };
}

function loadOf(records: readonly HistoryRecord[]): { min: number; max: number } | undefined {
  const samples = records.flatMap((r) => (r.k === 'load' ? [r.avg1] : []));
  return samples.length === 0 ? undefined : { min: Math.min(...samples), max: Math.max(...samples) };
}

function countBy<T>(items: readonly T[], key: (item: T) => string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function routeOf(record: HistoryRecord): string | undefined {
  if (record.k !== 'req' || record.c === 'harness') return undefined;
  if (record.m === 'POST') return 'keepalive';
  if (record.m === 'PUT') return 'register';
  if (record.m === 'DELETE') return 'deregister';
  return 'list';
}

/** Reads the list every `everyMs` until `until` resolves (or `enough` says so after a read). */
async function readLoop(read: () => Promise<void>, everyMs: number, until: Promise<void>, enough: () => boolean = () => false): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  while (!done && !enough()) {
    await read();
    await Promise.race([sleep(everyMs), until]);
  }
}

/** Carries out the schedule's steps at their offsets from now. */
async function runSchedule(harness: Harness, steps: readonly Step[], durationMs: number, log: (line: string) => void): Promise<void> {
  const start = Date.now();
  for (const step of steps) {
    await sleep(start + step.at - Date.now());
    log(`+${(step.at / 1000).toFixed(1)}s ${step.op}${step.target ? ` ${step.target}` : ''}${step.ms ? ` ${step.ms} ms` : ''}`);
    harness.step(step);
  }
  await sleep(start + durationMs - Date.now());
}

/**
 * One robustness run: the seed's schedule (or `options.schedule`) against a
 * fresh information center and client processes, then the checker. Every
 * process it started is stopped before it returns, also when it throws.
 */
export async function runRobustness(options: RobustnessOptions): Promise<RobustnessReport> {
  const startedAt = Date.now();
  const log = options.progress ?? (() => undefined);
  const durationMs = Math.round((options.durationSeconds ?? 60) * 1000);
  const refreshMs = options.refreshMs ?? 4000;
  const rnd = new Random(options.seed ^ 0x5eed);
  const { nodes, watchers } = slotsFor(options.clients ?? 6, rnd, options.leases ?? [3, 4, 5]);
  const initialWatchers = Math.max(1, watchers.length - 1);
  const schedule = options.schedule ?? generateSchedule({ seed: options.seed, durationMs, nodes, watchers, initialWatchers });
  const settings: CheckSettings = { ...SETTINGS, refreshMs, marginMs: options.marginMs ?? 2000 };
  const maxLeaseMs = Math.max(...Object.values(nodes)) * 1000;
  // Long enough for a node hung or crashed at the very end to be declared down and for every client to
  // converge; it ends sooner once it has been `minQuietMs` and every client has agreed with the server for a while.
  const minQuietMs = maxLeaseMs + settings.sweepMs + settings.deliveryMs + settings.marginMs;
  const quietMs = minQuietMs + Math.round(1.1 * refreshMs) + 3000;

  const dataDir = await mkdtemp(join(tmpdir(), 'roster-robustness-'));
  const history = new History(options.historyFile ?? join(dataDir, 'history.jsonl'));
  history.add({ k: 'run', t: startedAt, seed: options.seed, options: { durationMs, nodes, watchers, initialWatchers, refreshMs, settings }, schedule });
  let center: Center | undefined;
  let harness: Harness | undefined;
  let observer: StreamObserver | undefined;
  let loadTimer: NodeJS.Timeout | undefined;
  try {
    log(`seed ${options.seed}: starting DynamoDB Local and the runtime`);
    center = await Center.start({ dataDir: join(dataDir, 'store'), sweepIntervalSeconds: settings.sweepMs / 1000, disconnectGraceSeconds: settings.graceMs / 1000, pollIntervalMs: SETTINGS.pollIntervalMs });
    observer = await observeStream(history, center.storeEndpoint, center.tableName);
    const clusterId = `robust-${options.seed}`;
    harness = new Harness(history, center, clusterId, refreshMs, log);
    for (const id of [...Object.keys(nodes), ...watchers]) {
      harness.slots.set(id, { id, proxy: await startProxy({ targetPort: center.port }), lease: nodes[id], spawned: 0 });
    }
    const first = [...harness.slots.values()].filter((s) => s.lease !== undefined || watchers.indexOf(s.id) < initialWatchers);
    const procs = first.map((slot) => (harness as Harness).spawn(slot));
    log(`seed ${options.seed}: ${procs.length} clients starting`);
    await allReady(history, procs, READY_TIMEOUT_MS);

    const read = harnessReader(history, center, clusterId);
    loadTimer = setInterval(() => history.add({ k: 'load', t: Date.now(), avg1: loadavg()[0] ?? 0 }), LOAD_EVERY_MS);
    log(`seed ${options.seed}: ${schedule.length} steps over ${durationMs / 1000} s`);
    const active = runSchedule(harness, schedule, durationMs, log);
    await readLoop(read, ACTIVE_READ_MS, active);
    await harness.heal();
    history.act('heal', 'all');
    log(`seed ${options.seed}: healed; quiet for ${(minQuietMs / 1000).toFixed(1)} to ${(quietMs / 1000).toFixed(1)} s`);
    const quietFrom = Date.now();
    await readLoop(read, QUIET_READ_MS, sleep(quietMs), () => Date.now() - quietFrom >= minQuietMs && settled(history.records, SETTLED_MS));
    await read();
    history.act('end', 'all');
  } finally {
    clearInterval(loadTimer);
    await harness?.stopAll();
    await observer?.stop();
    await center?.stop();
    await history.close();
  }
  const report = checkHistory(history.records);
  // The history stays where it was asked for, and beside a failed run's report.
  const historyFile = options.historyFile ?? (report.result.ok ? undefined : history.file);
  await rm(options.historyFile === undefined && !report.result.ok ? join(dataDir, 'store') : dataDir, { recursive: true, force: true });
  return { ...report, historyFile, wallSeconds: Math.round((Date.now() - startedAt) / 1000) };
}

/** Checks a run's history (also one read back from a file: `roster robustness --check FILE`). */
export function checkHistory(records: readonly HistoryRecord[]): RobustnessReport {
  const run = records.find((r): r is RunRecord => r.k === 'run');
  if (!run) throw new Error('not a robustness history: its first line must be the run record');
  const options = run.options as { durationMs: number; nodes: Record<string, number>; watchers: string[]; settings: CheckSettings };
  const result = check(records, options.settings);
  return {
    seed: run.seed,
    durationSeconds: options.durationMs / 1000,
    clients: { nodes: Object.keys(options.nodes).length, watchers: options.watchers.length },
    leases: options.nodes,
    settings: options.settings,
    kinds: countKinds(run.schedule as Step[]),
    actions: countBy(records, (r) => (r.k === 'act' ? (r.skipped ? `${r.op} (skipped)` : r.op) : undefined)),
    requests: countBy(records, routeOf),
    result,
    load: loadOf(records),
    historyFile: undefined,
    wallSeconds: Math.round(((records.at(-1)?.t ?? run.t) - run.t) / 1000),
  };
}
