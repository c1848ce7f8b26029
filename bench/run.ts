/**
 * `roster bench`: runs every scenario against a local runtime it starts
 * itself (127.0.0.1 only), beside DynamoDB Local's own limit and beside etcd,
 * and returns one report (printed as a table, or written as JSON).
 *
 * The runtime runs in a child process with its defaults (sweep 1 s, grace
 * 2 s, stream poll 100 ms) against a DynamoDB Local the bench starts, so the
 * raw-store figure hits the very same engine, and the runtime's RSS is the
 * Node process alone.
 */
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CONFIG_DEFAULTS } from '../functions/core/config.ts';
import { startDynamoDbLocal, type DynamoDbLocal } from '../local/dynamodb-local.ts';
import { DEFAULTS as RUNTIME_DEFAULTS } from '../local/runtime.ts';
import { spawnRuntime, type SpawnedRuntime } from '../local/spawn.ts';
import { detectEtcd, etcdDetection, etcdFanout, startEtcd, type EtcdAvailability, type EtcdServer } from './etcd.ts';
import { capacity, type CapacityPlan, type CapacityResult } from './capacity.ts';
import { measurePoster, type FanoutResult, type PosterCost } from './fanout.ts';
import { agentDetection, type DetectionResult } from './detection.ts';
import { keepaliveThroughput, type ThroughputResult } from './keepalive-throughput.ts';
import { rosterFanout } from './roster-fanout.ts';
import { soak, type SoakResult } from './soak.ts';
import { storm, type StormResult } from './storm.ts';
import type { Progress, RosterTarget } from './scenario.ts';
import { scale, type ScaleOptions, type ScaleResult } from './scale.ts';
import { DEFAULT_STORM_SHARE } from './planner.ts';

export const SCENARIOS = ['throughput', 'fanout', 'storm', 'crash', 'hang', 'etcd', 'soak', 'scale', 'capacity'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** A small version of each scenario, for CI smoke tests (not timing-asserted). @default false */
  quick?: boolean;
  /** @default every scenario */
  scenarios?: readonly ScenarioName[];
  /** Overrides the soak's duration. @default 300 (quick: 6) */
  soakSeconds?: number;
  /** The scale scenario's nodes in one cluster. @default 10000 (quick: 200) */
  scaleNodes?: number;
  /** Of them, the RosterClients that watch through its storm. @default 1000 (quick: 20) */
  scaleSubscribers?: number;
  /** The scale scenario's storm: RosterClients killed and restarted. @default a tenth of the nodes */
  scaleStorm?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: Progress;
}

/** Sizes of a full and of a quick run. */
export const PLANS = {
  full: {
    throughput: { concurrency: 32, durationMs: 10_000, warmupMs: 5000 },
    fanout: [
      { subscribers: 1, registrations: 50 },
      { subscribers: 100, registrations: 30 },
      { subscribers: 1000, registrations: 20 },
      { subscribers: 10_000, registrations: 10 },
    ],
    // Most subscribers batched, as SDK clients and consoles are; a plain tenth shows what one message per event costs.
    storm: { subscribers: 1000, plain: 100, registrations: 500, parallel: 50 },
    detection: { trials: 10, observers: 3, crashLeaseSeconds: 15, hangLeaseSeconds: 15, etcdCrashLeaseSeconds: 15 },
    soak: { nodes: 2000, leaseSeconds: 10, keepaliveMs: 3000, durationMs: 300_000 },
    // The nodes register as fast as the runtime answers (within 15 minutes); the RosterClients then start over one refresh interval (300 s), which
    // spreads their refreshes and pings as in a long-running fleet.
    scale: { nodes: 10_000, subscribers: 1000, registerMs: 900_000, rampMs: 300_000, steadyMs: 60_000, stormTimeoutMs: 900_000 },
    capacity: {
      operations: 100,
      // The cost model's workload: clusters of 100 nodes, SDK defaults (keepalive 5 s, lease 15 s).
      load: { clusters: 10, perCluster: 100, keepaliveSeconds: 5, durationMs: 45_000 },
      fullSweeps: [
        { clusters: 100, perCluster: 100 },
        { clusters: 1, perCluster: 10_000 },
      ],
    } satisfies CapacityPlan,
  },
  quick: {
    throughput: { concurrency: 8, durationMs: 1000, warmupMs: 300 },
    fanout: [
      { subscribers: 10, registrations: 5 },
      { subscribers: 50, registrations: 5 },
    ],
    storm: { subscribers: 20, plain: 10, registrations: 40, parallel: 10 },
    // Roster's crash detection does not depend on the lease (the bound connection does it), but a lease
    // shorter than grace + sweep would expire first; etcd's only detector is the lease, so a short one keeps this quick.
    detection: { trials: 2, observers: 2, crashLeaseSeconds: 15, hangLeaseSeconds: 3, etcdCrashLeaseSeconds: 3 },
    // Lease 15 s for keepalives every 3 s: 12 s of slack. A box at load 12 answered keepalives in 3-4 s (p50-p99) and
    // lapsed leases of 6 s with keepalives every 2 s; a smoke run must not fail for that (the full run keeps 10 s / 3 s).
    soak: { nodes: 100, leaseSeconds: 15, keepaliveMs: 3000, durationMs: 8000 },
    scale: { nodes: 200, subscribers: 20, registerMs: 120_000, rampMs: 5000, steadyMs: 5000, stormTimeoutMs: 120_000 },
    capacity: {
      operations: 10,
      load: { clusters: 2, perCluster: 20, keepaliveSeconds: 2, durationMs: 5000 },
      fullSweeps: [{ clusters: 2, perCluster: 50 }],
    } satisfies CapacityPlan,
  },
} as const;

export interface Goal {
  what: string;
  target: string;
  value: number | null;
  /** null when the run is too small to judge the goal (quick) or the figure is missing. */
  met: boolean | null;
}

export type EtcdSection =
  | { installed: false; reason: string; howToInstall: string }
  | {
      installed: true;
      version: string;
      startMs: number;
      fanout?: FanoutResult[];
      crash?: DetectionResult;
      hang?: DetectionResult;
      /** Roster's p99 divided by etcd's p99, per figure (< 1: Roster is quicker). */
      ratios: Record<string, number>;
    };

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  quick: boolean;
  machine: {
    cores: number;
    cpuModel: string;
    memoryGiB: number;
    node: string;
    java: string;
    platform: string;
    /** 1-minute load average at the start and at the end: other work on the machine skews every figure. */
    loadAverage: { start: number; end: number };
  };
  settings: { sweepIntervalSeconds: number; disconnectGraceSeconds: number; pollIntervalMs: number; defaultLeaseSeconds: number };
  startup: { dynamodbLocalMs: number; runtimeReadyMs: number };
  throughput?: ThroughputResult;
  fanout?: FanoutResult[];
  /** The fan-out's CPU per post on the poster's side alone (sizes the fan-out on AWS). */
  poster?: PosterCost;
  storm?: StormResult;
  crash?: DetectionResult;
  hang?: DetectionResult;
  etcd?: EtcdSection;
  soak?: SoakResult;
  scale?: ScaleResult;
  capacity?: CapacityResult;
  goals: Goal[];
}

function javaVersion(): string {
  const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
  return (out.stderr || out.stdout || '').split('\n')[0]?.trim() ?? 'unknown';
}

/** Things to stop, most recent first; run on success, failure and interruption alike. */
export class Cleanups {
  private readonly steps: (() => Promise<void>)[] = [];
  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch {
        // Keep stopping the rest.
      }
    }
  }
}

function goals(report: BenchReport): Goal[] {
  const quick = report.quick;
  const judge = (value: number | undefined, ok: (v: number) => boolean, timing: boolean): { value: number | null; met: boolean | null } => {
    if (value === undefined || !Number.isFinite(value)) return { value: null, met: null };
    return { value, met: timing && quick ? null : ok(value) };
  };
  const list: Goal[] = [];
  if (report.throughput) {
    list.push({ what: 'keepalive throughput, Roster / raw DynamoDB Local UpdateItem', target: '≥ 0.7', ...judge(report.throughput.ratio, (v) => v >= 0.7, true) });
  }
  // Goals at 1,000 and 10,000 subscribers; a quick run shows its largest size, unjudged. Each adds the time the
  // fan-out's post rate takes beyond its burst (functions/core/post-rate.ts): at the defaults none at 1,000, 1.5 s at 10,000.
  const rate = CONFIG_DEFAULTS.fanoutPostsPerSecond;
  const pacingMs = (size: number) => Math.round((Math.max(0, size - rate / 2) / rate) * 1000);
  const fanoutGoals = quick ? [{ size: report.fanout?.at(-1)?.subscribers ?? 0, limit: Number.NaN }] : [{ size: 1000, limit: 250 + pacingMs(1000) }, { size: 10_000, limit: 1500 + pacingMs(10_000) }];
  for (const { size, limit } of fanoutGoals) {
    const f = report.fanout?.find((x) => x.subscribers === size);
    if (!f) continue;
    list.push({
      what: `fan-out p99 at ${f.subscribers} subscribers (ms)`,
      target: quick ? `≤ ${250 + pacingMs(1000)} at 1000, ≤ ${1500 + pacingMs(10_000)} at 10000` : `≤ ${limit}`,
      ...judge(f.allReceived ? f.allMs.p99 : undefined, (v) => v <= limit, true),
    });
  }
  if (report.storm) {
    const s = report.storm;
    const delivered = s.groups.every((g) => g.allReceived && g.outOfOrder === 0);
    list.push({ what: `storm: ${s.registrations} registrations to ${s.groups.reduce((n, g) => n + g.subscribers, 0)} subscribers, all delivered in per-node order`, target: 'yes', value: delivered ? 1 : 0, met: delivered });
  }
  if (report.crash) {
    list.push({ what: 'crash detection p99 (ms)', target: '≤ 3500', ...judge(report.crash.allObserved ? report.crash.detectionMs.p99 : undefined, (v) => v <= 3500, true) });
  }
  if (report.hang) {
    const bound = report.hang.leaseSeconds * 1000 + 1500;
    list.push({ what: `hang detection p99, lease ${report.hang.leaseSeconds} s (ms)`, target: `≤ ${bound}`, ...judge(report.hang.allObserved ? report.hang.detectionMs.p99 : undefined, (v) => v <= bound, true) });
  }
  if (report.capacity) {
    const units = report.capacity.operations.keepalive.writeUnits;
    list.push({ what: 'write units per keepalive (DynamoDB ConsumedCapacity)', target: '≤ 1.2', ...judge(units, (v) => v <= 1.2, false) });
  }
  if (report.soak) {
    list.push({ what: `false NODE_DOWN in the soak (${report.soak.nodes} nodes)`, target: '0', ...judge(report.soak.falseDowns, (v) => v === 0, false) });
  }
  if (report.scale) {
    const sc = report.scale;
    list.push({ what: `false NODE_DOWN at scale (${sc.nodes} nodes), steady phase`, target: '0', ...judge(sc.falseDowns.steady, (v) => v === 0, false) });
    list.push({ what: `crash detection p99 at scale, ${sc.stormNodes} killed at once (ms)`, target: '≤ 3500', ...judge(sc.crash.observed === sc.stormNodes ? sc.crash.detectionMs.p99 : undefined, (v) => v <= 3500, true) });
    const off = sc.prediction?.figures.filter((f) => f.agrees === false).length;
    // Judged only at full size: a quick run's phases are shorter than the SDK's intervals.
    list.push({ what: "scale: measured figures within 15% of roster capacity's prediction", target: '0 apart', ...judge(off, (v) => v === 0, true) });
  }
  return list;
}

/** Runs the chosen scenarios against the runtime, in the order the report lists them, filling `report`. */
async function runScenarios(
  report: BenchReport,
  target: RosterTarget,
  run: { plan: (typeof PLANS)['full' | 'quick']; chosen: Set<ScenarioName>; soakSeconds?: number; scale: ScaleOptions },
  cleanups: Cleanups,
  progress: Progress,
): Promise<void> {
  const { plan, chosen } = run;
  const detectionTimeout = (lease: number) => (lease + 20) * 1000;
  if (chosen.has('throughput')) report.throughput = await keepaliveThroughput(target, plan.throughput, progress);
  if (chosen.has('fanout')) {
    report.fanout = [];
    for (const size of plan.fanout) report.fanout.push(await rosterFanout(target, { ...size, timeoutMs: 15_000 }, progress));
    progress('fan-out: CPU per post of the signed poster alone');
    report.poster = await measurePoster(report.quick ? 2000 : 20_000);
  }
  if (chosen.has('storm')) report.storm = await storm(target, { ...plan.storm, timeoutMs: 120_000 }, progress);
  const { trials, observers, crashLeaseSeconds, hangLeaseSeconds } = plan.detection;
  if (chosen.has('crash')) {
    report.crash = await agentDetection(target, { kind: 'crash', trials, observers, leaseSeconds: crashLeaseSeconds, timeoutMs: detectionTimeout(crashLeaseSeconds) }, progress);
  }
  if (chosen.has('hang')) {
    report.hang = await agentDetection(target, { kind: 'hang', trials, observers, leaseSeconds: hangLeaseSeconds, timeoutMs: detectionTimeout(hangLeaseSeconds) }, progress);
  }
  if (chosen.has('etcd')) report.etcd = await etcdSection(report, plan, chosen, cleanups, progress);
  if (chosen.has('soak')) {
    const durationMs = run.soakSeconds === undefined ? plan.soak.durationMs : run.soakSeconds * 1000;
    report.soak = await soak(target, { ...plan.soak, durationMs }, progress);
  }
  if (chosen.has('scale')) report.scale = await scale(target, run.scale, progress);
  // Last: it leaves thousands of nodes with an hour's lease behind.
  if (chosen.has('capacity')) report.capacity = await capacity(target, plan.capacity, progress);
}

/**
 * The scale scenario's sizes: the storm is a tenth of the cluster, as `roster
 * capacity` plans it; the RosterClients in child processes of at most 250
 * (a client caches the whole list), the plain nodes 5,000 a process.
 */
export function scaleOptions(plan: (typeof PLANS)['full' | 'quick'], options: Pick<BenchOptions, 'scaleNodes' | 'scaleSubscribers' | 'scaleStorm'>): ScaleOptions {
  const nodes = options.scaleNodes ?? plan.scale.nodes;
  const subscribers = options.scaleSubscribers ?? plan.scale.subscribers;
  const storm = options.scaleStorm ?? Math.max(1, Math.round(nodes * DEFAULT_STORM_SHARE));
  const stormIs = options.scaleStorm === undefined ? `a tenth of the nodes, ${storm}` : `--scale-storm ${storm}`;
  if (subscribers + storm > nodes) throw new ScaleSizeError(`the scale scenario needs --scale-subscribers (${subscribers}) plus its storm (${stormIs}) to be at most --scale-nodes (${nodes})`);
  const plain = nodes - subscribers - storm;
  return {
    nodes,
    subscribers,
    storm,
    processes: { plain: Math.max(1, Math.ceil(plain / 5000)), subscribers: Math.max(1, Math.ceil(subscribers / 250)) },
    registerMs: plan.scale.registerMs,
    rampMs: plan.scale.rampMs,
    steadyMs: plan.scale.steadyMs,
    stormTimeoutMs: plan.scale.stormTimeoutMs,
  };
}

/** Sizes of the scale scenario that do not fit together. */
export class ScaleSizeError extends Error {}

/** Runs the chosen scenarios; everything it started is stopped before it returns or throws. */
export async function runBench(options: BenchOptions = {}, cleanups = new Cleanups()): Promise<BenchReport> {
  const quick = options.quick ?? false;
  const plan = quick ? PLANS.quick : PLANS.full;
  const chosen = new Set<ScenarioName>(options.scenarios ?? SCENARIOS);
  const progress: Progress = options.progress ?? (() => undefined);
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const cores = availableParallelism();
  const load = () => Number((loadavg()[0] ?? 0).toFixed(2));
  const loadStart = load();

  try {
    progress('starting DynamoDB Local');
    const ddbT0 = performance.now();
    const ddb: DynamoDbLocal = await startDynamoDbLocal();
    const dynamodbLocalMs = performance.now() - ddbT0;
    // An interrupted bench must not leave Java behind.
    const killJava = () => ddb.process.kill('SIGKILL');
    process.once('exit', killJava);
    cleanups.push(async () => {
      await ddb.stop();
      process.off('exit', killJava);
    });

    progress('starting the local runtime');
    const tableName = `bench-${randomUUID().slice(0, 8)}`;
    // The open runtime (no --auth), as `npm start` runs by default.
    const runtime: SpawnedRuntime = await spawnRuntime({ dynamodbEndpoint: ddb.endpoint, extraArgs: ['--table', tableName] });
    cleanups.push(async () => {
      await runtime.stop();
    });
    const target: RosterTarget = {
      httpUrl: runtime.httpUrl,
      wsUrl: runtime.wsUrl,
      tableName,
      dynamodbEndpoint: ddb.endpoint,
      runtimePid: runtime.process.pid ?? 0,
      dynamodbPid: ddb.process.pid,
    };

    const report: BenchReport = {
      version: 1,
      startedAt,
      finishedAt: startedAt,
      durationSeconds: 0,
      quick,
      machine: {
        cores,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
        node: process.version,
        java: javaVersion(),
        platform: `${process.platform} ${process.arch}`,
        loadAverage: { start: loadStart, end: loadStart },
      },
      settings: {
        sweepIntervalSeconds: CONFIG_DEFAULTS.sweepIntervalSeconds,
        disconnectGraceSeconds: CONFIG_DEFAULTS.disconnectGraceSeconds,
        pollIntervalMs: RUNTIME_DEFAULTS.pollIntervalMs,
        defaultLeaseSeconds: CONFIG_DEFAULTS.defaultLeaseSeconds,
      },
      startup: { dynamodbLocalMs: Math.round(dynamodbLocalMs), runtimeReadyMs: Math.round(runtime.readyMs) },
      goals: [],
    };

    await runScenarios(report, target, { plan, chosen, soakSeconds: options.soakSeconds, scale: scaleOptions(plan, options) }, cleanups, progress);
    report.machine.loadAverage.end = load();
    report.goals = goals(report);
    report.finishedAt = new Date().toISOString();
    report.durationSeconds = Math.round((performance.now() - started) / 1000);
    return report;
  } finally {
    progress('stopping everything the bench started');
    await cleanups.run();
  }
}

async function etcdSection(
  report: BenchReport,
  plan: (typeof PLANS)['full' | 'quick'],
  chosen: Set<ScenarioName>,
  cleanups: Cleanups,
  progress: Progress,
): Promise<EtcdSection> {
  const available: EtcdAvailability = await detectEtcd();
  if (!available.installed) {
    progress(`etcd: not installed (${available.reason}); ${available.howToInstall}`);
    return { installed: false, reason: available.reason, howToInstall: available.howToInstall };
  }
  progress(`starting etcd ${available.version} on loopback`);
  const server: EtcdServer = await startEtcd(available.binary);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop();
  };
  cleanups.push(stop);
  const section: EtcdSection = { installed: true, version: available.version, startMs: Math.round(server.startMs), ratios: {} };
  const { trials, observers, etcdCrashLeaseSeconds, hangLeaseSeconds } = plan.detection;
  const ratio = (roster: number | undefined, etcd: number | undefined) =>
    roster === undefined || etcd === undefined || !(etcd > 0) ? undefined : Number((roster / etcd).toFixed(3));
  try {
    if (chosen.has('fanout')) {
      section.fanout = [];
      for (const size of plan.fanout) {
        const result = await etcdFanout(server, { ...size, timeoutMs: 15_000 }, progress);
        section.fanout.push(result);
        const mine = report.fanout?.find((f) => f.subscribers === size.subscribers);
        const r = ratio(mine?.allMs.p99, result.allMs.p99);
        if (r !== undefined) section.ratios[`fanout p99 at ${size.subscribers}`] = r;
      }
    }
    if (chosen.has('crash')) {
      section.crash = await etcdDetection(server, { kind: 'crash', trials, observers, leaseSeconds: etcdCrashLeaseSeconds, timeoutMs: (etcdCrashLeaseSeconds + 20) * 1000 }, progress);
      const r = ratio(report.crash?.detectionMs.p99, section.crash.detectionMs.p99);
      if (r !== undefined) section.ratios['crash detection p99'] = r;
    }
    if (chosen.has('hang')) {
      section.hang = await etcdDetection(server, { kind: 'hang', trials, observers, leaseSeconds: hangLeaseSeconds, timeoutMs: (hangLeaseSeconds + 20) * 1000 }, progress);
      const r = ratio(report.hang?.detectionMs.p99, section.hang.detectionMs.p99);
      if (r !== undefined) section.ratios['hang detection p99'] = r;
    }
  } finally {
    await stop();
  }
  return section;
}
