/**
 * `roster cost` as a user runs it, as a CLI process: the table and the
 * comparison, bad input, and the measured units taken from a bench report.
 * The model's arithmetic: cost.unit.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../support/runtime.ts';

test('roster cost --nodes 1000 --clusters 10 prints the components, the total and the comparison', () => {
  const run = spawnSync(process.execPath, ['bin/roster.js', 'cost', '--nodes', '1000', '--clusters', '10'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  for (const text of ['HTTP API requests', 'WebSocket connection minutes', 'Lambda duration', 'DynamoDB writes', 'sweeper Lambda', 'CloudWatch Logs ingestion', 'CloudWatch Logs storage', 'total', 'AWS Cloud Map', 'etcd, 3 × t4g.small']) {
    expect(run.stdout).toContain(text);
  }
  const bad = spawnSync(process.execPath, ['bin/roster.js', 'cost'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('--nodes is required');
});

test('roster cost --units takes the measured units from a bench report, and refuses one without them', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'roster-cost-'));
  try {
    const units = (keepalive: number) => ({ writeUnits: keepalive, indexWriteUnits: 0, readUnits: 0, count: 10 });
    const report = {
      startedAt: '2026-11-30T00:00:00.000Z',
      capacity: {
        operations: { registerNew: units(4), keepalive: units(3), reRegisterChanged: units(4), deregister: units(3), connectBound: units(3), disconnectBound: units(5) },
        sweepLoad: {},
        fullSweeps: [{ nodes: 100, clusters: 1, clustersRead: 1, itemsRead: 100, readUnits: 4, readUnitsPerItem: 0.04, durationMs: 10 }],
      },
      poster: { posts: 100, cpuUsPerPost: 80, messageBytes: 400 },
    };
    const file = path.join(dir, 'bench.json');
    await writeFile(file, JSON.stringify(report));
    const cost = (...extra: string[]) => spawnSync(process.execPath, ['bin/roster.js', 'cost', '--nodes', '100', '--json', ...extra], { cwd: REPO_ROOT, encoding: 'utf8' });
    const measured = JSON.parse(cost().stdout) as { total: number; units: string };
    const theirs = JSON.parse(cost('--units', file).stdout) as { total: number; units: string; lines: { component: string; quantity: string }[] };
    expect(theirs.units).toContain(file);
    expect(theirs.lines.find((l) => l.component === 'DynamoDB writes')?.quantity).toContain('keepalive 3 WRU');
    expect(theirs.total).toBeGreaterThan(measured.total);
    await writeFile(file, JSON.stringify({ startedAt: 'x' }));
    const refused = cost('--units', file);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('no capacity section');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
