/**
 * Network faults between a client and the information center, injected with
 * a TCP proxy: a cut while the cluster changes, a silent partition, and a
 * start while the information center is unreachable.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/wait.ts';
import { RosterClient } from '@roster/client';
import { runtimeFixture } from '../support/fixtures.ts';
import type { TcpProxy } from '../support/proxy.ts';
import { deregisterDirect, getNodeDirect, ids, record, registerDirect, serverList, summary, uniqueCluster } from './helpers.ts';

describe('network faults', () => {
  const { runtime, cleanup, proxy } = runtimeFixture({ dynamodbEndpoint: inject('dynamodbEndpoint'), sweepInterval: 0.5, disconnectGrace: 1 });

  function client(options: Partial<ConstructorParameters<typeof RosterClient>[0]> & { clusterId: string }, via?: TcpProxy): RosterClient {
    const c = new RosterClient({
      httpUrl: via ? via.via(runtime.httpUrl) : runtime.httpUrl,
      wsUrl: via ? via.via(runtime.wsUrl) : runtime.wsUrl,
      ...options,
    });
    cleanup.push(() => c.stop());
    return c;
  }

  /** The client's cache holds exactly the server's healthy list, confirmed. */
  async function expectConverged(c: RosterClient, clusterId: string): Promise<void> {
    expect(c.stale).toBe(false);
    expect(summary(c.nodes())).toEqual(summary((await serverList(runtime.httpUrl, clusterId)).nodes));
  }

  it('after a cut during which nodes join, leave and change, the client reconnects, resyncs and holds the server list', async () => {
    const clusterId = uniqueCluster('cut');
    for (const id of ['n1', 'n2', 'n3']) await registerDirect(runtime.httpUrl, clusterId, id, { leaseSeconds: 60 });
    const p = await proxy();
    // No periodic refresh: only the reconnection may bring the cache up to date.
    const watcher = client({ clusterId, refreshIntervalMs: 0 }, p);
    const self = client({ clusterId, nodeId: 'self', leaseSeconds: 30, refreshIntervalMs: 0 }, p);
    const events = record(watcher);
    await watcher.start();
    await self.start();
    await eventually(() => expect(ids(watcher.nodes())).toEqual(['n1', 'n2', 'n3', 'self']), 10_000);

    p.cut();
    await eventually(() => expect(watcher.state).toBe('connecting'), 10_000);
    expect(watcher.stale).toBe(true);
    await registerDirect(runtime.httpUrl, clusterId, 'n4', { leaseSeconds: 60 });
    await registerDirect(runtime.httpUrl, clusterId, 'n5', { leaseSeconds: 60 });
    await deregisterDirect(runtime.httpUrl, clusterId, 'n2');
    await registerDirect(runtime.httpUrl, clusterId, 'n3', { leaseSeconds: 60, metadata: { role: 'changed' } });
    // `self` lost its bound connection: the server lets it go after the grace period.
    await eventually(async () => expect((await getNodeDirect(runtime.httpUrl, clusterId, 'self')).status).toBe('DOWN'), 15_000);
    // Meanwhile the cut-off client keeps serving what it had.
    expect(ids(watcher.nodes())).toEqual(['n1', 'n2', 'n3', 'self']);

    p.restore();
    await eventually(
      async () => {
        await expectConverged(watcher, clusterId);
        await expectConverged(self, clusterId);
        expect(ids(watcher.nodes())).toEqual(['n1', 'n3', 'n4', 'n5', 'self']);
      },
      20_000,
    );
    expect(events.of('disconnected').length).toBeGreaterThan(0);
    expect(events.of('connected').some((e) => e.reconnect)).toBe(true);
    expect(events.of('resynced').some((e) => e.reason === 'reconnect')).toBe(true);
    expect(events.of('down')).toContainEqual(expect.objectContaining({ source: 'sync', reason: 'deregistered', node: expect.objectContaining({ nodeId: 'n2' }) }));
    expect(events.of('updated')).toContainEqual(expect.objectContaining({ node: expect.objectContaining({ nodeId: 'n3', metadata: { role: 'changed' } }) }));
    for (const id of ['n4', 'n5']) {
      expect(events.of('registered')).toContainEqual(expect.objectContaining({ source: 'sync', node: expect.objectContaining({ nodeId: id }) }));
    }
  });

  it('a connection that stops answering PONGs is declared dead and replaced', async () => {
    const clusterId = uniqueCluster('freeze');
    const p = await proxy();
    const watcher = client({ clusterId, refreshIntervalMs: 0, pingIntervalMs: 200, pongTimeoutMs: 500, requestTimeoutMs: 1500 }, p);
    const events = record(watcher);
    await watcher.start();

    p.freeze(); // nothing flows, nothing closes: only the missing PONG tells
    await eventually(() => expect(events.of('disconnected').map((e) => e.reason)).toContainEqual(expect.stringMatching(/PONG/)), 10_000);
    await registerDirect(runtime.httpUrl, clusterId, 'late', { leaseSeconds: 60 });
    p.restore();
    await eventually(
      async () => {
        await expectConverged(watcher, clusterId);
        expect(ids(watcher.nodes())).toEqual(['late']);
      },
      20_000,
    );
  });

  it('starts from the cache file while the information center is unreachable, then confirms the list', async () => {
    const clusterId = uniqueCluster('file');
    const dir = await mkdtemp(join(tmpdir(), 'roster-cache-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'nested', 'cache.json');
    await registerDirect(runtime.httpUrl, clusterId, 'n1', { leaseSeconds: 60 });
    await registerDirect(runtime.httpUrl, clusterId, 'n2', { leaseSeconds: 60 });

    const first = new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, cacheFile: file });
    await first.start();
    await first.stop(); // waits for the file write
    const saved = JSON.parse(await readFile(file, 'utf8')) as { savedAt: string; nodes: { nodeId: string }[] };
    expect(saved.nodes.map((n) => n.nodeId)).toEqual(['n1', 'n2']);

    // The information center becomes unreachable, and the cluster changes meanwhile.
    const p = await proxy();
    p.cut();
    await deregisterDirect(runtime.httpUrl, clusterId, 'n1');
    await registerDirect(runtime.httpUrl, clusterId, 'n3', { leaseSeconds: 60 });

    const second = client({ clusterId, nodeId: 'n4', cacheFile: file, leaseSeconds: 30 }, p);
    const events = record(second);
    await second.start(); // must not throw: it has a list to serve
    expect(second.stale).toBe(true);
    expect(ids(second.nodes())).toEqual(['n1', 'n2']);
    expect(second.lastSyncedAt?.toISOString()).toBe(saved.savedAt);
    expect(events.of('warning').some((e) => e.message.includes(file))).toBe(true);

    p.restore();
    await eventually(
      async () => {
        await expectConverged(second, clusterId);
        expect(ids(second.nodes())).toEqual(['n2', 'n3', 'n4']); // registered in the background, too
      },
      20_000,
    );
    expect(second.lastSyncedAt!.getTime()).toBeGreaterThan(Date.parse(saved.savedAt));
    await eventually(async () => {
      const rewritten = JSON.parse(await readFile(file, 'utf8')) as { nodes: { nodeId: string }[] };
      expect(rewritten.nodes.map((n) => n.nodeId)).toEqual(['n2', 'n3', 'n4']);
    }, 10_000);
  });

  it('without a cache file, start() rejects when the information center is unreachable, and the client is closed', async () => {
    const p = await proxy();
    p.cut();
    const watcher = client({ clusterId: uniqueCluster('down') }, p);
    await expect(watcher.start()).rejects.toMatchObject({ name: 'RosterClientError', code: 'NETWORK' });
    expect(watcher.state).toBe('closed');

    const node = client({ clusterId: uniqueCluster('down'), nodeId: 'n1' }, p);
    await expect(node.start()).rejects.toMatchObject({ code: 'NETWORK' });
  });
});
