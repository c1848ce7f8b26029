/**
 * The client's cache: the healthy list as a view of the cluster's records.
 * The revision rules (snapshot plus deltas, gaps, resets) are those of
 * `RevisionedMap` in the contract module, which the web console uses too;
 * this view adds what the SDK reports: which node joined, changed or left
 * the healthy list.
 */
import { RevisionedMap, type NodeList, type RecordChange } from '@roster/contract';
import type { DownEvent, MembershipEvent, Node, RegisteredEvent, UpdatedEvent } from './types.ts';

type WithoutSource<T> = T extends unknown ? Omit<T, 'source'> : never;

/** A change of the healthy list: the client's `registered`, `updated` and `down` events without their source. */
export type NodeChange = WithoutSource<RegisteredEvent | UpdatedEvent | DownEvent>;

export interface EventOutcome {
  /** False when the event was a duplicate or older than what is known of its node. */
  applied: boolean;
  /** True when the event skipped at least one revision: resync. */
  gap: boolean;
  /** How the healthy list changed, if it did. */
  change?: NodeChange;
}

export interface SnapshotOutcome {
  /** Differences from the previous view (none for the very first view: there was nothing to differ from). */
  changes: NodeChange[];
  /** Whether the healthy list may have changed (always true for the first view). */
  changed: boolean;
  /** The server's revision went backwards: it lost its state, so nothing cached was kept. */
  reset: boolean;
}

const upOrNone = (node: Node | undefined): Node | undefined => (node?.status === 'UP' ? node : undefined);

/** How a node's healthy-list entry changed from one record to the next (either may be absent). */
function classify({ previous, current }: Omit<RecordChange, 'nodeId'>): NodeChange | undefined {
  const prev = upOrNone(previous);
  const next = upOrNone(current);
  if (next && !prev) return { type: 'registered', node: next, revision: next.revision };
  if (prev && !next) {
    // The DOWN record says why; without one (the server no longer has the node) the reason is unknown.
    const node = current ?? prev;
    return { type: 'down', node, revision: node.revision, reason: current?.downReason };
  }
  if (!prev || !next || prev.revision === next.revision) return undefined;
  // A new incarnation, or a registration after a DOWN this cache never saw, is a new registration.
  const type = prev.incarnation !== next.incarnation || prev.registeredAt !== next.registeredAt ? 'registered' : 'updated';
  return { type, node: next, previous: prev, revision: next.revision };
}

export class ClusterCache {
  private readonly records: RevisionedMap;

  constructor(readonly clusterId: string) {
    this.records = new RevisionedMap(clusterId);
  }

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.records.revision;
  }

  /** Healthy nodes. */
  get size(): number {
    return this.records.counts().up;
  }

  /** The healthy nodes, sorted by node id. The array is shared until the next change: do not mutate it. */
  nodes(): readonly Node[] {
    return this.records.list('UP');
  }

  node(nodeId: string): Node | undefined {
    return upOrNone(this.records.get(nodeId));
  }

  /** Seeds an empty cache with a list saved earlier (a cache file). */
  load(saved: { revision: number; nodes: readonly Node[] }): void {
    this.records.load(saved);
  }

  /** Applies a live event. Before the first view (a list or a cache file) no change is reported: the first view reports the whole list at once. */
  applyEvent(event: MembershipEvent): EventOutcome {
    const reported = this.records.hasView;
    const { applied, gap, previous } = this.records.applyEvent(event);
    if (!applied || !reported) return { applied, gap };
    const change = classify({ previous, current: this.records.get(event.node.nodeId) });
    return change ? { applied, gap, change } : { applied, gap };
  }

  /** Call right before fetching the list: events from now on are applied again on top of it. */
  beginSnapshot(): void {
    this.records.beginSnapshot();
  }

  /** The fetch failed: keep the cache as it is (a failed refresh never empties it). */
  cancelSnapshot(): void {
    this.records.cancelSnapshot();
  }

  /** Replaces the cache with `list` plus the events received since beginSnapshot. */
  applySnapshot(list: NodeList): SnapshotOutcome {
    const { reset, first, changes } = this.records.applySnapshot(list);
    if (first) return { changes: [], changed: true, reset };
    const healthyChanges = changes.map(classify).filter((c): c is NodeChange => c !== undefined);
    return { changes: healthyChanges, changed: healthyChanges.length > 0, reset };
  }
}
