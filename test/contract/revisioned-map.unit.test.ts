/**
 * The revision rules every client shares (contract/revisioned-map.ts), with
 * an injected clock: how long a missing revision may be late before it is a
 * gap, and that a gap asks for exactly one resync. No store, no timer.
 */
import { describe, expect, it } from 'vitest';
import { GAP_WAIT_MS, RevisionedMap, type MembershipEvent, type Node, type NodeList } from '@roster/contract';
import { eventOf, nodeRecord } from '../support/nodes.ts';

const CLUSTER = 'c1';
const WAIT = 2_000;

const node = (nodeId: string, revision: number, extra: Partial<Node> = {}): Node => nodeRecord(CLUSTER, nodeId, revision, extra);
const up = (nodeId: string, revision: number): MembershipEvent => eventOf(node(nodeId, revision));
const list = (revision: number, nodes: Node[]): NodeList => ({ clusterId: CLUSTER, revision, nodes });

/** A map at `revision` with one node per revision 1..revision, and a clock the test moves. */
function mapAt(revision: number, gapWaitMs = WAIT) {
  const clock = { now: 1_000_000 };
  const map = new RevisionedMap(CLUSTER, { gapWaitMs, now: () => clock.now });
  map.beginSnapshot();
  map.applySnapshot(list(revision, Array.from({ length: revision }, (_, i) => node(`n${i + 1}`, i + 1))));
  return { map, clock };
}

describe('RevisionedMap: a missing revision waits before it is a gap', () => {
  it('fills a gap with a late event that comes within the wait, and never asks for a resync', () => {
    const { map, clock } = mapAt(10);
    const jump = map.applyEvent(up('b', 12)); // 11 not seen yet
    expect(jump).toMatchObject({ applied: true, gap: false });
    expect(map.missing).toBe(1);
    expect(map.complete).toBe(10); // what may be offered as If-None-Match: not 12
    expect(map.revision).toBe(12);
    expect(map.gapDeadline).toBe(clock.now + WAIT);

    clock.now += WAIT - 1; // just before the deadline
    expect(map.checkGap()).toBe(false);
    const late = map.applyEvent(up('a', 11));
    expect(late).toMatchObject({ applied: true, gap: false });
    expect(map.missing).toBe(0);
    expect(map.complete).toBe(12);
    expect(map.gapDeadline).toBeUndefined();

    clock.now += 10 * WAIT; // long after: nothing is missing, nothing to resync
    expect(map.checkGap()).toBe(false);
    expect(map.list().map((n) => `${n.nodeId}@${n.revision}`)).toContain('a@11');
  });

  it('turns a revision still missing at the deadline into exactly one gap, which the resync settles', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('b', 12));
    map.applyEvent(up('c', 14)); // 11 and 13 missing; 13 since now as well
    clock.now += WAIT; // at the deadline
    expect(map.checkGap()).toBe(true);
    // Once: neither the timer again, nor the next event, asks for another resync for the same revisions.
    expect(map.checkGap()).toBe(false);
    expect(map.applyEvent(up('d', 15)).gap).toBe(false);
    clock.now += 10 * WAIT;
    expect(map.checkGap()).toBe(false);
    expect(map.gapDeadline).toBeUndefined();
    expect(map.complete).toBe(10);

    // The resync's list (read at 15) accounts for 11 and 13: nothing is missing any more.
    map.beginSnapshot();
    map.applySnapshot(list(15, [...map.list(), node('a', 11), node('x', 13)]));
    expect(map.missing).toBe(0);
    expect(map.complete).toBe(15);
    expect(map.checkGap()).toBe(false);
  });

  it('reports an event found past the deadline as the gap itself when no timer fired first', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('b', 12));
    clock.now += WAIT + 500;
    expect(map.applyEvent(up('c', 13))).toMatchObject({ applied: true, gap: true });
    expect(map.checkGap()).toBe(false);
  });

  it('times a revision missing after the resync from when it went missing, not from the first gap', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('b', 12)); // 11 missing
    clock.now += WAIT;
    expect(map.checkGap()).toBe(true); // 11: one resync
    map.applyEvent(up('c', 14)); // 13 missing from now: a new wait
    expect(map.gapDeadline).toBe(clock.now + WAIT);
    clock.now += WAIT - 1;
    expect(map.checkGap()).toBe(false);
    clock.now += 1;
    expect(map.checkGap()).toBe(true); // 13: its own resync
  });

  it('fills the middle of a run of missing revisions and keeps waiting for the rest', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('z', 20)); // 11..19 missing
    expect(map.missing).toBe(9);
    for (const r of [15, 11, 19, 12]) map.applyEvent(up(`n${r}`, r));
    expect(map.missing).toBe(5); // 13, 14, 16, 17, 18
    expect(map.complete).toBe(12);
    for (const r of [13, 14, 16, 17]) map.applyEvent(up(`n${r}`, r));
    clock.now += WAIT - 1;
    expect(map.applyEvent(up('n18', 18)).gap).toBe(false);
    expect(map.missing).toBe(0);
    expect(map.complete).toBe(20);
    clock.now += WAIT;
    expect(map.checkGap()).toBe(false);
  });

  it('ignores duplicates and old revisions: they neither fill nor open a gap', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('b', 12)); // 11 missing
    expect(map.applyEvent(up('b', 12))).toEqual({ applied: false, gap: false }); // duplicate
    expect(map.applyEvent(up('n3', 3))).toEqual({ applied: false, gap: false }); // node n3 is already at 3
    expect(map.applyEvent(up('n3', 2))).toEqual({ applied: false, gap: false }); // older than what is held
    expect(map.missing).toBe(1);
    expect(map.revision).toBe(12);
    clock.now += WAIT;
    expect(map.checkGap()).toBe(true); // 11 is still missing: the duplicates did not stand in for it
  });

  it('with no wait, calls every skipped revision a gap at once (the rule before the wait)', () => {
    const { map } = mapAt(10, 0);
    expect(map.applyEvent(up('b', 12))).toMatchObject({ applied: true, gap: true });
    expect(map.applyEvent(up('a', 11))).toMatchObject({ applied: true, gap: false });
  });

  it('accounts for missing revisions up to a list read during the wait, and keeps waiting for later ones', () => {
    const { map, clock } = mapAt(10);
    map.beginSnapshot(); // a periodic refresh in flight
    map.applyEvent(up('b', 12)); // 11 missing
    map.applyEvent(up('d', 16)); // 13..15 missing
    map.applySnapshot(list(13, [...map.list(), node('a', 11), node('c', 13)])); // the list was read at 13
    expect(map.missing).toBe(2); // 14 and 15
    expect(map.complete).toBe(13);
    clock.now += WAIT;
    expect(map.checkGap()).toBe(true);
  });

  it('forgets missing revisions when the server lost its state (rule 4)', () => {
    const { map, clock } = mapAt(10);
    map.applyEvent(up('b', 12));
    map.beginSnapshot();
    map.applySnapshot(list(2, [node('n1', 1), node('n2', 2)]));
    expect(map.missing).toBe(0);
    expect(map.revision).toBe(2);
    clock.now += WAIT;
    expect(map.checkGap()).toBe(false);
  });

  it('waits GAP_WAIT_MS by default', () => {
    let now = 0;
    const map = new RevisionedMap(CLUSTER, { now: () => now });
    map.applyEvent(up('a', 1));
    map.applyEvent(up('c', 3));
    expect(map.gapDeadline).toBe(GAP_WAIT_MS);
    now = GAP_WAIT_MS;
    expect(map.checkGap()).toBe(true);
  });
});
