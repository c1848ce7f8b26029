/**
 * The report of a robustness run: built from its history (`checkHistory`,
 * also for a history read back from a file) and rendered as text (what was
 * done, the bounds, and each invariant with its violations and first example).
 */
import { check, type CheckResult, type CheckSettings, type Summary } from './checker.ts';
import type { HistoryRecord, RunRecord } from './history.ts';
import { countKinds, type Kind, type Step } from './schedule.ts';

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

const ms = (v: number | undefined) => (v === undefined ? '-' : `${(v / 1000).toFixed(2)} s`);
const dist = (s: Summary) => (s.count === 0 ? 'no samples' : `${s.count} samples, p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)}`);
const counts = (o: Record<string, number>) =>
  Object.entries(o)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

export function renderReport(report: RobustnessReport): string[] {
  const { result } = report;
  const lines = [
    `seed ${report.seed}: ${report.durationSeconds} s active, ${report.clients.nodes} nodes + ${report.clients.watchers} watchers (leases ${counts(report.leases)} s), ${report.wallSeconds} s in all${report.load ? `, load average ${report.load.min.toFixed(1)}-${report.load.max.toFixed(1)}` : ''}`,
    `  steps by kind: ${counts(report.kinds)}`,
    `  actions: ${counts(report.actions)}`,
    `  requests: ${counts(report.requests)}`,
    `  bounds (+${ms(result.bounds.marginMs)} margin): crash ${ms(result.bounds.crashMs)}; hang ${Object.entries(result.bounds.hangMs).map(([k, v]) => `${ms(v)} (${k})`).join(', ')}; convergence ${ms(result.bounds.convergenceMs)}`,
    `  measured: crash detection ${dist(result.detection.crash)}; hang detection ${dist(result.detection.hang)}; convergence ${dist(result.convergence)}`,
  ];
  for (const [i, inv] of result.invariants.entries()) {
    const excused = inv.excused && inv.excused.count > 0 ? `; ${inv.excused.count} list reads during outages (allowed)` : '';
    lines.push(`  ${i + 1}. ${inv.name}: ${inv.violations === 0 ? 'ok' : `${inv.violations} VIOLATIONS`} (${inv.checked} checked${excused})`);
    if (inv.first) lines.push(`     first: ${inv.first.what}`);
  }
  lines.push(report.result.ok ? '  PASS' : `  FAIL${report.historyFile ? `; history in ${report.historyFile} (replay: --seed ${report.seed})` : ''}`);
  return lines;
}
