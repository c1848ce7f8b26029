/**
 * The client's cache: the healthy list as a view of the cluster's records.
 * The revision rules (snapshot plus deltas, gaps, resets) are those of
 * `RevisionedMap` in the contract module, which the web console uses too;
 * this view adds what the SDK reports: which node joined, changed or left
 * the healthy list.
 */
import { RevisionedMap, type NodeList, type RecordChange, type RevisionedMapOptions } from '@roster/contract';
import type { DownEvent, MembershipEvent, Node, RegisteredEvent, UpdatedEvent } from './types.ts';

type WithoutSource<T> = T extends unknown ? Omit<T, 'source'> : never;

/** A change of the healthy list: the client's `registered`, `updated` and `down` events without their source. */
export type NodeChange = WithoutSource<RegisteredEvent | UpdatedEvent | DownEvent>;

export interface EventOutcome {
  /** False when the event was a duplicate or older than what is known of its node. */
  applied: boolean;
  /** True when a revision has been missing for longer than the wait (this event may have found it so): resync. */
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
  // A lease the sweeper extended (an amnesty) takes a revision but changes nothing a user sees.
  if (type === 'updated' && prev.leaseSeconds === next.leaseSeconds && sameMetadata(prev.metadata, next.metadata)) return undefined;
  return { type, node: next, previous: prev, revision: next.revision };
}

function sameMetadata(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/**
 * A node the list shows DOWN *without a reason* has not been declared down:
 * its lease ran out by the server's clock (reads filter on expiry) and the
 * sweeper has not decided yet. It decides within a sweep — a NODE_DOWN (a
 * DOWN record with its reason, at a higher revision) or, after an outage of
 * the information center, when the lease ran out because keepalives could not
 * arrive, one more lease. Until then the cache lists the node as it was at
 * that revision: reporting it down from a read would tell a false DOWN
 * whenever the sweeper grants that lease. So the healthy list holds every
 * node the information center has not declared down.
 */
const undeclared = (node: Node): Node => (node.status === 'DOWN' && node.downReason === undefined ? { ...node, status: 'UP' } : node);

export class ClusterCache {
  private readonly records: RevisionedMap;

  constructor(
    readonly clusterId: string,
    options: RevisionedMapOptions = {},
  ) {
    this.records = new RevisionedMap(clusterId, options);
  }

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.records.revision;
  }

  /** Every revision up to this one was seen or listed: the revision to offer as `If-None-Match` (a late one may be missing below `revision`). */
  get complete(): number {
    return this.records.complete;
  }

  /** When a revision still missing turns into a gap (then call `checkGap()`); undefined when none is missing. */
  get gapDeadline(): number | undefined {
    return this.records.gapDeadline;
  }

  /** True, once, when a revision has been missing for longer than the wait: resync. */
  checkGap(): boolean {
    return this.records.checkGap();
  }

  /** Healthy nodes. */
  get size(): number {
    return this.records.counts().up;
  }

  /** Whether the cache holds a whole list (the server's or a cache file's), not only events that came before one. */
  get viewed(): boolean {
    return this.records.hasView;
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
    const { reset, first, changes } = this.records.applySnapshot({ ...list, nodes: list.nodes.map(undeclared) });
    if (first) return { changes: [], changed: true, reset };
    const healthyChanges = changes.map(classify).filter((c): c is NodeChange => c !== undefined);
    return { changes: healthyChanges, changed: healthyChanges.length > 0, reset };
  }
}
