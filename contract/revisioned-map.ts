/**
 * A cluster's node records as a client keeps them: a snapshot plus deltas,
 * ordered by revision. The SDK's cache (its healthy list) and the web
 * console's node table are both views of this one map.
 *
 * What the server guarantees:
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
 * 1. Per node keep the record with the highest revision seen, DOWN records
 *    included (tombstones), and apply a state iff its revision is higher.
 *    Duplicates and stale deliveries fall out; order across nodes does not
 *    matter.
 * 2. Track the cluster's highest revision; an event more than one past it
 *    means something may have been missed: the caller resyncs.
 * 3. A resync replaces the map with the server's list, then applies again,
 *    by rule 1, every event that arrived while the list was being fetched.
 *    So a state newer than the snapshot is never lost and an older one never
 *    overwrites a newer one. (An event that arrived *before* the fetch began
 *    is already in the list: its write happened before the event was sent
 *    and the list was read after.)
 * 4. If the list's revision is lower than a revision already seen, the
 *    server's counter went backwards: it lost its state (an in-memory local
 *    runtime restarted). Nothing held can be compared with the new
 *    revisions, so the list replaces the map outright.
 */
import type { MembershipEvent, Node, NodeList, NodeStatus } from './index.ts';

/** A node whose record differs before and after: revision, status or lease times. */
export interface RecordChange {
  nodeId: string;
  /** The record before; undefined when the node was unknown. */
  previous: Node | undefined;
  /** The record after; undefined when the server no longer has it. */
  current: Node | undefined;
}

export interface EventOutcome {
  /** False for another cluster's event, a duplicate, or a state older than the one held. */
  applied: boolean;
  /** The event skipped at least one revision: resync. */
  gap: boolean;
  /** When applied: the record it replaced (undefined when the node was unknown). */
  previous?: Node;
}

export interface SnapshotOutcome {
  /** The server's revision went backwards (rule 4). */
  reset: boolean;
  /** True when the map held no view before (no list, nothing loaded): there was nothing to differ from. */
  first: boolean;
  /** Every node whose record the snapshot added, changed or removed. */
  changes: RecordChange[];
}

/** The state an event carries, its reason folded into the record (a DOWN record always says why when the event does). */
function stateOf(event: MembershipEvent): Node {
  const node = event.node.revision === event.revision ? event.node : { ...event.node, revision: event.revision };
  if (event.type === 'NODE_DOWN' && event.reason !== undefined && node.downReason === undefined) return { ...node, downReason: event.reason };
  return node;
}

const byNodeId = (a: Node, b: Node): number => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);

/** Same state as far as a view shows it (a resync returns equal records as new objects). */
function sameRecord(a: Node | undefined, b: Node | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.revision === b.revision && a.status === b.status && a.expiresAt === b.expiresAt && a.lastKeepaliveAt === b.lastKeepaliveAt;
}

class Records {
  readonly byId = new Map<string, Node>();
  up = 0;

  /** Rule 1. Returns false when the state is not newer than the one held. */
  put(node: Node): boolean {
    const held = this.byId.get(node.nodeId);
    if (held !== undefined && node.revision <= held.revision) return false;
    if (held?.status === 'UP') this.up--;
    if (node.status === 'UP') this.up++;
    this.byId.set(node.nodeId, node);
    return true;
  }
}

export class RevisionedMap {
  private records = new Records();
  /** The cluster's highest revision seen; undefined until anything was seen. */
  private highest: number | undefined;
  /** Set between beginSnapshot and applySnapshot: the events to apply again on top of the list. */
  private pending: { highestAtBegin: number | undefined; events: MembershipEvent[] } | undefined;
  private view = false;
  /** Grows with every change of a record: the sorted lists are rebuilt only after one. */
  private changes = 0;
  /** The sorted lists handed out since the last change, by status filter. */
  private lists: { version: number; byStatus: Map<NodeStatus | 'all', readonly Node[]> } = { version: -1, byStatus: new Map() };

  constructor(readonly clusterId: string) {}

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.highest ?? 0;
  }

  /** Whether a list (or a saved one) has been applied; before that the map only holds what events said. */
  get hasView(): boolean {
    return this.view;
  }

  get(nodeId: string): Node | undefined {
    return this.records.byId.get(nodeId);
  }

  /** The records (only those of `status`, if given) sorted by node id; frozen and shared until the next change. */
  list(status?: NodeStatus): readonly Node[] {
    if (this.lists.version !== this.changes) this.lists = { version: this.changes, byStatus: new Map() };
    const key = status ?? 'all';
    let list = this.lists.byStatus.get(key);
    if (!list) {
      list = Object.freeze([...this.records.byId.values()].filter((n) => status === undefined || n.status === status).sort(byNodeId));
      this.lists.byStatus.set(key, list);
    }
    return list;
  }

  counts(): { up: number; down: number } {
    return { up: this.records.up, down: this.records.byId.size - this.records.up };
  }

  /** Seeds an empty map with a list saved earlier (a client's cache file). */
  load(saved: { revision: number; nodes: readonly Node[] }): void {
    for (const node of saved.nodes) if (node.clusterId === this.clusterId) this.records.put(node);
    this.highest = saved.revision;
    this.view = true;
    this.changes++;
  }

  /** Applies a live event (rules 1 and 2). */
  applyEvent(event: MembershipEvent): EventOutcome {
    if (event.clusterId !== this.clusterId) return { applied: false, gap: false };
    this.pending?.events.push(event);
    const gap = this.highest !== undefined && event.revision > this.highest + 1;
    if (this.highest === undefined || event.revision > this.highest) this.highest = event.revision;
    const previous = this.get(event.node.nodeId);
    if (!this.records.put(stateOf(event))) return { applied: false, gap };
    this.changes++;
    return previous === undefined ? { applied: true, gap } : { applied: true, gap, previous };
  }

  /** Call right before fetching the list: events from now on are applied again on top of it. */
  beginSnapshot(): void {
    this.pending = { highestAtBegin: this.highest, events: [] };
  }

  /** The fetch failed: keep the map as it is (a failed refresh never empties it). */
  cancelSnapshot(): void {
    this.pending = undefined;
  }

  /** Replaces the map with `list` plus the events received since beginSnapshot (rules 3 and 4). */
  applySnapshot(list: NodeList): SnapshotOutcome {
    const begun = this.pending ?? { highestAtBegin: this.highest, events: [] };
    this.pending = undefined;
    const reset = begun.highestAtBegin !== undefined && list.revision < begun.highestAtBegin;

    const records = new Records();
    for (const node of list.nodes) if (node.clusterId === this.clusterId) records.put(node);
    let highest = reset ? list.revision : Math.max(list.revision, this.highest ?? 0);
    for (const event of begun.events) {
      highest = Math.max(highest, event.revision);
      records.put(stateOf(event));
    }

    const changes: RecordChange[] = [];
    for (const [nodeId, previous] of this.records.byId) {
      const current = records.byId.get(nodeId);
      if (!sameRecord(previous, current)) changes.push({ nodeId, previous, current });
    }
    for (const [nodeId, current] of records.byId) {
      if (!this.records.byId.has(nodeId)) changes.push({ nodeId, previous: undefined, current });
    }

    const first = !this.view;
    this.records = records;
    this.highest = highest;
    this.view = true;
    this.changes++;
    return { reset, first, changes };
  }
}
