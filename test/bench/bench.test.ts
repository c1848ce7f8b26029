/**
 * Smoke test of `roster bench --quick --json FILE`, run as a real CLI process:
 * every scenario (but scale: scale.test.ts) is in the report with sane, non-timing properties (everyone
 * received everything, no false NODE_DOWN, etcd either measured or reported
 * as not installed with a way to install it), and nothing it started is left
 * running. Timings are never asserted: they depend on the machine.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { SCENARIOS, type BenchReport } from '../../bench/run.ts';
import { processesWith, runCli, type Finished } from '../support/processes.ts';

let dir: string;
let result: Finished;
let report: BenchReport;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'roster-bench-test-'));
  // Every scenario but scale, which has its own smoke test (scale.test.ts) so each stays within its time.
  const scenarios = SCENARIOS.filter((s) => s !== 'scale').join(',');
  result = await runCli(['bench', '--quick', '--scenarios', scenarios, '--json', join(dir, 'out.json')], { timeoutMs: 300_000, killSignal: 'SIGINT' });
  if (result.code === 0) report = JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')) as BenchReport;
}, 310_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('roster bench --quick exits 0, prints the table and writes the JSON report', () => {
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(/^SCENARIO\s+FIGURE\s+ROSTER\s+ETCD/m);
  expect(report).toMatchObject({ version: 1, quick: true });
  expect(report.machine.cores).toBeGreaterThan(0);
  expect(report.startup.runtimeReadyMs).toBeGreaterThan(0);
});

test('keepalive throughput: all three paths served requests without errors, and the ratio is theirs', () => {
  const t = report.throughput;
  expect(t).toBeDefined();
  if (!t) return;
  for (const side of [t.roster, t.raw, t.rawSdk]) {
    expect(side.requests).toBeGreaterThan(0);
    expect(side.errors).toBe(0);
  }
  expect(t.ratio).toBeCloseTo(t.roster.perSecond / t.raw.perSecond, 2);
});

test('fan-out: every subscriber received every registration, at both sizes, with the CPU per message measured', () => {
  expect(report.fanout?.map((f) => f.subscribers)).toEqual([10, 50]);
  for (const f of report.fanout ?? []) {
    expect(f).toMatchObject({ allReceived: true, missing: 0, messages: f.subscribers * f.registrations });
    expect(f.allMs.n).toBe(f.registrations);
    expect(f.cpuUsPerMessage.server).toBeGreaterThan(0);
  }
  expect(report.poster?.cpuUsPerPost).toBeGreaterThan(0);
});

test('storm: every plain and every batched subscriber got every event, each node in order; batching took fewer messages', () => {
  const storm = report.storm;
  expect(storm?.groups.map((g) => g.batch)).toEqual([false, true]);
  for (const g of storm?.groups ?? []) expect(g, JSON.stringify(storm)).toMatchObject({ allReceived: true, missing: 0, outOfOrder: 0 });
  const [plain, batched] = storm?.groups ?? [];
  // A plain subscriber gets one message per event (at least once); a batched one fewer messages for the same events.
  expect(plain?.messagesReceived).toBeGreaterThanOrEqual((storm?.registrations ?? 0) * (plain?.subscribers ?? 0));
  expect(batched?.messagesReceived).toBeLessThan(plain?.messagesReceived ?? 0);
});

test('capacity: a keepalive writes one unit and no index entry, by DynamoDB\'s own account', () => {
  expect(report.capacity?.operations.keepalive).toMatchObject({ writeUnits: 1, indexWriteUnits: 0 });
  expect(report.capacity?.sweepLoad.keepaliveWriteUnits, JSON.stringify(report.capacity?.sweepLoad)).toBe(1);
  expect(report.capacity?.fullSweeps[0]?.itemsRead).toBeGreaterThan(0);
});

test('crash and hang: every observer saw NODE_DOWN for every agent, for the right reason', () => {
  const { crash, hang } = report;
  expect(crash).toMatchObject({ kind: 'crash', allObserved: true });
  expect(crash?.reasons).toEqual({ disconnected: (crash?.trials ?? 0) * (crash?.observers ?? 0) });
  expect(hang).toMatchObject({ kind: 'hang', allObserved: true });
  expect(hang?.reasons).toEqual({ expired: (hang?.trials ?? 0) * (hang?.observers ?? 0) });
  expect(hang?.fromLastKeepaliveMs?.n).toBe(hang?.trials);
});

test('etcd: either measured on the same scenarios, or reported as not installed with how to install it', () => {
  const etcd = report.etcd;
  expect(etcd).toBeDefined();
  if (!etcd) return;
  if (etcd.installed) {
    expect(etcd.version).toMatch(/^\d+\.\d+/);
    for (const f of etcd.fanout ?? []) expect(f).toMatchObject({ allReceived: true, missing: 0 });
    expect(etcd.fanout).toHaveLength(2);
    expect(etcd.crash).toMatchObject({ allObserved: true });
    expect(etcd.hang).toMatchObject({ allObserved: true });
    expect(Object.keys(etcd.ratios).sort()).toEqual(['crash detection p99', 'fanout p99 at 10', 'fanout p99 at 50', 'hang detection p99']);
    expect(result.stdout).not.toContain('not installed');
  } else {
    expect(etcd.howToInstall).toMatch(/etcd/);
    expect(result.stdout).toContain('not installed');
  }
});

test('soak: no false NODE_DOWN, every node healthy at the end', () => {
  const soak = report.soak;
  expect(soak, JSON.stringify(soak)).toMatchObject({ falseDowns: 0, reRegistrations: 0, healthyAtEnd: soak?.nodes });
  expect(soak?.keepalives).toBeGreaterThan(0);
  expect(soak?.runtimeRssMiB.max).toBeGreaterThan(0);
  expect(report.goals.find((g) => g.what.startsWith('false NODE_DOWN'))).toMatchObject({ met: true, value: 0 });
  // A quick run judges what does not depend on the machine (delivery, order, write units), never a timing.
  const untimed = ['false NODE_DOWN', 'storm:', 'write units per keepalive'];
  const goals = JSON.stringify(report.goals, null, 1);
  expect(report.goals.filter((g) => untimed.some((u) => g.what.startsWith(u))).every((g) => g.met === true), goals).toBe(true);
  expect(report.goals.filter((g) => !untimed.some((u) => g.what.startsWith(u))).every((g) => g.met === null), goals).toBe(true);
});

test('nothing the bench started is left running or on disk', async () => {
  expect(processesWith('bench/etcd-node.ts')).toEqual([]);
  expect(processesWith('roster-bench-etcd-')).toEqual([]);
  expect((await readdir(tmpdir())).filter((name) => name.startsWith('roster-bench-etcd-'))).toEqual([]);
});
