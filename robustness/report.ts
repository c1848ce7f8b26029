/**
 * The report of robustness runs as text: what was done, the bounds, and each
 * invariant with its violations and first example.
 */
import type { Summary } from './checker.ts';
import type { RobustnessReport } from './run.ts';

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
