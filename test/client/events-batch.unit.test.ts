/**
 * Batched events: a connection opened with `batch=true` may receive
 * `{"type":"EVENTS","clusterId","events":[…]}` as well as single events.
 * The SDK and the console read every message through the contract's
 * `eventsIn`, then apply the events one by one, in order, with the same
 * revision rules as single events.
 */
import { eventsIn, type MembershipEvent } from '@roster/contract';
import { describe, expect, test } from 'vitest';
import { ClusterCache } from '../../client/src/cache.ts';
import { eventOf, FIXTURE_TIME as T, nodeRecord } from '../support/nodes.ts';

function event(type: MembershipEvent['type'], nodeId: string, revision: number): MembershipEvent {
  return eventOf(nodeRecord('c1', nodeId, revision, type === 'NODE_DOWN' ? { status: 'DOWN', downReason: 'deregistered' } : {}), type);
}

const batch = (events: MembershipEvent[]) => ({ type: 'EVENTS', clusterId: 'c1', events });

describe('eventsIn', () => {
  test('a single event is one event; a batch is its events in order', () => {
    const a = event('NODE_REGISTERED', 'a', 5);
    const b = event('NODE_DOWN', 'b', 6);
    expect(eventsIn(a)).toEqual([a]);
    expect(eventsIn(batch([a, b]))).toEqual([a, b]);
  });

  test('replies, malformed batches and anything else carry no events', () => {
    expect(eventsIn({ type: 'SUBSCRIBED', clusterId: 'c1' })).toBeUndefined();
    expect(eventsIn({ type: 'PONG', at: T })).toBeUndefined();
    expect(eventsIn({ type: 'EVENTS', clusterId: 'c1' })).toBeUndefined();
    expect(eventsIn({ type: 'EVENTS', clusterId: 'c1', events: [{ type: 'NODE_REGISTERED', clusterId: 'c1', revision: 1 }] })).toBeUndefined();
    expect(eventsIn('not json')).toBeUndefined();
  });
});

describe('a batch applied to the cache', () => {
  test('gives the same cache and the same changes as its events one message each', () => {
    const events = [
      event('NODE_REGISTERED', 'a', 2),
      event('NODE_REGISTERED', 'b', 4),
      // Across nodes a batch may come in any order; per node it is in revision order.
      event('NODE_REGISTERED', 'c', 3),
      event('NODE_DOWN', 'a', 5),
      // At least once: a duplicate is dropped by the revision rule.
      event('NODE_REGISTERED', 'b', 4),
    ];
    const apply = (messages: unknown[]) => {
      const cache = new ClusterCache('c1');
      cache.applySnapshot({ clusterId: 'c1', revision: 1, nodes: [] });
      const changes: string[] = [];
      let gaps = 0;
      for (const message of messages) {
        for (const e of eventsIn(message) ?? []) {
          const outcome = cache.applyEvent(e);
          if (outcome.change) changes.push(`${outcome.change.type}:${outcome.change.node.nodeId}@${outcome.change.revision}`);
          if (outcome.gap) gaps++;
        }
      }
      return { nodes: cache.nodes().map((n) => `${n.nodeId}@${n.revision}`), changes, revision: cache.revision, gaps };
    };
    const batched = apply([batch(events)]);
    expect(batched).toEqual(apply(events));
    expect(batched).toEqual({
      nodes: ['b@4', 'c@3'],
      changes: ['registered:a@2', 'registered:b@4', 'registered:c@3', 'down:a@5'],
      revision: 5,
      // b@4 after a@2 skips revision 3, which c@3 then fills within the wait for a late event: no gap, no resync.
      gaps: 0,
    });
  });
});
