/**
 * The lease's clock, on fake timers (in the manner of etcd3's lease tests):
 * each deadline is checked a millisecond before and at the moment it falls.
 * The transport answers from a script, because the faults that drive the
 * schedule (a 500, a 429 with Retry-After, a 404 at the right moment) are
 * what a real server cannot produce on demand; test/client/lease.test.ts
 * runs the same lease against the real local runtime.
 */
import { exponentialBackoff, RosterClientError, type LostEvent, type Node } from '@roster/client';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { Lease, type LeaseTransport } from '../../client/src/lease.ts';
import { nodeRecord } from '../support/nodes.ts';

type Answer = { leaseSeconds: number } | RosterClientError;

const node = (leaseSeconds: number): Node => nodeRecord('c', 'n', 1, { leaseSeconds });

const failure = {
  down: () => new RosterClientError('NETWORK', 'connect ECONNREFUSED 127.0.0.1:1'),
  internal: () => new RosterClientError('INTERNAL', 'internal error', { status: 500 }),
  throttled: (retryAfterMs?: number) => new RosterClientError('THROTTLED', 'busy', { status: 429, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) }),
  notFound: () => new RosterClientError('NODE_NOT_FOUND', 'node c/n is not registered or is down', { status: 404 }),
  stale: () => new RosterClientError('STALE_INCARNATION', 'a newer registration replaced it', { status: 409 }),
  unauthorized: () => new RosterClientError('UNAUTHORIZED', 'the token has expired', { status: 401 }),
};

/** A transport that answers from `script` (the last answer repeats) and notes the time of every request. */
function scripted(script: { register?: Answer[]; keepalive?: Answer[] }) {
  const calls: { kind: 'register' | 'keepalive'; at: number }[] = [];
  const answer = (kind: 'register' | 'keepalive', answers: Answer[]) => async (): Promise<Node> => {
    calls.push({ kind, at: Date.now() });
    const next = answers.length > 1 ? (answers.shift() as Answer) : answers[0];
    if (next === undefined) throw new Error(`no ${kind} answer scripted`);
    if (next instanceof RosterClientError) throw next;
    return node(next.leaseSeconds);
  };
  const transport: LeaseTransport = {
    register: answer('register', script.register ?? [{ leaseSeconds: 15 }]),
    keepalive: answer('keepalive', script.keepalive ?? [{ leaseSeconds: 15 }]),
  };
  return { transport, calls, count: (kind?: 'register' | 'keepalive') => calls.filter((c) => kind === undefined || c.kind === kind).length };
}

/** Backoff without randomness (jitter drawn as 0: the full delay), 200 ms doubling to 1.5 s. */
const steady = exponentialBackoff({ random: () => 0 });

let t0 = 0;
const at = (ms: number) => vi.advanceTimersByTimeAsync(t0 + ms - Date.now());
const leases: Lease[] = [];

function lease(transport: LeaseTransport, options: { leaseSeconds?: number; keepaliveIntervalMs?: number; backoff?: typeof steady } = {}) {
  const l = new Lease({ transport, backoff: options.backoff ?? steady, leaseSeconds: options.leaseSeconds, keepaliveIntervalMs: options.keepaliveIntervalMs });
  const lost: LostEvent[] = [];
  const failures: RosterClientError[] = [];
  l.on('lost', (e) => lost.push(e));
  l.on('keepaliveFailed', (e) => failures.push(e.error));
  leases.push(l);
  return { l, lost, failures };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
  t0 = Date.now();
});

afterEach(async () => {
  for (const l of leases.splice(0)) await l.stop();
  vi.useRealTimers();
});

describe('the keepalive period', () => {
  test('a keepalive every lease/3 after the registration, not a millisecond sooner', async () => {
    const s = scripted({ register: [{ leaseSeconds: 30 }], keepalive: [{ leaseSeconds: 30 }] });
    const { l } = lease(s.transport, { leaseSeconds: 30 });
    await l.ensureRegistered();
    l.start();
    await at(9_999);
    expect(s.count('keepalive')).toBe(0);
    await at(10_000);
    expect(s.count('keepalive')).toBe(1);
    await at(19_999);
    expect(s.count('keepalive')).toBe(1);
    await at(20_000);
    expect(s.count('keepalive')).toBe(2);
    expect(s.count('register')).toBe(1);
  });

  test('the lease the server granted sets the period (a deployment default of 60 s: every 20 s)', async () => {
    const s = scripted({ register: [{ leaseSeconds: 60 }], keepalive: [{ leaseSeconds: 60 }] });
    const { l } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(19_999);
    expect(s.count('keepalive')).toBe(0);
    await at(20_000);
    expect(s.count('keepalive')).toBe(1);
  });

  test('keepaliveIntervalMs overrides the period', async () => {
    const s = scripted({});
    const { l } = lease(s.transport, { keepaliveIntervalMs: 700 });
    await l.ensureRegistered();
    l.start();
    await at(699);
    expect(s.count('keepalive')).toBe(0);
    await at(700);
    expect(s.count('keepalive')).toBe(1);
  });
});

describe('while the information center is unreachable', () => {
  test('a node started without ever registering (from its cache file) retries on the backoff, not every 10 ms', async () => {
    // The lease is given in seconds (30); the old code divided it as if it were milliseconds: a retry every 10 ms.
    const s = scripted({ register: [failure.down()] });
    const { l, failures } = lease(s.transport, { leaseSeconds: 30 });
    l.start();
    await at(0);
    expect(s.count('register')).toBe(1);
    // 200, 400, 800 ms, then 1.5 s apart (the cap).
    for (const [before, after, calls] of [[199, 200, 2], [599, 600, 3], [1_399, 1_400, 4], [2_899, 2_900, 5], [4_399, 4_400, 6]] as const) {
      await at(before);
      expect(s.count('register'), `at ${before} ms`).toBe(calls - 1);
      await at(after);
      expect(s.count('register'), `at ${after} ms`).toBe(calls);
    }
    await at(60_000);
    // Over a minute: 5 requests in the first 4.4 s, then one every 1.5 s — well under one a second.
    expect(s.count()).toBe(6 + Math.floor((60_000 - 4_400) / 1_500));
    expect(failures.every((e) => e.code === 'NETWORK')).toBe(true);
  });

  test('retries are jittered: with random 0.5, each delay is three quarters of the step', async () => {
    const s = scripted({ register: [failure.down()] });
    const { l } = lease(s.transport, { backoff: exponentialBackoff({ random: () => 0.5 }) });
    l.start();
    await at(149);
    expect(s.count()).toBe(1);
    await at(150);
    expect(s.count()).toBe(2);
    await at(150 + 299);
    expect(s.count()).toBe(2);
    await at(150 + 300);
    expect(s.count()).toBe(3);
  });

  test('5xx answers back off exponentially up to the cap; the first success restores the period and resets the backoff', async () => {
    const s = scripted({ keepalive: [{ leaseSeconds: 15 }, failure.internal(), failure.internal(), failure.internal(), failure.internal(), failure.internal(), { leaseSeconds: 15 }, failure.internal(), { leaseSeconds: 15 }] });
    const { l, failures } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(5_000); // the first keepalive: fine
    expect(s.count('keepalive')).toBe(1);
    await at(10_000); // the second fails: 500
    const times = [10_000 + 200, 10_000 + 600, 10_000 + 1_400, 10_000 + 2_900, 10_000 + 4_400];
    for (const t of times) {
      await at(t - 1);
      const before = s.count('keepalive');
      await at(t);
      expect(s.count('keepalive'), `at ${t} ms`).toBe(before + 1);
    }
    expect(failures.map((e) => e.code)).toEqual(['INTERNAL', 'INTERNAL', 'INTERNAL', 'INTERNAL', 'INTERNAL']);
    // The retry at 14.4 s succeeded: the next keepalive is a full period later; its failure starts the backoff at 200 ms again.
    await at(14_400 + 4_999);
    expect(s.count('keepalive')).toBe(7);
    await at(14_400 + 5_000);
    expect(s.count('keepalive')).toBe(8);
    await at(14_400 + 5_199);
    expect(s.count('keepalive')).toBe(8);
    await at(14_400 + 5_200);
    expect(s.count('keepalive')).toBe(9);
  });

  test('retries never come sooner than the period, and a 429 waits at least as long as its Retry-After', async () => {
    const s = scripted({ keepalive: [failure.throttled(3_000), failure.throttled(), { leaseSeconds: 3 }] });
    const { l } = lease(s.transport, { keepaliveIntervalMs: 1_000 });
    await l.ensureRegistered();
    l.start();
    await at(1_000);
    expect(s.count('keepalive')).toBe(1);
    // Retry-After: 3 s, though the backoff (200 ms) and the period (1 s) are shorter.
    await at(3_999);
    expect(s.count('keepalive')).toBe(1);
    await at(4_000);
    expect(s.count('keepalive')).toBe(2);
    // A 429 without Retry-After: the backoff's second step, 400 ms.
    await at(4_399);
    expect(s.count('keepalive')).toBe(2);
    await at(4_400);
    expect(s.count('keepalive')).toBe(3);
  });

  test('the backoff is capped at the period: with a 1 s period, a long outage retries every second', async () => {
    const s = scripted({ keepalive: [{ leaseSeconds: 3 }, failure.down()] });
    const { l } = lease(s.transport, { keepaliveIntervalMs: 1_000 });
    await l.ensureRegistered();
    l.start();
    await at(2_000); // ok at 1 s, first failure at 2 s
    await at(2_000 + 200 + 400 + 800); // 200, 400, then min(800, 1000)
    const before = s.count();
    await at(3_400 + 999);
    expect(s.count()).toBe(before);
    await at(3_400 + 1_000);
    expect(s.count()).toBe(before + 1);
  });
});

describe('answers that change the lease', () => {
  test('404 on a keepalive: registers again at once, then keeps alive on the period', async () => {
    const s = scripted({ keepalive: [failure.notFound(), { leaseSeconds: 15 }] });
    const { l, failures, lost } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(5_001);
    expect(failures.map((e) => e.code)).toEqual(['NODE_NOT_FOUND']);
    // At once: Node's shortest timer, 1 ms.
    expect(s.calls.map((c) => `${c.kind}@${c.at - t0}`)).toEqual(['register@0', 'keepalive@5000', 'register@5001']);
    await at(10_000);
    expect(s.count('keepalive')).toBe(1);
    await at(10_001);
    expect(s.count('keepalive')).toBe(2);
    expect(lost).toEqual([]);
    expect(l.registrations).toBe(2);
  });

  test('409 on a keepalive: lost (superseded) once, and never another request', async () => {
    const s = scripted({ keepalive: [failure.stale()] });
    const { l, lost } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(5_000);
    expect(lost).toEqual([expect.objectContaining({ reason: 'superseded', error: expect.objectContaining({ code: 'STALE_INCARNATION' }) })]);
    await at(5 * 60_000);
    expect(s.count()).toBe(2);
    expect(l.state).toBe('superseded');
    await expect(l.ensureRegistered()).rejects.toMatchObject({ code: 'STALE_INCARNATION' });
  });

  test('401 on a keepalive: lost (unauthorized), and no more keepalives', async () => {
    const s = scripted({ keepalive: [failure.unauthorized()] });
    const { l, lost } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(5_000);
    expect(lost.map((e) => e.reason)).toEqual(['unauthorized']);
    await at(60_000);
    expect(s.count()).toBe(2);
  });
});

describe('the lost moment', () => {
  test('lost (expired) exactly one lease after the last renewal — not at the first failed keepalive — once, then it registers anew', async () => {
    // The server answers until 7 s and from 60 s on.
    const up = () => Date.now() - t0 < 7_000 || Date.now() - t0 >= 60_000;
    const calls: string[] = [];
    const transport: LeaseTransport = {
      register: () => (calls.push(`register@${Date.now() - t0}`), up() ? Promise.resolve(node(15)) : Promise.reject(failure.down())),
      keepalive: () => (calls.push(`keepalive@${Date.now() - t0}`), up() ? Promise.resolve(node(15)) : Promise.reject(failure.down())),
    };
    const { l, lost, failures } = lease(transport);
    await l.ensureRegistered();
    l.start();
    await at(5_000); // the last renewal
    await at(10_000); // the first failure
    expect(failures).toHaveLength(1);
    expect(lost).toEqual([]);
    await at(5_000 + 15_000 - 1);
    expect(lost).toEqual([]);
    await at(5_000 + 15_000);
    expect(lost).toEqual([{ type: 'lost', reason: 'expired' }]);
    expect(l.registered).toBe(false);
    // Once per lease: the outage goes on, and the retries are registrations now, not keepalives.
    await at(59_999);
    expect(lost).toHaveLength(1);
    const afterLost = calls.filter((c) => Number(c.split('@')[1]) > 20_000);
    expect(afterLost.length).toBeGreaterThan(20);
    expect(afterLost.every((c) => c.startsWith('register@'))).toBe(true);
    // The server is back: registered again at the next retry, within the backoff's cap.
    await at(60_000 + 1_500);
    expect(l.registered).toBe(true);
    expect(l.registrations).toBe(2);
  });

  test('a renewal by something else (a bound WebSocket connect) restarts the clock', async () => {
    const s = scripted({ keepalive: [failure.down()] });
    const { l, lost } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(12_000);
    l.renewed();
    await at(12_000 + 15_000 - 1);
    expect(lost).toEqual([]);
    await at(12_000 + 15_000);
    expect(lost.map((e) => e.reason)).toEqual(['expired']);
  });

  test('after stop(), nothing: no request, no lost', async () => {
    const s = scripted({ keepalive: [failure.down()] });
    const { l, lost } = lease(s.transport);
    await l.ensureRegistered();
    l.start();
    await at(5_000);
    await l.stop();
    const before = s.count();
    await at(120_000);
    expect(s.count()).toBe(before);
    expect(lost).toEqual([]);
    await expect(l.ensureRegistered()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
