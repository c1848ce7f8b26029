/**
 * The periodic refresh of a cache that is up to date costs the server one
 * read of the cluster's revision (the list answers 304), yet still confirms
 * the cache; a cache that missed a change fetches the whole list.
 */
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { RosterClient } from '@roster/client';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { eventually } from '../support/wait.ts';
import { registerDirect, uniqueCluster } from './helpers.ts';

let runtime: SpawnedRuntime;
beforeAll(async () => {
  runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint') });
});
afterAll(async () => {
  await runtime?.stop();
});

it('refreshes with If-None-Match: confirmed without a full fetch while nothing changed', async () => {
  const clusterId = uniqueCluster('refresh');
  await registerDirect(runtime.httpUrl, clusterId, 'n1', { leaseSeconds: 3600 });
  const refreshIntervalMs = 200;
  const watcher = new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, refreshIntervalMs });
  /** Waits until refreshes have kept confirming the cache for five intervals: five refreshes, give or take the jitter. */
  const confirmedForFiveRefreshes = (since: number) =>
    eventually(() => (watcher.lastSyncedAt?.getTime() ?? 0) >= since + 5 * refreshIntervalMs, 10_000, 'five refresh intervals of confirmations');
  const fullRefreshes: number[] = [];
  watcher.on('resynced', (e) => {
    if (e.reason === 'refresh') fullRefreshes.push(e.revision);
  });
  try {
    await watcher.start();
    const confirmedAt = watcher.lastSyncedAt?.getTime() ?? 0;
    await confirmedForFiveRefreshes(confirmedAt);
    // The refreshes confirmed the cache (lastSyncedAt moved) and none fetched the list.
    expect(fullRefreshes).toEqual([]);
    expect(watcher.nodes().map((n) => n.nodeId)).toEqual(['n1']);

    // An event the watcher receives keeps its revision current: no full fetch after it. (A refresh that
    // runs while the registration is still being written may see the new revision before the event
    // arrives, and rightly fetch the list; on a busy machine that window is wide, so it is not counted.)
    await registerDirect(runtime.httpUrl, clusterId, 'n2', { leaseSeconds: 3600 });
    await eventually(() => watcher.nodes().length === 2, 10_000, 'the watcher to list n2');
    // A refresh already in flight when the event arrived may still finish with a full fetch: let one confirm after it.
    const eventAt = Date.now();
    await eventually(() => (watcher.lastSyncedAt?.getTime() ?? 0) > eventAt, 10_000, 'a refresh after the event');
    fullRefreshes.length = 0;
    await confirmedForFiveRefreshes(Date.now());
    expect(watcher.nodes().map((n) => n.nodeId)).toEqual(['n1', 'n2']);
    expect(fullRefreshes).toEqual([]);
  } finally {
    await watcher.stop();
  }
});
