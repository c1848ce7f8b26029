/**
 * The cluster cache: a snapshot plus deltas.
 *
 * What the server guarantees (functions/core/registry.ts):
 * - every event carries the cluster revision it produced, and that is the
 *   node's `revision` afterwards;
 * - per node, revisions only grow and events arrive in order; across nodes,
 *   concurrent writers may deliver them out of order;
 * - a write that lost a race leaves its revision unused (a gap that no event
 *   will ever fill);
 * - the list's `revision` is read *before* its nodes, and each node carries
 *   its own revision.
 *
 * Hence the rules:
 * 1. Per node key keep the highest revision seen, DOWN nodes included
 *    (tombstones), and apply a state iff its revision is higher. Duplicates
 *    and stale deliveries fall out; order across nodes does not matter.
 * 2. Track the cluster's highest revision; an event more than one past it
 *    means something may have been missed: the caller resyncs.
 * 3. A resync replaces the cache with the server's list, then applies again,
 *    with rule 1, every event that arrived while the list was being fetched.
 *    So a state newer than the snapshot is never lost and an older one never
 *    overwrites a newer one — the same rule as for live events. (An event
 *    that arrived *before* the fetch began is already in the list: its write
 *    happened before the event was sent and the list was read after.)
 * 4. If the list's revision is lower than a revision already seen, the
 *    server's counter went backwards: it lost its state (an in-memory local
 *    runtime restarted). Nothing cached can be compared with the new
 *    revisions, so the list replaces the cache outright.
 * 5. A node the list shows DOWN *without a reason* has not been declared
 *    down: its lease ran out by the server's clock (reads filter on expiry)
 *    and the sweeper has not decided yet. It decides within a sweep: a
 *    NODE_DOWN (a DOWN record with its reason, at a higher revision), or —
 *    after an outage of the information center, when the lease ran out
 *    because keepalives could not arrive — one more lease. Until then the
 *    cache lists the node as it was at that revision: reporting it down from
 *    a read would tell a false DOWN whenever the sweeper grants that lease.
 *    So the cache holds every node the information center has not declared
 *    down.
 */
import type { DownEvent, DownReason, MembershipEvent, Node, NodeList, RegisteredEvent, UpdatedEvent } from './types.ts';

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
  /** The server's revision went backwards (rule 4). */
  reset: boolean;
}

const byNodeId = (a: Node, b: Node): number => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);

/** Applies a node state under rule 1. Returns false when the state is not newer than what is known. */
function applyState(revisions: Map<string, number>, healthy: Map<string, Node>, node: Node, revision: number): boolean {
  const known = revisions.get(node.nodeId);
  if (known !== undefined && revision <= known) return false;
  revisions.set(node.nodeId, revision);
  if (node.status === 'UP') healthy.set(node.nodeId, node);
  else healthy.delete(node.nodeId);
  return true;
}

function sameMetadata(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

/** How a node's healthy-list entry changed from `prev` to `next` (either may be absent). */
function classify(
  prev: Node | undefined,
  next: Node | undefined,
  downRecord: Node | undefined,
  reason: DownReason | undefined,
): NodeChange | undefined {
  if (next && !prev) return { type: 'registered', node: next, revision: next.revision };
  if (prev && !next) {
    const node = downRecord ?? prev;
    return { type: 'down', node, revision: node.revision, reason: reason ?? downRecord?.downReason };
  }
  if (!prev || !next || prev.revision === next.revision) return undefined;
  // A new incarnation, or a registration after a DOWN this cache never saw, is a new registration.
  const type = prev.incarnation !== next.incarnation || prev.registeredAt !== next.registeredAt ? 'registered' : 'updated';
  // A lease the sweeper extended (rule 5) takes a revision but changes nothing a user sees.
  if (type === 'updated' && prev.leaseSeconds === next.leaseSeconds && sameMetadata(prev.metadata, next.metadata)) return undefined;
  return { type, node: next, previous: prev, revision: next.revision };
}

export class ClusterCache {
  /** Highest revision known per node id, DOWN nodes included. */
  private revisions = new Map<string, number>();
  /** The healthy nodes by id. */
  private healthy = new Map<string, Node>();
  /** The cluster's highest revision seen; undefined until anything was seen. */
  private highest: number | undefined;
  /** Set between beginSnapshot and applySnapshot: the events to apply again on top of the list. */
  private pending: { highestAtBegin: number | undefined; events: MembershipEvent[] } | undefined;
  /** The sorted healthy list, built on demand and kept until the next change. */
  private sorted: readonly Node[] | undefined;
  private hasView = false;

  constructor(readonly clusterId: string) {}

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.highest ?? 0;
  }

  get size(): number {
    return this.healthy.size;
  }

  /** Whether the cache holds a whole list (the server's or a cache file's), not only events that came before one. */
  get viewed(): boolean {
    return this.hasView;
  }

  /** The healthy nodes, sorted by node id. The array is shared until the next change: do not mutate it. */
  nodes(): readonly Node[] {
    this.sorted ??= Object.freeze([...this.healthy.values()].sort(byNodeId));
    return this.sorted;
  }

  node(nodeId: string): Node | undefined {
    return this.healthy.get(nodeId);
  }

  /** Seeds an empty cache with a list saved earlier (a cache file). */
  load(saved: { revision: number; nodes: readonly Node[] }): void {
    for (const node of saved.nodes) {
      if (node.clusterId === this.clusterId) applyState(this.revisions, this.healthy, node, node.revision);
    }
    this.highest = saved.revision;
    this.hasView = true;
    this.sorted = undefined;
  }

  /** Applies a live event (rules 1 and 2). */
  applyEvent(event: MembershipEvent): EventOutcome {
    if (event.clusterId !== this.clusterId) return { applied: false, gap: false };
    this.pending?.events.push(event);
    const gap = this.highest !== undefined && event.revision > this.highest + 1;
    if (this.highest === undefined || event.revision > this.highest) this.highest = event.revision;

    const id = event.node.nodeId;
    const prev = this.healthy.get(id);
    if (!applyState(this.revisions, this.healthy, event.node, event.revision)) return { applied: false, gap };
    const next = this.healthy.get(id);
    if (prev !== next) this.sorted = undefined;
    // Before the first view (list or cache file) there is nothing to report a change against:
    // the event is kept, and the first view reports the whole list at once.
    const change = this.hasView ? classify(prev, next, event.node, event.reason) : undefined;
    return change ? { applied: true, gap, change } : { applied: true, gap };
  }

  /** Call right before fetching the list: events from now on are kept to be applied again on top of it. */
  beginSnapshot(): void {
    this.pending = { highestAtBegin: this.highest, events: [] };
  }

  /** The fetch failed: keep the cache as it is (a failed refresh never empties it). */
  cancelSnapshot(): void {
    this.pending = undefined;
  }

  /** Replaces the cache with `list` plus the events received since beginSnapshot (rules 3 and 4). */
  applySnapshot(list: NodeList): SnapshotOutcome {
    const begun = this.pending ?? { highestAtBegin: this.highest, events: [] };
    this.pending = undefined;
    const reset = begun.highestAtBegin !== undefined && list.revision < begun.highestAtBegin;

    const revisions = new Map<string, number>();
    const healthy = new Map<string, Node>();
    /** The newest record of each node applied, UP or DOWN, to describe `down` changes. */
    const latest = new Map<string, Node>();
    for (const listed of list.nodes) {
      if (listed.clusterId !== this.clusterId) continue;
      // Rule 5: a node whose lease ran out is not down until the information center says so.
      const node: Node = listed.status === 'DOWN' && listed.downReason === undefined ? { ...listed, status: 'UP' } : listed;
      if (applyState(revisions, healthy, node, node.revision)) latest.set(node.nodeId, node);
    }
    let highest = reset ? list.revision : Math.max(list.revision, this.highest ?? 0);
    const reasons = new Map<string, DownReason | undefined>();
    for (const event of begun.events) {
      highest = Math.max(highest, event.revision);
      if (applyState(revisions, healthy, event.node, event.revision)) {
        latest.set(event.node.nodeId, event.node);
        reasons.set(event.node.nodeId, event.reason);
      }
    }

    const changes: NodeChange[] = [];
    for (const [id, prev] of this.healthy) {
      const change = classify(prev, healthy.get(id), latest.get(id), reasons.get(id));
      if (change) changes.push(change);
    }
    for (const [id, next] of healthy) {
      if (!this.healthy.has(id)) changes.push({ type: 'registered', node: next, revision: next.revision });
    }

    const firstView = !this.hasView;
    this.revisions = revisions;
    this.healthy = healthy;
    this.highest = highest;
    this.sorted = undefined;
    this.hasView = true;
    return firstView ? { changes: [], changed: true, reset } : { changes, changed: changes.length > 0, reset };
  }
}
