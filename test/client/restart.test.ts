/**
 * The information center restarts under running clients. With `--data-dir`
 * it keeps its state; in memory it forgets everything, revisions included.
 * Either way no client may end with a wrong list.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/wait.ts';
import { RosterClient } from '@roster/client';
import { spawnRuntime, type SpawnedRuntime, type SpawnRuntimeOptions } from '../support/runtime.ts';
import { ids, record, serverList, summary, uniqueCluster } from './helpers.ts';

const RUNTIME: SpawnRuntimeOptions = { sweepInterval: 0.5, disconnectGrace: 1 };
/**
 * Each test starts two runtimes (each may start DynamoDB Local, whose JVM takes
 * up to 30 s on a busy machine) and waits up to 15 s and 40 s for the clients:
 * more than vitest's default 60 s, so the test's own waits decide, not that.
 */
const RESTART_TEST_TIMEOUT_MS = 150_000;

describe('the information center restarts', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function runtimeOn(options: SpawnRuntimeOptions): Promise<SpawnedRuntime> {
    const runtime = await spawnRuntime({ ...RUNTIME, ...options });
    cleanup.push(() => runtime.stop());
    return runtime;
  }

  function clients(runtime: SpawnedRuntime, clusterId: string, nodeIds: string[], leaseSeconds: number): RosterClient[] {
    const made = [...nodeIds.map((nodeId) => ({ nodeId })), {}].map(
      (extra) =>
        new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, leaseSeconds, refreshIntervalMs: 0, ...extra }),
    );
    for (const c of made) cleanup.push(() => c.stop());
    return made;
  }

  async function expectAllConverged(runtime: SpawnedRuntime, all: RosterClient[], clusterId: string, expected: string[]): Promise<void> {
    const truth = (await serverList(runtime.httpUrl, clusterId)).nodes;
    expect(ids(truth)).toEqual(expected);
    for (const c of all) {
      expect(c.stale, c.nodeId ?? 'watcher').toBe(false);
      expect(summary(c.nodes()), c.nodeId ?? 'watcher').toEqual(summary(truth));
    }
  }

  it('with --data-dir: clients reconnect, re-register as needed, and end with the right list', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'roster-data-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const clusterId = uniqueCluster('restart');
    const first = await runtimeOn({ dataDir });
    // A short lease: the outage outlasts it, so nodes must register again.
    const all = clients(first, clusterId, ['n1', 'n2', 'n3'], 3);
    await Promise.all(all.map((c) => c.start()));
    await eventually(() => expectAllConverged(first, all, clusterId, ['n1', 'n2', 'n3']), 15_000);

    await first.stop('SIGTERM');
    // n3 leaves while the information center is down: its deregistration cannot land, so it must expire.
    const n3 = all.find((c) => c.nodeId === 'n3');
    await n3?.stop();
    const rest = all.filter((c) => c !== n3);

    const second = await runtimeOn({ dataDir, port: first.port });
    await eventually(() => expectAllConverged(second, rest, clusterId, ['n1', 'n2']), 40_000);
  }, RESTART_TEST_TIMEOUT_MS);

  it('in memory: the server forgets its revisions, and the clients notice instead of keeping stale entries', async () => {
    const clusterId = uniqueCluster('amnesia');
    const first = await runtimeOn({});
    const all = clients(first, clusterId, ['n1', 'n2'], 5);
    const watcher = all[all.length - 1] as RosterClient;
    const events = record(watcher);
    await Promise.all(all.map((c) => c.start()));
    // Push the old revisions well above what the new server will reach soon.
    for (let i = 0; i < 5; i++) {
      await fetch(`${first.httpUrl}/v1/clusters/${clusterId}/nodes/extra`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ leaseSeconds: 60, metadata: { round: String(i) } }),
      });
    }
    await fetch(`${first.httpUrl}/v1/clusters/${clusterId}/nodes/extra`, { method: 'DELETE' });
    await eventually(() => expectAllConverged(first, all, clusterId, ['n1', 'n2']), 15_000);
    const oldRevision = watcher.revision;

    await first.stop('SIGTERM');
    const second = await runtimeOn({ port: first.port });
    await eventually(() => expectAllConverged(second, all, clusterId, ['n1', 'n2']), 40_000);
    expect(watcher.revision).toBeLessThan(oldRevision);
    expect(events.of('resynced').some((e) => e.reset)).toBe(true);
  }, RESTART_TEST_TIMEOUT_MS);
});
