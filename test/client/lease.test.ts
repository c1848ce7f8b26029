/**
 * The lease as a node client keeps it: 404 → re-register, 409 → superseded,
 * and `lost` only once the lease has certainly lapsed. And the one abort
 * signal a lease passes to every keepalive (its own stopping): a request
 * leaves nothing attached to it when it ends — `AbortSignal.any([signal,
 * timeout])` did, in Node's record of the signals linked to another (never
 * emptied on Node 20: +12 MB of heap per 250,000 requests, for as long as
 * the lease runs; nodejs/node#55351) — and it still ends a request in flight.
 */
import { getEventListeners, once } from 'node:events';
import { createServer } from 'node:http';
import { describe, expect, inject, it } from 'vitest';
import { RosterClient } from '@roster/client';
import { HttpClient } from '../../client/src/http-client.ts';
import { runtimeFixture } from '../support/fixtures.ts';
import { sleep, eventually } from '../support/wait.ts';
import { deregisterDirect, getNodeDirect, record, registerDirect, uniqueCluster } from './helpers.ts';

describe('the lease', () => {
  const { runtime, cleanup, proxy } = runtimeFixture({ dynamodbEndpoint: inject('dynamodbEndpoint'), sweepInterval: 0.5, disconnectGrace: 1 });

  function node(options: Partial<ConstructorParameters<typeof RosterClient>[0]> & { clusterId: string; nodeId: string }): RosterClient {
    const c = new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, ...options });
    cleanup.push(() => c.stop());
    return c;
  }

  it('re-registers at once when a keepalive finds the node gone (404), and binds the node again', async () => {
    const clusterId = uniqueCluster('404');
    const p = await proxy();
    // Keepalives go straight to the server; the WebSocket goes through the proxy, so it can be silenced:
    // then only the keepalive can notice that the node is gone (not its own NODE_DOWN event).
    const client = node({ clusterId, nodeId: 'k1', leaseSeconds: 10, keepaliveIntervalMs: 300, wsUrl: p.via(runtime.wsUrl), requestTimeoutMs: 2000 });
    const events = record(client);
    await client.start();
    const before = await getNodeDirect(runtime.httpUrl, clusterId, 'k1');

    p.freeze();
    await deregisterDirect(runtime.httpUrl, clusterId, 'k1');
    await eventually(() => expect(events.of('keepaliveFailed').map((e) => e.error.code)).toContain('NODE_NOT_FOUND'), 10_000);
    await eventually(async () => {
      const now = await getNodeDirect(runtime.httpUrl, clusterId, 'k1');
      expect(now.status).toBe('UP');
      expect(now.incarnation).toBe(client.incarnation);
      expect(now.revision).toBeGreaterThan(before.revision + 1); // DOWN, then registered again
    }, 10_000);
    expect(events.of('lost')).toEqual([]); // a 404 is answered at once; the lease never lapsed
    // The registration that replaced the failed keepalive ends the series, once.
    await eventually(() => expect(events.of('keepaliveRecovered')).toEqual([{ type: 'keepaliveRecovered', failures: expect.any(Number) }]), 10_000);
    expect(events.of('keepaliveRecovered')[0]?.failures).toBeGreaterThanOrEqual(1);
    const recoveredAt = events.all.findIndex((r) => r.event.type === 'keepaliveRecovered');
    expect(events.all.findLastIndex((r) => r.event.type === 'keepaliveFailed')).toBeLessThan(recoveredAt);

    p.restore();
    await eventually(
      () => {
        expect(events.of('connected').filter((e) => e.bound && e.reconnect).length).toBeGreaterThan(0);
        expect(client.stale).toBe(false);
        expect(client.node('k1')?.status).toBe('UP');
      },
      20_000,
    );
  });

  it('an old incarnation that gets 409 reports it, stops keeping alive, and leaves the new incarnation alone', async () => {
    const clusterId = uniqueCluster('409');
    const old = node({ clusterId, nodeId: 'z1', leaseSeconds: 30, keepaliveIntervalMs: 200 });
    const events = record(old);
    await old.start();

    // A restarted process registers with a higher incarnation.
    const newer = await registerDirect(runtime.httpUrl, clusterId, 'z1', {
      incarnation: old.incarnation + 1,
      leaseSeconds: 30,
      metadata: { owner: 'new' },
    });
    await eventually(() => expect(events.of('lost')).toContainEqual(expect.objectContaining({ reason: 'superseded' })), 10_000);
    const failures = events.of('keepaliveFailed');
    expect(failures.map((e) => e.error.code)).toContain('STALE_INCARNATION');
    const lostAt = events.all.findIndex((r) => r.event.type === 'lost');
    const failedAt = events.all.findIndex((r) => r.event.type === 'keepaliveFailed');
    expect(failedAt).toBeLessThan(lostAt);

    // Several keepalive intervals (200 ms) later it has neither re-registered nor retried.
    await sleep(1500);
    expect(events.of('keepaliveFailed')).toHaveLength(failures.length);
    expect(events.of('lost')).toHaveLength(1);
    let current = await getNodeDirect(runtime.httpUrl, clusterId, 'z1');
    expect(current).toMatchObject({ status: 'UP', incarnation: newer.incarnation, metadata: { owner: 'new' } });

    // Stopping the old one must not deregister the new one.
    await old.stop();
    current = await getNodeDirect(runtime.httpUrl, clusterId, 'z1');
    expect(current).toMatchObject({ status: 'UP', incarnation: newer.incarnation });
  });

  it('reports the lease lost only once it has certainly lapsed, then registers anew', async () => {
    const clusterId = uniqueCluster('lost');
    const p = await proxy();
    // Short enough to see the lease lapse, long enough that a busy machine answers start()'s requests in time.
    const leaseMs = 6000;
    const client = node({
      clusterId,
      nodeId: 'l1',
      leaseSeconds: leaseMs / 1000,
      httpUrl: p.via(runtime.httpUrl),
      wsUrl: p.via(runtime.wsUrl),
      requestTimeoutMs: 1500,
    });
    const events = record(client);
    await client.start();

    const cutAt = Date.now();
    p.cut();
    await eventually(() => expect(events.of('lost')).toHaveLength(1), 30_000);
    const lost = events.all.find((r) => r.event.type === 'lost');
    const firstFailure = events.all.find((r) => r.event.type === 'keepaliveFailed');
    expect(lost?.event).toMatchObject({ reason: 'expired' });
    // Not on the first failure: keepalives failed first, and the lost came a lease after the last success
    // (which was at most one keepalive interval, lease/3, before the cut).
    expect(firstFailure).toBeDefined();
    expect(firstFailure!.at).toBeLessThan(lost!.at);
    expect(lost!.at - cutAt).toBeGreaterThanOrEqual(leaseMs - leaseMs / 3 - 100);

    // Once per lease, however long the outage: most of another lease (and many keepalive attempts) later, no second `lost`.
    await sleep(0.75 * leaseMs);
    expect(events.of('lost')).toHaveLength(1);

    p.restore();
    await eventually(
      async () => {
        const now = await getNodeDirect(runtime.httpUrl, clusterId, 'l1');
        expect(now.status).toBe('UP');
        expect(client.stale).toBe(false);
        expect(client.node('l1')?.revision).toBe(now.revision);
      },
      20_000,
    );
  });

  it('a keepalive leaves nothing attached to the lease\'s signal: 200 of them, one aborted in flight, one timed out', async () => {
    const clusterId = uniqueCluster('signal');
    const node = await registerDirect(runtime.httpUrl, clusterId, 's1', { leaseSeconds: 3600 });
    const lease = new AbortController();
    const http = new HttpClient({ baseUrl: runtime.httpUrl, timeoutMs: 10_000 });
    for (let i = 0; i < 200; i++) expect((await http.keepalive(clusterId, 's1', node.incarnation, { signal: lease.signal })).nodeId).toBe('s1');
    expect(getEventListeners(lease.signal, 'abort')).toHaveLength(0);
    expect(linkedSignals(lease.signal)).toBe(0);

    // A server that takes a request and never answers: only the lease's signal or the timeout ends it.
    const silent = createServer(() => undefined).listen(0, '127.0.0.1');
    cleanup.push(async () => {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    });
    await once(silent, 'listening');
    const address = silent.address();
    const silentUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const stopping = new AbortController();
    const inFlight = new HttpClient({ baseUrl: silentUrl, timeoutMs: 60_000 }).keepalive(clusterId, 's1', 1, { signal: stopping.signal });
    setTimeout(() => stopping.abort(), 100);
    await expect(inFlight).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(new HttpClient({ baseUrl: silentUrl, timeoutMs: 300 }).keepalive(clusterId, 's1', 1, { signal: lease.signal })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(getEventListeners(lease.signal, 'abort')).toHaveLength(0);
    expect(linkedSignals(lease.signal)).toBe(0);
  });
});

/** Node's own set of the signals AbortSignal.any() linked to `signal` (where the leak was); 0 when it has none. */
function linkedSignals(signal: AbortSignal): number {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = symbol === undefined ? undefined : (signal as unknown as Record<symbol, Set<unknown> | undefined>)[symbol];
  return set?.size ?? 0;
}
