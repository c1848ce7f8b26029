/**
 * The short robustness profile `npm test` runs: fixed seeds, a quarter of a
 * minute of operations and faults each, every invariant checked
 * (robustness/, docs/measured/robustness.md). Between them the two schedules hold every
 * kind of operation and fault but a killed store, which the regression run
 * (regressions.test.ts) has. The bounds come from the configuration with a
 * margin for a busy machine; a failure prints the report, and the history is
 * kept in the directory it names (`roster robustness --check FILE`).
 */
import { expect, test } from 'vitest';
import { renderReport } from '../../robustness/report.ts';
import { runRobustness } from '../../robustness/run.ts';

for (const seed of [13, 22]) {
  test(`seed ${seed}: every invariant holds`, { timeout: 300_000 }, async () => {
    const report = await runRobustness({ seed, durationSeconds: 15, clients: 4, marginMs: 3000 });
    const text = renderReport(report).join('\n');
    expect(report.result.invariants.filter((i) => i.violations > 0), text).toEqual([]);
    // The run did something: steps were carried out and checked.
    expect(Object.values(report.kinds).reduce((a, b) => a + b, 0), text).toBeGreaterThan(8);
    expect(report.result.invariants[0]?.checked, text).toBeGreaterThan(0);
    expect(report.result.invariants[4]?.checked, text).toBeGreaterThan(50);
  });
}
