/**
 * Smoke test of `roster bench --quick --json FILE`, run as a real CLI process:
 * every scenario is in the report with sane, non-timing properties (everyone
 * received everything, no false NODE_DOWN, etcd either measured or reported
 * as not installed with a way to install it), and nothing it started is left
 * running. Timings are never asserted: they depend on the machine.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { BenchReport } from '../../bench/run.ts';
import { processesWith, runCli, type Finished } from '../support/processes.ts';

let dir: string;
let result: Finished;
let report: BenchReport;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'roster-bench-test-'));
  result = await runCli(['bench', '--quick', '--json', join(dir, 'out.json')], { timeoutMs: 150_000, killSignal: 'SIGINT' });
  if (result.code === 0) report = JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')) as BenchReport;
}, 160_000);

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

test('fan-out: every subscriber received every registration, at both sizes', () => {
  expect(report.fanout?.map((f) => f.subscribers)).toEqual([10, 50]);
  for (const f of report.fanout ?? []) {
    expect(f).toMatchObject({ allReceived: true, missing: 0 });
    expect(f.allMs.n).toBe(f.registrations);
  }
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
  expect(soak).toMatchObject({ falseDowns: 0, reRegistrations: 0, healthyAtEnd: soak?.nodes });
  expect(soak?.keepalives).toBeGreaterThan(0);
  expect(soak?.runtimeRssMiB.max).toBeGreaterThan(0);
  expect(report.goals.find((g) => g.what.startsWith('false NODE_DOWN'))).toMatchObject({ met: true, value: 0 });
  // A quick run does not judge timings.
  expect(report.goals.filter((g) => !g.what.startsWith('false NODE_DOWN')).every((g) => g.met === null)).toBe(true);
});

test('nothing the bench started is left running or on disk', async () => {
  expect(processesWith('bench/etcd-node.ts')).toEqual([]);
  expect(processesWith('roster-bench-etcd-')).toEqual([]);
  expect((await readdir(tmpdir())).filter((name) => name.startsWith('roster-bench-etcd-'))).toEqual([]);
});
