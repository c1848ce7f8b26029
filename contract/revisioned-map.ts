/**
 * A cluster's node records as a client keeps them: a snapshot plus deltas,
 * ordered by revision. The SDK's cache (its healthy list) and the web
 * console's node table are both views of this one map.
 *
 * What the server guarantees:
 * - every event carries the cluster revision it produced, and that is the
 *   node's `revision` afterwards;
 * - per node, revisions only grow and events arrive in order; across nodes,
 *   they may arrive out of revision order: a writer takes its revision
 *   before it writes the node, so a later revision's write can land (and be
 *   delivered) before an earlier one's — in a storm by a fan-out batch or
 *   two, seconds at a large cluster (docs/measured/resync.md);
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
 * 2. Track the cluster's highest revision and the revisions below it not
 *    seen yet. A missing revision is *late* for up to `gapWaitMs` after an
 *    event past it arrived, and is then a *gap*: something may have been
 *    missed, and the caller resyncs — once for every revision missing at
 *    that moment. A late event that arrives within the wait fills its place
 *    and nothing is read. (With `gapWaitMs` 0 every skipped revision is a
 *    gap at once.)
 * 3. A resync replaces the map with the server's list, then applies again,
 *    by rule 1, every event that arrived while the list was being fetched.
 *    So a state newer than the snapshot is never lost and an older one never
 *    overwrites a newer one. (An event that arrived *before* the fetch began
 *    is already in the list: its write happened before the event was sent
 *    and the list was read after.) The list accounts for every revision up
 *    to its own: those stop being missing.
 * 4. If the list's revision is lower than a revision already seen, the
 *    server's counter went backwards: it lost its state (an in-memory local
 *    runtime restarted). Nothing held can be compared with the new
 *    revisions, so the list replaces the map outright.
 *
 * Only `complete` (every revision up to it seen or listed) may be offered to
 * the server as "the revision I hold" (`If-None-Match`): `revision`, the
 * highest seen, may stand above a missing one.
 *
 * The map keeps no timer: the caller asks `gapDeadline` when to call
 * `checkGap()`, and the clock is injected (`now`), so the rules are tested
 * without one.
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

/**
 * How long a client waits for a missing revision before it counts as a gap
 * (rule 2), by default: above the lateness measured in a registration storm
 * (docs/measured/resync.md), and short beside the periodic refresh that
 * repairs a cache anyway.
 */
export const GAP_WAIT_MS = 5_000;

export interface RevisionedMapOptions {
  /** How long a missing revision may be late before it is a gap (rule 2); 0: at once. @default GAP_WAIT_MS */
  gapWaitMs?: number;
  /** The clock, in ms (injected in tests). @default Date.now */
  now?: () => number;
}

export interface EventOutcome {
  /** False for another cluster's event, a duplicate, or a state older than the one held. */
  applied: boolean;
  /** A revision has been missing for longer than the wait (rule 2): resync. Reported once per missing revision. */
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

/** Revisions `from..to` missing since `since` (when an event past them arrived). */
interface Hole {
  from: number;
  to: number;
  since: number;
}

/**
 * The revisions below the highest seen that have not arrived, as ranges in
 * revision order. A range opens when an event jumps past the highest, so
 * ranges are also in order of `since`: the first one is the oldest.
 */
class Holes {
  ranges: Hole[] = [];

  /** The event `revision` arrived; `highest` is the highest before it. */
  arrived(revision: number, highest: number, now: number): void {
    if (revision > highest + 1) {
      this.ranges.push({ from: highest + 1, to: revision - 1, since: now });
      return;
    }
    if (revision > highest) return;
    // Late (or a duplicate): fill its place if it had one. Binary search for the last range starting at or below it.
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.ranges[mid] as Hole).from <= revision) lo = mid;
      else hi = mid - 1;
    }
    const hole = this.ranges[lo];
    if (hole === undefined || revision < hole.from || revision > hole.to) return;
    if (hole.from === hole.to) this.ranges.splice(lo, 1);
    else if (revision === hole.from) hole.from++;
    else if (revision === hole.to) hole.to--;
    else {
      this.ranges.splice(lo + 1, 0, { from: revision + 1, to: hole.to, since: hole.since });
      hole.to = revision - 1;
    }
  }

  /** A list accounts for every revision up to `revision`. */
  coveredThrough(revision: number): void {
    while (this.ranges.length > 0 && (this.ranges[0] as Hole).to <= revision) this.ranges.shift();
    const first = this.ranges[0];
    if (first && first.from <= revision) first.from = revision + 1;
  }

  /** The first range above `reported` (ranges lie wholly above or below it: see `RevisionedMap.checkGap`). */
  firstAbove(reported: number): Hole | undefined {
    return this.ranges.find((h) => h.from > reported);
  }

  get count(): number {
    return this.ranges.reduce((n, h) => n + h.to - h.from + 1, 0);
  }
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
  /** The revisions below `highest` not seen yet (rule 2). */
  private holes = new Holes();
  /**
   * Missing revisions up to this one were reported as a gap: the resync they
   * asked for accounts for them, so they are not reported again. Every range
   * open when it was set lies below it, and every later one above.
   */
  private reported = 0;
  private readonly gapWaitMs: number;
  private readonly now: () => number;
  /** Set between beginSnapshot and applySnapshot: the events to apply again on top of the list. */
  private pending: { highestAtBegin: number | undefined; events: MembershipEvent[] } | undefined;
  private view = false;
  /** Grows with every change of a record: the sorted lists are rebuilt only after one. */
  private changes = 0;
  /** The sorted lists handed out since the last change, by status filter. */
  private lists: { version: number; byStatus: Map<NodeStatus | 'all', readonly Node[]> } = { version: -1, byStatus: new Map() };

  constructor(
    readonly clusterId: string,
    options: RevisionedMapOptions = {},
  ) {
    this.gapWaitMs = Math.max(0, options.gapWaitMs ?? GAP_WAIT_MS);
    this.now = options.now ?? Date.now;
  }

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.highest ?? 0;
  }

  /**
   * Every revision up to this one was seen or accounted for by a list: the
   * map is the server's state at this revision (0 before anything was seen).
   * What a client offers as `If-None-Match`.
   */
  get complete(): number {
    const first = this.holes.ranges[0];
    return first ? first.from - 1 : (this.highest ?? 0);
  }

  /** How many revisions below the highest have not arrived (late, or lost). */
  get missing(): number {
    return this.holes.count;
  }

  /** When a missing revision not yet reported turns into a gap (call `checkGap()` then); undefined when none is missing. */
  get gapDeadline(): number | undefined {
    const hole = this.holes.firstAbove(this.reported);
    return hole === undefined ? undefined : hole.since + this.gapWaitMs;
  }

  /**
   * Whether a revision has been missing for longer than the wait and was not
   * reported yet (rule 2). True at most once for each missing revision: the
   * caller resyncs.
   */
  checkGap(): boolean {
    const deadline = this.gapDeadline;
    if (deadline === undefined || this.now() < deadline) return false;
    // Everything missing now is covered by the one resync; ranges opened later lie above `highest`.
    this.reported = this.highest ?? 0;
    return true;
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
    this.holes = new Holes();
    this.reported = 0;
    this.view = true;
    this.changes++;
  }

  /** Applies a live event (rules 1 and 2). */
  applyEvent(event: MembershipEvent): EventOutcome {
    if (event.clusterId !== this.clusterId) return { applied: false, gap: false };
    this.pending?.events.push(event);
    // Before anything was seen nothing can be missing: the first list accounts for what came before.
    if (this.highest !== undefined) this.holes.arrived(event.revision, this.highest, this.now());
    if (this.highest === undefined || event.revision > this.highest) this.highest = event.revision;
    const gap = this.checkGap();
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
    if (reset) {
      // Rule 4: nothing of the old count can be compared with the new one.
      this.holes = new Holes();
      this.reported = 0;
    } else {
      this.holes.coveredThrough(list.revision);
    }
    this.view = true;
    this.changes++;
    return { reset, first, changes };
  }
}
