/**
 * The robustness checker on small hand-written histories: each invariant
 * holds on a history that keeps it and reports the violation (with its first
 * example) on one that breaks it — so a green robustness run means something.
 */
import { describe, expect, test } from 'vitest';
import { check, type CheckSettings } from '../../robustness/checker.ts';
import type { HistoryRecord, NodeSnap } from '../../robustness/history.ts';

const SETTINGS: CheckSettings = { graceMs: 2000, sweepMs: 1000, deliveryMs: 1000, refreshMs: 4000, marginMs: 1000 };
const T = 1_000_000;
const LEASE = 3000;
const INC = 7;

const up = (rev: number, exp: number, inc = INC, meta?: string): NodeSnap => ({ id: 'n0', st: 'UP', rev, inc, exp, ...(meta ? { meta } : {}) });
const downSnap = (rev: number, exp: number, why = 'expired'): NodeSnap => ({ id: 'n0', st: 'DOWN', rev, inc: INC, exp, why });

/** A node n0 (lease 3 s) that keeps alive every second from T to `until`, and a watcher w0 that lists it. */
function healthyRun(until: number, options: { keepalive?: (t: number) => number | 'NETWORK' } = {}): HistoryRecord[] {
  const records: HistoryRecord[] = [
    { k: 'act', t: T - 2000, op: 'spawn', on: 'n0.1', node: 'n0', inc: INC, ms: LEASE },
    { k: 'act', t: T - 2000, op: 'spawn', on: 'w0.1' },
    { k: 'req', t: T - 1000, t0: T - 1100, c: 'n0.1', m: 'PUT', p: '/v1/clusters/c/nodes/n0', st: 201, n: up(1, T - 1100 + LEASE) },
    { k: 'proc', t: T - 900, c: 'n0.1', what: 'ready' },
    { k: 'proc', t: T - 900, c: 'w0.1', what: 'ready' },
    { k: 'cache', t: T - 900, c: 'w0.1', rev: 1, nodes: [up(1, T + 2000)] },
  ];
  for (let t = T; t <= until; t += 1000) {
    const st = options.keepalive?.(t) ?? 200;
    records.push({ k: 'req', t: t + 20, t0: t, c: 'n0.1', m: 'POST', p: '/v1/clusters/c/nodes/n0/keepalive', st, ...(st === 200 ? { n: up(1, t + LEASE) } : {}) });
  }
  return records;
}

const result = (records: HistoryRecord[], n: number) => check(records.sort((a, b) => a.t - b.t), SETTINGS).invariants[n - 1];

describe('1. no false DOWN', () => {
  test('a DOWN event for a node whose keepalives were all acknowledged is a violation', () => {
    const records = healthyRun(T + 10_000);
    records.push({ k: 'ev', t: T + 5500, c: 'w0.1', type: 'down', src: 'event', n: downSnap(2, T + 5000) });
    const inv = result(records, 1);
    expect(inv?.violations).toBe(1);
    expect(inv?.first?.what).toMatch(/w0\.1's SDK \(down, event\) reported n0#7 DOWN .* alive with every keepalive acknowledged/);
  });

  test('the same DOWN after the node crashed is no violation', () => {
    const records = healthyRun(T + 4000);
    records.push({ k: 'act', t: T + 4100, op: 'crash', on: 'n0.1' });
    records.push({ k: 'ev', t: T + 8000, c: 'w0.1', type: 'down', src: 'event', n: downSnap(2, T + 7000) });
    expect(result(records, 1)?.violations).toBe(0);
  });

  test('a keepalive that came too late leaves the node unprotected', () => {
    // Keepalives stop answering from T+3000 on (the node's own requests time out): its lease ends at T+5000.
    const records = healthyRun(T + 10_000, { keepalive: (t) => (t >= T + 3000 ? 'NETWORK' : 200) });
    records.push({ k: 'ev', t: T + 6500, c: 'w0.1', type: 'down', src: 'event', n: downSnap(2, T + 5000) });
    expect(result(records, 1)?.violations).toBe(0);
  });

  test('a deregistration nobody sent is a violation; one the node sent is not', () => {
    const records = healthyRun(T + 10_000);
    records.push({ k: 'ev', t: T + 5500, c: 'w0.1', type: 'down', src: 'event', n: downSnap(2, T + 5400, 'deregistered') });
    expect(result([...records], 1)?.violations).toBe(1);
    records.push({ k: 'req', t: T + 5300, t0: T + 5200, c: 'n0.1', m: 'DELETE', p: '/v1/clusters/c/nodes/n0?incarnation=7', st: 204 });
    expect(result(records, 1)?.violations).toBe(0);
  });

  test('through a store outage: a list read may show the node lapsed, the SDK may not report it down', () => {
    // The store is out from T+2500 to T+8000; keepalives fail meanwhile; the lease ran out at T+5000.
    const outage = (t: number) => (t > T + 2500 && t < T + 8000 ? 500 : 200);
    const records = healthyRun(T + 12_000, { keepalive: (t) => outage(t) });
    records.push({ k: 'act', t: T + 2500, op: 'store-pause', on: 'store' }, { k: 'act', t: T + 8000, op: 'store-resume', on: 'store' });
    records.push({ k: 'req', t: T + 8200, t0: T + 8100, c: 'w0.1', m: 'GET', p: '/v1/clusters/c/nodes?status=all', st: 200, list: { rev: 1, nodes: [downSnap(1, T + 5000)] } });
    const listOnly = result([...records], 1);
    expect(listOnly?.violations).toBe(0);
    expect(listOnly?.excused?.count).toBe(1);
    records.push({ k: 'ev', t: T + 8250, c: 'w0.1', type: 'down', src: 'sync', n: downSnap(1, T + 5000) });
    const told = result(records, 1);
    expect(told?.violations).toBe(1);
    expect(told?.first?.what).toMatch(/cut off from the information center by an outage/);
  });

  test('through a store outage the sweeper was stalled through, a DOWN is the documented exception (seed 2006)', () => {
    const outage = (t: number) => (t > T + 2500 && t < T + 8000 ? 500 : 200);
    const records = healthyRun(T + 12_000, { keepalive: (t) => outage(t) });
    records.push({ k: 'act', t: T + 2500, op: 'store-pause', on: 'store' }, { k: 'act', t: T + 8000, op: 'store-resume', on: 'store' });
    records.push({ k: 'ev', t: T + 8250, c: 'w0.1', type: 'down', src: 'event', n: downSnap(1, T + 5000) });
    expect(result([...records], 1)?.violations).toBe(1);
    // The sweeper stalled from before the outage to after it: it could not see the outage, no amnesty follows.
    const stalled: HistoryRecord = { k: 'act', t: T + 2000, op: 'sweeper-stall', on: 'sweeper', ms: 6500 };
    expect(result([...records, stalled], 1)?.violations).toBe(0);
  });

  test('a cache that drops a protected node without a down event is a violation', () => {
    const records = healthyRun(T + 10_000);
    records.push({ k: 'cache', t: T + 5000, c: 'w0.1', rev: 2, nodes: [] });
    expect(result(records, 1)?.first?.what).toMatch(/w0\.1's cache \(change\)/);
  });
});

describe('2. detection', () => {
  const crashed = (goneAt: number | undefined): HistoryRecord[] => {
    const records = healthyRun(T + 3000);
    records.push({ k: 'act', t: T + 3100, op: 'crash', on: 'n0.1' });
    if (goneAt !== undefined) records.push({ k: 'cache', t: goneAt, c: 'w0.1', rev: 2, nodes: [] });
    // The run went on long enough for every deadline to be checked.
    records.push({ k: 'act', t: T + 60_000, op: 'end', on: 'all' });
    return records;
  };

  test('a watcher that drops a crashed node within grace + sweep + delivery passes, and the time is measured', () => {
    const report = check(crashed(T + 3100 + 2600).sort((a, b) => a.t - b.t), SETTINGS);
    expect(report.invariants[1]?.violations).toBe(0);
    expect(report.invariants[1]?.checked).toBe(1);
    expect(report.detection.crash).toMatchObject({ count: 1, max: 2600 });
  });

  test('a watcher that still lists it past the bound is a violation', () => {
    const inv = result(crashed(T + 3100 + 9000), 2);
    expect(inv?.violations).toBe(1);
    expect(inv?.first?.what).toMatch(/w0\.1 still listed n0#7 .* after its crash/);
  });

  test('a stalled sweeper extends the bound', () => {
    const records = crashed(T + 3100 + 7000);
    records.push({ k: 'act', t: T + 3500, op: 'sweeper-stall', on: 'sweeper', ms: 4000 });
    expect(result(records, 2)?.violations).toBe(0);
  });
});

describe('3. convergence', () => {
  const quiet = (watcherCache: NodeSnap[], at: number): HistoryRecord[] => {
    const records = healthyRun(T + 20_000);
    records.push({ k: 'act', t: T + 10_000, op: 'heal', on: 'all' });
    for (let t = T + 10_000; t <= T + 20_000; t += 500) {
      records.push({ k: 'req', t: t + 10, t0: t, c: 'harness', m: 'GET', p: '/v1/clusters/c/nodes?status=all', st: 200, list: { rev: 3, nodes: [up(3, t + 2000, INC, '{"v":"2"}')] } });
    }
    records.push({ k: 'cache', t: at, c: 'w0.1', rev: 3, nodes: watcherCache });
    records.push({ k: 'cache', t: T + 10_500, c: 'n0.1', rev: 3, nodes: [up(3, 0, INC, '{"v":"2"}')] });
    return records;
  };

  test('a cache equal to the server list soon after the faults stop passes', () => {
    expect(result(quiet([up(3, 0, INC, '{"v":"2"}')], T + 11_000), 3)).toMatchObject({ violations: 0, checked: 2 });
  });

  test('a cache that never equals it, or only late, is a violation', () => {
    expect(result(quiet([up(2, 0, INC, '{"v":"1"}')], T + 11_000), 3)?.first?.what).toMatch(/w0\.1 never converged/);
    expect(result(quiet([up(3, 0, INC, '{"v":"2"}')], T + 19_000), 3)?.first?.what).toMatch(/w0\.1 took 9000 ms to converge/);
  });
});

test('4. order: a revision that goes back is a violation', () => {
  const records = healthyRun(T + 5000);
  records.push({ k: 'ev', t: T + 1000, c: 'w0.1', type: 'updated', src: 'event', n: up(5, T + 4000) });
  records.push({ k: 'ev', t: T + 2000, c: 'w0.1', type: 'updated', src: 'event', n: up(4, T + 4000) });
  expect(result(records, 4)?.first?.what).toMatch(/w0\.1 reported updated n0#7 at rev 4 after rev 5/);
});

describe('5. durability', () => {
  const list = (t: number, nodes: NodeSnap[], rev = 5): HistoryRecord => ({ k: 'req', t: t + 10, t0: t, c: 'w0.1', m: 'GET', p: '/v1/clusters/c/nodes?status=all', st: 200, list: { rev, nodes } });

  test('a registration acknowledged before a read must be in it', () => {
    const records = healthyRun(T + 5000);
    records.push({ k: 'req', t: T + 2000, t0: T + 1900, c: 'n0.1', m: 'PUT', p: '/v1/clusters/c/nodes/n0', st: 200, n: up(5, T + 4900, INC, '{"v":"2"}') });
    expect(result([...records, list(T + 3000, [up(5, T + 4900, INC, '{"v":"2"}')])], 5)?.violations).toBe(0);
    expect(result([...records, list(T + 3000, [up(4, T + 4900, INC, '{"v":"1"}')])], 5)?.first?.what).toMatch(/shows n0 as n0#7 rev 4/);
    expect(result([...records, list(T + 3000, [up(5, T + 4900, INC, '{"v":"1"}')], 5)], 5)?.violations).toBe(1);
    expect(result([...records, list(T + 3000, [up(5, T + 4900, INC, '{"v":"2"}')], 4)], 5)?.first?.what).toMatch(/cluster revision 4, below 5/);
  });

  test('an acknowledged deregistration must show as DOWN unless the node registered again', () => {
    const records = healthyRun(T + 2000);
    records.push({ k: 'req', t: T + 2500, t0: T + 2400, c: 'n0.1', m: 'DELETE', p: '/v1/clusters/c/nodes/n0?incarnation=7', st: 204 });
    expect(result([...records, list(T + 3000, [up(1, T + 4900)], 1)], 5)?.first?.what).toMatch(/shows n0 UP after its deregistration/);
    expect(result([...records, list(T + 3000, [downSnap(2, T + 2400, 'deregistered')], 2)], 5)?.violations).toBe(0);
  });

  test('a registration that a killed process may have had in flight counts, although it never recorded it (seed 2003)', () => {
    const records = healthyRun(T + 2000);
    records.push({ k: 'req', t: T + 2500, t0: T + 2400, c: 'n0.1', m: 'DELETE', p: '/v1/clusters/c/nodes/n0?incarnation=7', st: 204 });
    records.push({ k: 'act', t: T + 2600, op: 'spawn', on: 'n0.2', node: 'n0', inc: 8, ms: LEASE });
    const killed = { k: 'act', t: T + 2900, op: 'crash', on: 'n0.2' } as const;
    expect(result([...records, killed, list(T + 3000, [up(3, T + 5500, 8)], 3)], 5)?.violations).toBe(0);
    // Alive and silent, it would have recorded its registration: the read is then a violation.
    expect(result([...records, list(T + 3000, [up(3, T + 5500, 8)], 3)], 5)?.violations).toBe(1);
  });
});

describe('6. no 5xx', () => {
  const failed = (t: number, code: string, contract: boolean): HistoryRecord => ({
    k: 'req',
    t: t + 10,
    t0: t,
    c: 'n0.1',
    m: 'POST',
    p: '/v1/clusters/c/nodes/n0/keepalive',
    st: 500,
    err: { code, contract },
  });

  test("a 500 while the store is up is a violation; the contract's 500 during a store outage is not", () => {
    const records = healthyRun(T + 2000);
    records.push({ k: 'act', t: T + 5000, op: 'store-kill', on: 'store' }, { k: 'act', t: T + 9000, op: 'store-up', on: 'store' });
    expect(result([...records, failed(T + 6000, 'INTERNAL', true)], 6)?.violations).toBe(0);
    expect(result([...records, failed(T + 6000, '(none)', false)], 6)?.first?.what).toMatch(/not the contract's error/);
    expect(result([...records, failed(T + 12_000, 'INTERNAL', true)], 6)?.first?.what).toMatch(/while the store was up/);
  });
});
