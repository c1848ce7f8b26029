/**
 * Membership as docs/running-nodes/wire-protocol.md ("What each call does")
 * and docs/how-it-works/detection.md describe it, through the handler modules, with API Gateway-shaped events, on
 * DynamoDB Local. Events are observed on the table's real stream, filtered by
 * the fan-out's filter criteria.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Node } from '../../functions/core/model.ts';
import { newSweeperState, sweep } from '../../functions/core/sweeper.ts';
import { invokeHttp, wsConnect, wsDisconnect } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';
import { sleep } from '../support/wait.ts';

let table: TestTable;
let stream: StreamReader;

/** A short grace keeps the disconnect tests quick. */
const GRACE_SECONDS = 1;
/** The shortest lease there is, for the expiry tests. */
const SHORT_LEASE_SECONDS = 2;
/**
 * Time passing is the behaviour of the expiry and grace tests. The handlers and the sweeper read the time from
 * `Date.now` (their `deps.now`), in this process: the test moves that clock forward instead of waiting for it.
 * Only `Date` is faked, and it keeps running with the real clock, so timers, the SDK and DynamoDB Local's
 * requests behave as they do without it.
 */
const pass = (ms: number) => vi.setSystemTime(Date.now() + ms);
const pastShortLease = () => pass(SHORT_LEASE_SECONDS * 1000 + 100);
const pastGrace = () => pass(GRACE_SECONDS * 1000 + 100);

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  // The amnesty window is long enough not to interfere. Holds of the renewal threshold are off: several cases let a
  // whole cluster lapse at once to see it declared down (test/handlers/sweeper.test.ts has the threshold's own cases).
  table = await createTestTable({ DISCONNECT_GRACE_SECONDS: String(GRACE_SECONDS), SWEEPER_AMNESTY_SECONDS: '600', SELF_PRESERVATION_MAX_SECONDS: '0' });
  stream = new StreamReader(table.endpoint, table.tableName);
});

afterAll(() => {
  stream.close();
  vi.useRealTimers();
});

const cluster = () => `c-${randomUUID().slice(0, 8)}`;
const nodePath = (c: string, n: string) => `/v1/clusters/${c}/nodes/${n}`;

async function register(c: string, n: string, body: Record<string, unknown> = {}) {
  return invokeHttp({ method: 'PUT', path: nodePath(c, n), body });
}
async function keepalive(c: string, n: string, body: Record<string, unknown> = {}) {
  return invokeHttp({ method: 'POST', path: `${nodePath(c, n)}/keepalive`, body });
}
async function healthy(c: string): Promise<{ revision: number; nodes: Node[] }> {
  const res = await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes` });
  expect(res.status).toBe(200);
  return res.json as { revision: number; nodes: Node[] };
}
async function eventsOf(c: string) {
  return StreamReader.events(await stream.next()).filter((e) => e.clusterId === c);
}
const sweepOnce = () => sweep(table.deps, newSweeperState());

describe('register', () => {
  it('lists a registered node, answers 201 then 200, and emits NODE_REGISTERED once', async () => {
    const c = cluster();
    await stream.mark();
    const first = await register(c, 'n1', { metadata: { zone: 'a' }, leaseSeconds: 30 });
    expect(first.status).toBe(201);
    const node = (first.json as { node: Node }).node;
    expect(node).toMatchObject({ key: `${c}/n1`, clusterId: c, nodeId: 'n1', status: 'UP', metadata: { zone: 'a' }, leaseSeconds: 30, revision: 1 });
    expect(Date.parse(node.expiresAt) - Date.parse(node.lastKeepaliveAt)).toBe(30_000);

    const again = await register(c, 'n1', { metadata: { zone: 'a' }, leaseSeconds: 30 });
    expect(again.status).toBe(200);

    const list = await healthy(c);
    expect(list.nodes.map((n) => n.nodeId)).toEqual(['n1']);
    expect(list.revision).toBe(1);
    const events = await eventsOf(c);
    expect(events.map((e) => [e.type, e.revision])).toEqual([['NODE_REGISTERED', 1]]);
    expect(events[0]?.node.metadata).toEqual({ zone: 'a' });
  });

  it(`uses the default lease of ${DEFAULT_LEASE_SECONDS} s when none is given`, async () => {
    const res = await register(cluster(), 'n1');
    expect((res.json as { node: Node }).node.leaseSeconds).toBe(DEFAULT_LEASE_SECONDS);
  });

  it('emits NODE_UPDATED when a live node re-registers with different metadata', async () => {
    const c = cluster();
    await register(c, 'n1', { metadata: { v: '1' } });
    await stream.mark();
    const res = await register(c, 'n1', { metadata: { v: '2' } });
    expect(res.status).toBe(200);
    const events = await eventsOf(c);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'NODE_UPDATED', revision: 2, node: { metadata: { v: '2' }, status: 'UP' } });
  });

  it('emits NODE_REGISTERED for a new incarnation and refuses an older one with 409', async () => {
    const c = cluster();
    await register(c, 'n1', { incarnation: 5 });
    await stream.mark();
    const newer = await register(c, 'n1', { incarnation: 6 });
    expect((newer.json as { node: Node }).node.incarnation).toBe(6);
    expect((await eventsOf(c)).map((e) => e.type)).toEqual(['NODE_REGISTERED']);
    const older = await register(c, 'n1', { incarnation: 5 });
    expect(older.status).toBe(409);
    expect(older.json).toMatchObject({ error: { code: 'STALE_INCARNATION' } });
  });
});

describe('keepalive', () => {
  it('extends the lease and produces no event and no revision', async () => {
    const c = cluster();
    const reg = (await register(c, 'n1', { leaseSeconds: 10 })).json as { node: Node };
    await stream.mark();
    pass(50); // so that the keepalive's expiry is measurably later than the registration's
    const res = await keepalive(c, 'n1');
    expect(res.status).toBe(200);
    const node = (res.json as { node: Node }).node;
    expect(Date.parse(node.expiresAt)).toBeGreaterThan(Date.parse(reg.node.expiresAt));
    expect(node.revision).toBe(reg.node.revision);
    expect(await eventsOf(c)).toEqual([]);
    // The keepalive did write a stream record; the filter is what keeps it from the fan-out.
    expect((await stream.all()).some((r) => r.dynamodb?.NewImage?.clusterId?.S === c && r.eventName === 'MODIFY')).toBe(true);
    expect((await healthy(c)).revision).toBe(reg.node.revision);
  });

  it('answers 404 NODE_NOT_FOUND for an unknown node', async () => {
    const res = await keepalive(cluster(), 'ghost');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: { code: 'NODE_NOT_FOUND' } });
  });

  it('answers 409 STALE_INCARNATION for an incarnation that is not the current one', async () => {
    const c = cluster();
    await register(c, 'n1', { incarnation: 100 });
    await register(c, 'n1', { incarnation: 101 });
    const res = await keepalive(c, 'n1', { incarnation: 100 });
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ error: { code: 'STALE_INCARNATION' } });
    expect((await keepalive(c, 'n1', { incarnation: 101 })).status).toBe(200);
  });
});

describe('expiry', () => {
  it('hides a node past its lease before any sweep; the sweeper marks it DOWN (expired) and bumps the revision', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: SHORT_LEASE_SECONDS });
    await register(c, 'n2', { leaseSeconds: 60 });
    await stream.mark();
    pastShortLease();
    const before = await healthy(c);
    expect(before.nodes.map((n) => n.nodeId)).toEqual(['n2']);
    const all = await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' } });
    const n1 = (all.json as { nodes: Node[] }).nodes.find((n) => n.nodeId === 'n1');
    // DOWN by its lease, but not declared yet: no reason until the sweeper decides.
    expect(n1).toMatchObject({ status: 'DOWN' });
    expect(n1?.downReason).toBeUndefined();
    expect(await keepalive(c, 'n1')).toMatchObject({ status: 404 });

    const result = await sweepOnce();
    expect(result.down).toBeGreaterThanOrEqual(1);
    const events = await eventsOf(c);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'NODE_DOWN', reason: 'expired', revision: 3, node: { nodeId: 'n1', status: 'DOWN' } });
    expect((await healthy(c)).revision).toBe(3);
    const one = await invokeHttp({ method: 'GET', path: nodePath(c, 'n1') });
    expect(one.json).toMatchObject({ node: { status: 'DOWN', downReason: 'expired', revision: 3 } });
  });

  it('a keepalive racing the sweeper is either accepted (node stays UP) or refused with 404 (node DOWN), never both', async () => {
    const c = cluster();
    const count = 12;
    const ids = Array.from({ length: count }, (_, i) => `n${i}`);
    await Promise.all(ids.map((n) => register(c, n, { leaseSeconds: SHORT_LEASE_SECONDS })));
    // Fire keepalives spread around the moment of expiry (from 300 ms before to 400 ms after) while sweeps run back to back.
    const started = Date.now();
    const expiry = SHORT_LEASE_SECONDS * 1000;
    pass(expiry - 400); // to just before the leases run out; the last 0.4 s around the expiry pass on the real clock
    const keepalives = ids.map(async (n, i) => {
      await sleep(expiry - 300 + i * 60 - (Date.now() - started));
      return { n, status: (await keepalive(c, n)).status };
    });
    // One long-running sweeper, as in the runtime. The sweeps stop before the earliest renewed lease
    // (expiry - 300 ms + the lease) can run out, so every accepted keepalive must still be UP at the end.
    const sweeps = (async () => {
      const state = newSweeperState();
      await sleep(expiry - 100 - (Date.now() - started));
      while (Date.now() - started < expiry + 700) await sweep(table.deps, state);
    })();
    const outcomes = await Promise.all(keepalives);
    await sweeps;
    const all = (await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' } })).json as { nodes: Node[] };
    const statusOf = new Map(all.nodes.map((n) => [n.nodeId, n.status]));
    for (const { n, status } of outcomes) {
      expect([200, 404]).toContain(status);
      expect(statusOf.get(n)).toBe(status === 200 ? 'UP' : 'DOWN');
    }
  });
});

describe('deregister', () => {
  it('marks the node DOWN with reason deregistered, once; a second DELETE is a harmless 204', async () => {
    const c = cluster();
    await register(c, 'n1');
    await stream.mark();
    const res = await invokeHttp({ method: 'DELETE', path: nodePath(c, 'n1') });
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await invokeHttp({ method: 'DELETE', path: nodePath(c, 'n1') })).status).toBe(204);
    expect((await invokeHttp({ method: 'DELETE', path: nodePath(c, 'never') })).status).toBe(204);
    expect((await healthy(c)).nodes).toEqual([]);
    const events = await eventsOf(c);
    expect(events.map((e) => [e.type, e.reason, e.revision])).toEqual([['NODE_DOWN', 'deregistered', 2]]);
  });

  it('refuses a deregister naming an old incarnation', async () => {
    const c = cluster();
    await register(c, 'n1', { incarnation: 7 });
    const res = await invokeHttp({ method: 'DELETE', path: nodePath(c, 'n1'), query: { incarnation: '6' } });
    expect(res.status).toBe(409);
    expect((await healthy(c)).nodes).toHaveLength(1);
  });

  it('brings a deregistered node back with NODE_REGISTERED and 201 (it was not UP) on re-register', async () => {
    const c = cluster();
    await register(c, 'n1');
    await invokeHttp({ method: 'DELETE', path: nodePath(c, 'n1') });
    await stream.mark();
    const res = await register(c, 'n1');
    expect(res.status).toBe(201);
    expect((await eventsOf(c)).map((e) => [e.type, e.revision])).toEqual([['NODE_REGISTERED', 3]]);
  });
});

describe('connection-bound liveness', () => {
  it('cuts the lease of a bound node on disconnect; it goes DOWN (disconnected) after the grace', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: 60 });
    const conn = `conn-${randomUUID()}`;
    expect((await wsConnect(conn, { clusterId: c, nodeId: 'n1' })).statusCode).toBe(200);
    await stream.mark();
    await wsDisconnect(conn);
    expect((await healthy(c)).nodes).toHaveLength(1); // still within the grace
    pastGrace();
    expect((await healthy(c)).nodes).toHaveLength(0);
    await sweepOnce();
    const events = await eventsOf(c);
    expect(events.map((e) => [e.type, e.reason])).toEqual([['NODE_DOWN', 'disconnected']]);
  });

  it('keeps a node UP that keeps alive within the grace', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: 60 });
    const conn = `conn-${randomUUID()}`;
    await wsConnect(conn, { clusterId: c, nodeId: 'n1' });
    await wsDisconnect(conn);
    expect((await keepalive(c, 'n1')).status).toBe(200);
    pastGrace(); // a lease the keepalive did not restore would have run out by now
    await sweepOnce();
    expect((await healthy(c)).nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });

  it('does not cut the lease when a newer connection already bound the node', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: 60 });
    const old = `conn-${randomUUID()}`;
    const fresh = `conn-${randomUUID()}`;
    await wsConnect(old, { clusterId: c, nodeId: 'n1' });
    await wsConnect(fresh, { clusterId: c, nodeId: 'n1' });
    await wsDisconnect(old);
    pastGrace(); // a lease wrongly cut would have run out by now
    expect((await healthy(c)).nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });

  it('binds only the named incarnation: a zombie of an older one gets 409 and cuts nothing', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: 60, incarnation: 1 });
    await register(c, 'n1', { leaseSeconds: 60, incarnation: 2 });
    const zombie = `conn-${randomUUID()}`;
    const res = await wsConnect(zombie, { clusterId: c, nodeId: 'n1', incarnation: '1' });
    expect(res.statusCode).toBe(409);
    expect(JSON.parse(res.body ?? '{}')).toMatchObject({ error: { code: 'STALE_INCARNATION' } });
    const current = `conn-${randomUUID()}`;
    expect((await wsConnect(current, { clusterId: c, nodeId: 'n1', incarnation: '2' })).statusCode).toBe(200);
    await wsDisconnect(zombie);
    pastGrace(); // a lease wrongly cut would have run out by now
    expect((await healthy(c)).nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });

  it('refuses to bind a node that is not registered', async () => {
    const res = await wsConnect(`conn-${randomUUID()}`, { clusterId: cluster(), nodeId: 'ghost' });
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body ?? '{}')).toMatchObject({ error: { code: 'NODE_NOT_FOUND' } });
  });
});

describe('self-preservation', () => {
  it('after the sweeper could not reach the store, expired nodes get one more lease instead of a NODE_DOWN storm', async () => {
    const c = cluster();
    await Promise.all(['a', 'b', 'c'].map((n) => register(c, n, { leaseSeconds: SHORT_LEASE_SECONDS })));
    pastShortLease();
    await stream.mark();
    const state = newSweeperState();
    state.sawStoreFailure = true; // what a failed sweep leaves behind
    const result = await sweep(table.deps, state);
    expect(result.amnesty).toBe(true);
    expect(result.extended).toBeGreaterThanOrEqual(3);
    expect(result.down).toBe(0);
    expect(await eventsOf(c)).toEqual([]);
    expect((await healthy(c)).nodes).toHaveLength(3);
    // The nodes keep alive within the extra lease, as live nodes do.
    for (const n of ['a', 'b', 'c']) expect((await keepalive(c, n)).status).toBe(200);
    expect(state.sawStoreFailure).toBe(false);
  });
});

describe('sweeper heartbeat', () => {
  it('is written by the first sweep of a process and then at most every 10 s', async () => {
    const state = newSweeperState();
    const heartbeats = async () => (await stream.next()).filter((r) => r.dynamodb?.Keys?.pk?.S === 'SWEEPER').length;
    await stream.mark();
    await sweep(table.deps, state);
    expect(await heartbeats()).toBe(1);
    await sweep(table.deps, state);
    await sweep(table.deps, state);
    expect(await heartbeats()).toBe(0);
  });

  it('a process that itself missed the amnesty window sweeps with amnesty, without reading the heartbeat', async () => {
    const c = cluster();
    await register(c, 'n1', { leaseSeconds: SHORT_LEASE_SECONDS });
    pastShortLease();
    const state = newSweeperState();
    state.lastSweepAt = Date.now() - 601_000; // the table was created with a 600 s window
    const result = await sweep(table.deps, state);
    expect(result).toMatchObject({ amnesty: true, down: 0 });
    expect((await healthy(c)).nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });
});

describe('reads', () => {
  it('answers a list request naming the current revision (If-None-Match) with 304 and no body, until the cluster changes', async () => {
    const c = cluster();
    await register(c, 'n1');
    const first = await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' } });
    expect(first.headers.etag).toBe('W/"r1-all"');
    const again = await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' }, headers: { 'if-none-match': 'W/"r1-all"' } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    // A keepalive moves lease times, not the revision: still the same membership.
    await keepalive(c, 'n1');
    expect((await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' }, headers: { 'if-none-match': 'W/"r1-all"' } })).status).toBe(304);
    // The other variant's tag does not match, and a change does not either.
    expect((await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, headers: { 'if-none-match': 'W/"r1-all"' } })).status).toBe(200);
    await register(c, 'n2');
    const changed = await invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, query: { status: 'all' }, headers: { 'if-none-match': 'W/"r1-all"' } });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).toBe('W/"r2-all"');
    expect((changed.json as { nodes: Node[] }).nodes.map((n) => n.nodeId)).toEqual(['n1', 'n2']);
  });

  it('GET one node answers 404 NODE_NOT_FOUND for an unknown node', async () => {
    const res = await invokeHttp({ method: 'GET', path: nodePath(cluster(), 'nope') });
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ error: { code: 'NODE_NOT_FOUND' } });
  });

  it('GET /v1/clusters counts UP and DOWN nodes per cluster', async () => {
    const c = cluster();
    await register(c, 'up1');
    await register(c, 'up2');
    await register(c, 'gone');
    await invokeHttp({ method: 'DELETE', path: nodePath(c, 'gone') });
    const res = await invokeHttp({ method: 'GET', path: '/v1/clusters' });
    expect(res.status).toBe(200);
    const summary = (res.json as { clusters: { clusterId: string }[] }).clusters.find((s) => s.clusterId === c);
    expect(summary).toMatchObject({ clusterId: c, up: 2, down: 1, revision: 4 });
  });

  it('GET /v1/health reports the information center and its sweeper', async () => {
    await sweepOnce();
    const res = await invokeHttp({ method: 'GET', path: '/v1/health' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'ok', sweeper: { lastSweepAt: expect.any(String) } });
  });
});
