/**
 * The cache's revision rules (client/cache.ts), case by case. Orderings that
 * the real server produces only by chance (an event overtaking the list
 * response, a revision lost to a race) are built here on purpose.
 */
import { describe, expect, it } from 'vitest';
import { ClusterCache } from '../../client/src/cache.ts';
import type { MembershipEvent, Node, NodeList } from '@roster/client';
import { eventOf, nodeRecord } from '../support/nodes.ts';

const CLUSTER = 'c1';

const node = (nodeId: string, revision: number, extra: Partial<Node> = {}): Node => nodeRecord(CLUSTER, nodeId, revision, extra);
const event = (type: MembershipEvent['type'], n: Node): MembershipEvent => eventOf(n, type);

const up = (id: string, rev: number, extra: Partial<Node> = {}) => event('NODE_REGISTERED', node(id, rev, extra));
const down = (id: string, rev: number, reason: Node['downReason'] = 'expired') =>
  event('NODE_DOWN', node(id, rev, { status: 'DOWN', downReason: reason }));
const list = (revision: number, nodes: Node[]): NodeList => ({ clusterId: CLUSTER, revision, nodes });
const healthy = (cache: ClusterCache) => cache.nodes().map((n) => `${n.nodeId}@${n.revision}`);

/** A cache with a first view of `nodes` at `revision`. */
function seeded(revision: number, nodes: Node[]): ClusterCache {
  const cache = new ClusterCache(CLUSTER);
  cache.beginSnapshot();
  cache.applySnapshot(list(revision, nodes));
  return cache;
}

describe('ClusterCache', () => {
  it('applies an event only when it is newer than what is known of its node', () => {
    const cache = seeded(3, [node('a', 3)]);
    expect(cache.applyEvent(up('a', 3)).applied).toBe(false); // duplicate
    expect(cache.applyEvent(down('a', 5)).applied).toBe(true);
    expect(cache.applyEvent(up('a', 4)).applied).toBe(false); // older than the DOWN: the tombstone wins
    expect(healthy(cache)).toEqual([]);
    expect(cache.applyEvent(up('a', 6)).change).toMatchObject({ type: 'registered', revision: 6 });
    expect(healthy(cache)).toEqual(['a@6']);
  });

  it('accepts events of different nodes out of order; a skipped revision still missing after the wait is a gap', () => {
    let now = 0;
    const cache = new ClusterCache(CLUSTER, { gapWaitMs: 1_000, now: () => now });
    cache.beginSnapshot();
    cache.applySnapshot(list(10, []));
    expect(cache.applyEvent(up('b', 11)).gap).toBe(false);
    const jump = cache.applyEvent(up('c', 13)); // 12 not seen yet: late, not yet a gap
    expect(jump).toMatchObject({ applied: true, gap: false });
    expect(cache.complete).toBe(11);
    now = 999;
    const late = cache.applyEvent(up('d', 12)); // the late one applies within the wait: no gap, no resync
    expect(late).toMatchObject({ applied: true, gap: false });
    expect(cache.complete).toBe(13);
    expect(healthy(cache)).toEqual(['b@11', 'c@13', 'd@12']);
    expect(cache.revision).toBe(13);

    cache.applyEvent(up('f', 15)); // 14 missing from now
    now += 1_000;
    expect(cache.checkGap()).toBe(true);
    expect(cache.checkGap()).toBe(false);
  });

  it('reports no per-node changes before the first view, then the first view at once', () => {
    const cache = new ClusterCache(CLUSTER);
    expect(cache.applyEvent(up('a', 1)).change).toBeUndefined();
    cache.beginSnapshot();
    expect(cache.applySnapshot(list(1, [node('a', 1)]))).toEqual({ changes: [], changed: true, reset: false });
  });

  it('replaces the cache with the list, keeping DOWN revisions as tombstones', () => {
    const cache = seeded(5, [node('a', 2), node('b', 5)]);
    cache.beginSnapshot();
    const outcome = cache.applySnapshot(list(9, [node('a', 2), node('b', 9, { status: 'DOWN', downReason: 'expired' }), node('c', 8)]));
    expect(healthy(cache)).toEqual(['a@2', 'c@8']);
    expect(outcome.changes).toEqual([
      expect.objectContaining({ type: 'down', reason: 'expired', revision: 9 }),
      expect.objectContaining({ type: 'registered', revision: 8 }),
    ]);
    // b's DOWN at 9 is remembered: a stale redelivery of its registration is ignored.
    expect(cache.applyEvent(up('b', 5)).applied).toBe(false);
    expect(healthy(cache)).toEqual(['a@2', 'c@8']);
  });

  it('re-applies events that arrived during the fetch, so a state newer than the list survives', () => {
    const cache = seeded(5, [node('a', 5)]);
    cache.beginSnapshot();
    cache.applyEvent(down('a', 7)); // arrives while the list (read at revision 6) is on its way
    cache.applySnapshot(list(6, [node('a', 5)]));
    expect(healthy(cache)).toEqual([]);
    expect(cache.revision).toBe(7);
  });

  it('keeps a node whose write was in flight when the list was read, although its revision is below the list revision', () => {
    // The writer took revision 8, the list read META (8) and then the nodes before the write landed;
    // the event for 8 overtook the list response.
    const cache = seeded(7, []);
    cache.beginSnapshot();
    cache.applyEvent(up('late', 8));
    cache.applySnapshot(list(8, []));
    expect(healthy(cache)).toEqual(['late@8']);
  });

  it('keeps a node the list shows DOWN without a reason: its lease ran out, nobody declared it down (rule 5)', () => {
    // The store was out longer than b's lease: reads show b DOWN, without a reason, until the sweeper's
    // amnesty gives it one more lease (a higher revision, and no event) or declares it down.
    const lapsed = (id: string, rev: number, extra: Partial<Node> = {}): Node => {
      const record = node(id, rev, { status: 'DOWN', ...extra });
      delete record.downReason;
      return record;
    };
    const cache = seeded(5, [node('a', 2), node('b', 5)]);
    cache.beginSnapshot();
    const outcome = cache.applySnapshot(list(6, [node('a', 2), lapsed('b', 5), node('c', 6)]));
    expect(healthy(cache)).toEqual(['a@2', 'b@5', 'c@6']);
    expect(outcome.changes.map((c) => `${c.type}:${c.node.nodeId}`)).toEqual(['registered:c']);
    // The extension takes a revision but changes nothing a user sees: no event either.
    cache.beginSnapshot();
    expect(cache.applySnapshot(list(7, [node('a', 2), node('b', 7), node('c', 6)])).changes).toEqual([]);
    expect(healthy(cache)).toEqual(['a@2', 'b@7', 'c@6']);
    // A change missed meanwhile is still seen: the lapsed record is that node's state at its revision.
    cache.beginSnapshot();
    const missed = cache.applySnapshot(list(9, [node('a', 2), lapsed('b', 9, { metadata: { v: '2' } }), node('c', 6)]));
    expect(missed.changes.map((c) => `${c.type}:${c.node.nodeId}`)).toEqual(['updated:b']);
    // The sweeper's verdict is a DOWN record with its reason, at a higher revision: that one is told.
    expect(cache.applyEvent(down('b', 10)).change).toMatchObject({ type: 'down', reason: 'expired', revision: 10 });
    // A cache seeing the node for the first time lists it too: it has not been declared down.
    expect(healthy(seeded(5, [node('a', 2), lapsed('b', 5)]))).toEqual(['a@2', 'b@5']);
  });

  it('drops a node that vanished from the server when its last event came before the fetch began', () => {
    const cache = seeded(3, [node('a', 3)]);
    cache.beginSnapshot();
    const outcome = cache.applySnapshot(list(20, []));
    expect(healthy(cache)).toEqual([]);
    expect(outcome.changes).toEqual([expect.objectContaining({ type: 'down', reason: undefined })]);
  });

  it('classifies a healthy node that changed as updated, or as registered when it is a new incarnation', () => {
    const cache = seeded(4, [node('a', 2), node('b', 4)]);
    cache.beginSnapshot();
    const outcome = cache.applySnapshot(
      list(9, [node('a', 6, { metadata: { role: 'x' } }), node('b', 9, { incarnation: 2, registeredAt: '2025-01-01T00:01:00.000Z' })]),
    );
    expect(outcome.changes.map((c) => `${c.type}:${c.node.nodeId}`)).toEqual(['updated:a', 'registered:b']);
    expect(outcome.changes[0]).toMatchObject({ previous: { revision: 2 } });
  });

  it('starts over when the server revision goes backwards (the server lost its state)', () => {
    const cache = seeded(50, [node('a', 40), node('b', 50)]);
    cache.beginSnapshot();
    const outcome = cache.applySnapshot(list(2, [node('a', 1), node('c', 2)]));
    expect(outcome.reset).toBe(true);
    expect(healthy(cache)).toEqual(['a@1', 'c@2']);
    expect(cache.revision).toBe(2);
    expect(cache.applyEvent(up('b', 3)).applied).toBe(true); // b's old revision 50 no longer blocks it
  });

  it('keeps the cache when a fetch fails', () => {
    const cache = seeded(3, [node('a', 3)]);
    cache.beginSnapshot();
    cache.applyEvent(up('b', 4));
    cache.cancelSnapshot();
    expect(healthy(cache)).toEqual(['a@3', 'b@4']);
  });

  it('ignores events of other clusters', () => {
    const cache = seeded(1, []);
    expect(cache.applyEvent({ ...up('x', 2), clusterId: 'other' }).applied).toBe(false);
    expect(healthy(cache)).toEqual([]);
  });
});
