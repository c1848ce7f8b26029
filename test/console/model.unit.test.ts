/**
 * The console's cache rules (console/src/model.ts), its server clock and
 * lease countdown (console/src/time.ts): pure code, no browser.
 */
import { describe, expect, test } from 'vitest';
import { GAP_WAIT_MS, type MembershipEvent, type Node } from '@roster/contract';
import { ClusterDirectory, ClusterTable, isClusterList } from '../../console/src/model.ts';
import { ServerClock, describeLease, formatDuration } from '../../console/src/time.ts';
import { eventOf, nodeRecord } from '../support/nodes.ts';

const T = '2026-11-25T12:00:00.000Z';

function node(nodeId: string, revision: number, status: 'UP' | 'DOWN' = 'UP', extra: Partial<Node> = {}): Node {
  const times = { registeredAt: T, lastKeepaliveAt: T, expiresAt: T };
  return nodeRecord('c', nodeId, revision, { status, ...times, ...(status === 'DOWN' ? { downReason: 'disconnected' as const } : {}), ...extra });
}

const event = (n: Node, at = T): MembershipEvent => eventOf(n, undefined, at);

const statuses = (t: ClusterTable) => t.nodes().map((n) => `${n.nodeId}:${n.status}@${n.revision}`);

describe('ClusterTable (the SDK rules, DOWN records kept)', () => {
  test('keeps DOWN nodes with their reason, and applies a state only if its revision is higher', () => {
    const t = new ClusterTable('c');
    t.applySnapshot({ clusterId: 'c', revision: 2, nodes: [node('a', 1), node('b', 2)] });
    expect(t.applyEvent(event(node('a', 3, 'DOWN')))).toEqual({ applied: true, gap: false });
    // A duplicate and an older state are ignored.
    expect(t.applyEvent(event(node('a', 3, 'DOWN')))).toEqual({ applied: false, gap: false });
    expect(t.applyEvent(event(node('a', 1)))).toEqual({ applied: false, gap: false });
    expect(statuses(t)).toEqual(['a:DOWN@3', 'b:UP@2']);
    expect(t.get('a')?.downReason).toBe('disconnected');
    expect(t.counts()).toEqual({ up: 1, down: 1 });
  });

  test('reports a gap when a revision an event skipped is still missing after the wait', () => {
    let now = 0;
    const t = new ClusterTable('c', { now: () => now });
    t.applySnapshot({ clusterId: 'c', revision: 2, nodes: [] });
    expect(t.applyEvent(event(node('a', 3))).gap).toBe(false);
    expect(t.applyEvent(event(node('b', 5))).gap).toBe(false); // 4 may be late
    expect(t.revision).toBe(5);
    now = GAP_WAIT_MS - 1;
    expect(t.checkGap()).toBe(false);
    now = GAP_WAIT_MS;
    expect(t.checkGap()).toBe(true);
  });

  test('applies the events that arrived during the fetch on top of the list, and never lets the list undo them', () => {
    const t = new ClusterTable('c');
    t.applySnapshot({ clusterId: 'c', revision: 1, nodes: [node('a', 1)] });
    t.beginSnapshot();
    // While the list is fetched, a goes DOWN and b registers; the list was read before both.
    t.applyEvent(event(node('a', 2, 'DOWN')));
    t.applyEvent(event(node('b', 3)));
    const { changed, reset } = t.applySnapshot({ clusterId: 'c', revision: 1, nodes: [node('a', 1), node('old', 1, 'DOWN')] });
    expect(reset).toBe(false);
    expect(statuses(t)).toEqual(['a:DOWN@2', 'b:UP@3', 'old:DOWN@1']);
    expect(changed.sort()).toEqual(['old']);
    expect(t.revision).toBe(3);
  });

  test('drops records the list no longer has, and keeps the table when a fetch fails', () => {
    const t = new ClusterTable('c');
    t.applySnapshot({ clusterId: 'c', revision: 3, nodes: [node('a', 1), node('b', 3, 'DOWN')] });
    t.beginSnapshot();
    t.cancelSnapshot();
    expect(statuses(t)).toEqual(['a:UP@1', 'b:DOWN@3']);
    expect(t.applySnapshot({ clusterId: 'c', revision: 3, nodes: [node('a', 1)] }).changed).toEqual(['b']);
    expect(statuses(t)).toEqual(['a:UP@1']);
  });

  test('replaces everything when the server\'s revision went backwards (it lost its state)', () => {
    const t = new ClusterTable('c');
    t.applySnapshot({ clusterId: 'c', revision: 40, nodes: [node('a', 40)] });
    t.beginSnapshot();
    const { reset } = t.applySnapshot({ clusterId: 'c', revision: 2, nodes: [node('a', 1), node('b', 2)] });
    expect(reset).toBe(true);
    expect(statuses(t)).toEqual(['a:UP@1', 'b:UP@2']);
    expect(t.revision).toBe(2);
    // And the next event is compared with the new numbering.
    expect(t.applyEvent(event(node('a', 3, 'DOWN')))).toEqual({ applied: true, gap: false });
  });

  test('takes an UP record the list shows DOWN (lease past, not yet swept) as the server says it', () => {
    const t = new ClusterTable('c');
    t.applySnapshot({ clusterId: 'c', revision: 1, nodes: [node('a', 1)] });
    t.beginSnapshot();
    t.applySnapshot({ clusterId: 'c', revision: 1, nodes: [node('a', 1, 'DOWN', { downReason: 'expired' })] });
    expect(statuses(t)).toEqual(['a:DOWN@1']);
  });

  test('ignores events of other clusters', () => {
    const t = new ClusterTable('c');
    expect(t.applyEvent({ ...event(node('a', 1)), clusterId: 'other' })).toEqual({ applied: false, gap: false });
    expect(t.nodes()).toEqual([]);
  });
});

describe('ClusterDirectory', () => {
  const summary = (clusterId: string, revision: number) => ({ clusterId, up: 1, down: 0, revision, lastEventAt: T });

  test('updates revision and last event time from events at once, and asks again when the list is older than an event', () => {
    const d = new ClusterDirectory();
    expect(d.replace([summary('b', 1), summary('a', 4)])).toBe(false);
    expect(d.list().map((c) => c.clusterId)).toEqual(['a', 'b']);
    expect(d.noteEvent(event({ ...node('x', 5), clusterId: 'a' }, '2026-11-25T12:00:05.000Z'))).toBe(true);
    expect(d.get('a')).toMatchObject({ revision: 5, lastEventAt: '2026-11-25T12:00:05.000Z' });
    // A duplicate is not news.
    expect(d.noteEvent(event({ ...node('x', 5), clusterId: 'a' }))).toBe(false);
    // A list read before that event is behind it.
    expect(d.replace([summary('a', 4)])).toBe(true);
    expect(d.get('a')?.revision).toBe(5);
    expect(d.replace([summary('a', 5)])).toBe(false);
    d.forgetSeen();
    expect(d.replace([summary('a', 1)])).toBe(false);
  });

  test('checks the shape of GET /v1/clusters', () => {
    expect(isClusterList({ clusters: [summary('a', 1), { clusterId: 'b', up: 0, down: 2, revision: 3 }] })).toBe(true);
    expect(isClusterList({ clusters: [{ clusterId: 'a', up: '1', down: 0, revision: 1 }] })).toBe(false);
    expect(isClusterList({})).toBe(false);
  });
});

describe('ServerClock and the lease countdown', () => {
  test('estimates the offset from Date headers and never puts the server before an event it stamped', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    // The server is 10 s ahead: its Date header says local + 10 s (whole seconds).
    clock.sampleDate(new Date(Math.floor((local + 10_000) / 1000) * 1000).toUTCString(), local - 20, local);
    expect(Math.abs(clock.offset - 10_000)).toBeLessThanOrEqual(600);
    // An event stamped 12 s ahead of our clock: the server is at least that far ahead.
    clock.sampleEvent(new Date(local + 12_000).toISOString());
    expect(clock.offset).toBeGreaterThanOrEqual(12_000);
    local += 5000;
    expect(clock.now()).toBeGreaterThanOrEqual(local + 12_000);
    clock.sampleDate(null, 0, 0);
    clock.sampleDate('not a date', 0, 0);
    expect(clock.offset).toBeGreaterThanOrEqual(12_000);
  });

  test('describes a lease as a lower bound, and a passed one as unconfirmed (never as DOWN)', () => {
    expect(describeLease(61_000, 0)).toEqual({ text: '≥ 1 min 01 s', overdue: false });
    expect(describeLease(1_000, 4_000)).toEqual({ text: 'renewal unconfirmed (3 s)', overdue: true });
    expect(describeLease(Number.NaN, 0)).toEqual({ text: '—', overdue: false });
    expect(formatDuration(500)).toBe('0 s');
    expect(formatDuration(3 * 3600_000 + 5 * 60_000)).toBe('3 h 05 min');
    expect(formatDuration(50 * 3600_000)).toBe('2 d 2 h');
  });
});
