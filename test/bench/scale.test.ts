/**
 * Smoke test of `roster bench --quick --scenarios scale`, run as a real CLI
 * process: 200 nodes in one cluster run by the SDK in child processes (20
 * RosterClients watching, 20 killed and restarted), short phases. It checks
 * the report's shape and what does not depend on the machine — no node was
 * falsely declared down, every killed node was seen down, every list came to
 * equal the server's, the runtime counted the requests — never a timing, and
 * that no client process is left behind.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { BenchReport } from '../../bench/run.ts';
import { processesWith, runCli, type Finished } from '../support/processes.ts';

let dir: string;
let result: Finished;
let report: BenchReport;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'roster-bench-scale-test-'));
  result = await runCli(['bench', '--quick', '--scenarios', 'scale', '--json', join(dir, 'out.json')], { timeoutMs: 420_000, killSignal: 'SIGINT' });
  if (result.code === 0) report = JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')) as BenchReport;
}, 430_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('exits 0 with the scale rows in the table and the scenario alone in the JSON report', () => {
  expect(result.code, result.stderr).toBe(0);
  expect(result.stdout).toMatch(/^scale: 200 nodes, 1 cluster, 20 \+ 20 RosterClients/m);
  expect(report.scale).toMatchObject({ nodes: 200, subscribers: 20, stormNodes: 20, allStarted: true });
  expect(report.soak).toBeUndefined();
});

test('no node was falsely declared down, in the ramp or the steady phase', () => {
  expect(report.scale?.falseDowns).toEqual({ ramp: 0, steady: 0 });
  expect(report.goals.find((g) => g.what.startsWith('false NODE_DOWN at scale'))).toMatchObject({ value: 0, met: true });
});

test('every killed node was seen down, and afterwards every RosterClient held the server\'s list', () => {
  const sc = report.scale;
  expect(sc?.crash.observed).toBe(20);
  expect(sc?.crash.detectionMs.n).toBe(20);
  // Each killed node's lease was cut when its connection dropped (the stream has the cut), and its NODE_DOWN seen.
  expect(sc?.crash.killToCutMs.n).toBe(20);
  expect(sc?.crash.cutToDownMs.n).toBe(20);
  expect(sc?.storm.convergedMs.fromKill, JSON.stringify(sc?.storm)).not.toBeNull();
  // Timings are the machine's: a quick run does not judge them.
  expect(report.goals.find((g) => g.what.startsWith('crash detection p99 at scale'))?.met).toBeNull();
});

test("the runtime counted the storm's requests: the 20 restarts registered, connected and read the list whole; posts reached the subscribers", () => {
  const counts = report.scale?.storm.counts;
  expect(counts?.register).toBeGreaterThanOrEqual(20);
  expect(counts?.connect).toBeGreaterThanOrEqual(20);
  expect(counts?.fullLists).toBeGreaterThanOrEqual(20);
  expect(counts?.posts).toBeGreaterThan(0);
  expect(report.scale?.rssMiB.runtime.max).toBeGreaterThan(0);
});

test("roster capacity's prediction for the same workload is beside the counts", () => {
  const p = report.scale?.prediction;
  expect(p?.command).toBe('npx roster capacity --nodes 200 --bound-nodes 40 --clusters 1 --subscribers 1 --churn 0');
  expect(p?.figures.map((f) => f.figure)).toContain('keepalive requests/s');
  expect(p?.figures.find((f) => f.figure === 'storm: full-list reads at start and on gaps')?.predicted).toBe(20);
  // The planner's storm posts, given the batches the fan-out made here.
  expect(p?.figures.find((f) => f.figure === 'storm: posts, to the batches made here')?.predicted).toBeGreaterThan(0);
});

test("the storm's full-list reads are told apart: the 20 restarts' first lists among them", () => {
  const by = report.scale?.storm.fullListsBy;
  expect(by?.starts).toBe(20);
  // What the clients say they read whole is what the runtime served whole (a reconnection's sync may be a 304).
  const told = (by?.starts ?? 0) + (by?.gaps ?? 0) + (by?.refreshes ?? 0) + (by?.plainRefreshes ?? 0);
  expect(told).toBeLessThanOrEqual(report.scale?.storm.counts.fullLists ?? 0);
  const timeline = report.scale?.storm.timeline;
  // Each killed node's NODE_DOWN and its restart's NODE_REGISTERED, at least.
  expect(timeline?.eventsPerSlot.reduce((n, k) => n + k, 0)).toBeGreaterThanOrEqual(40);
});

test('no client process of this run is left running', () => {
  // By its cluster, which each client process has on its command line: another run's may be running beside this one.
  const clusterId = report.scale?.clusterId ?? '';
  expect(clusterId).toMatch(/^scale-/);
  expect(processesWith(clusterId)).toEqual([]);
});
