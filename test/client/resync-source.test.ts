/**
 * A node that starts from its cache file learns, at its first sync, what
 * changed while it was not running. Those changes are reported with
 * `source: 'resync'`, so a user can tell them from live events (`event`).
 */
import { RosterClient } from '@roster/client';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/wait.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { deregisterDirect, record, registerDirect, uniqueCluster } from './helpers.ts';

describe('changes found at start against the cache file', () => {
  let runtime: SpawnedRuntime;
  let dir: string;
  beforeAll(async () => {
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint') });
    dir = await mkdtemp(join(tmpdir(), 'roster-resync-'));
  });
  afterAll(async () => {
    await runtime?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('are marked resync; what happens after the start is marked event', async () => {
    const clusterId = uniqueCluster('resync');
    const cacheFile = join(dir, `${clusterId}.json`);
    const options = { httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, cacheFile, nodeId: 'me', leaseSeconds: 30 };
    await registerDirect(runtime.httpUrl, clusterId, 'peer', { leaseSeconds: 60 });

    const before = new RosterClient(options);
    await before.start();
    await eventually(() => expect(before.nodes().map((n) => n.nodeId)).toEqual(['me', 'peer']), 10_000);
    await before.stop();

    // While `me` is not running, its peer leaves and another node arrives.
    await deregisterDirect(runtime.httpUrl, clusterId, 'peer');
    await registerDirect(runtime.httpUrl, clusterId, 'newcomer', { leaseSeconds: 60 });

    const after = new RosterClient(options);
    const events = record(after);
    await after.start();
    expect(events.of('down')).toEqual([expect.objectContaining({ node: expect.objectContaining({ nodeId: 'peer' }), reason: 'deregistered', source: 'resync' })]);
    expect(events.of('registered').map((e) => `${e.node.nodeId}:${e.source}`)).toEqual(expect.arrayContaining(['newcomer:resync']));

    // From now on: live.
    await registerDirect(runtime.httpUrl, clusterId, 'later', { leaseSeconds: 60 });
    await eventually(() => expect(events.of('registered').map((e) => `${e.node.nodeId}:${e.source}`)).toContain('later:event'), 10_000);
    await after.stop();
  });
});
