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
import { setTimeout as sleep } from 'node:timers/promises';
import { Center } from './center.ts';
import type { CheckSettings } from './checker.ts';
import { allReady, Harness, harnessReader, readLoop, runSchedule, settled } from './harness.ts';
import { History } from './history.ts';
import { observeStream, type StreamObserver } from './observer.ts';
import { startProxy } from './proxy.ts';
import { Random } from './random.ts';
import { checkHistory, type RobustnessReport } from './report.ts';
import { generateSchedule, type Step } from './schedule.ts';

export { checkHistory, type RobustnessReport } from './report.ts';

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

const SETTINGS = { graceMs: 2000, sweepMs: 1000, deliveryMs: 1000, pollIntervalMs: 100 };
const READY_TIMEOUT_MS = 90_000;
const QUIET_READ_MS = 500;
const LOAD_EVERY_MS = 5000;
/** The quiet period may end once every client has agreed with the server's list for this long. */
const SETTLED_MS = 3000;
const ACTIVE_READ_MS = 2000;

function slotsFor(clients: number, rnd: Random, leases: number[]): { nodes: Record<string, number>; watchers: string[] } {
  const nodeCount = clients <= 1 ? 1 : Math.max(1, Math.min(clients - 1, Math.round((clients * 2) / 3)));
  const nodes: Record<string, number> = {};
  for (let i = 0; i < nodeCount; i++) nodes[`n${i}`] = rnd.pick(leases);
  return { nodes, watchers: Array.from({ length: clients - nodeCount }, (_, i) => `w${i}`) };
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
