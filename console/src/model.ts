/**
 * What the console knows, kept by the SDK's rules (client/cache.ts) — but
 * unlike the SDK's healthy list, the node table keeps every record the
 * server returns with `?status=all`, DOWN nodes included, because an
 * operator wants to see who went down and why.
 *
 * The rules, as in client/cache.ts:
 * 1. Per node keep the state with the highest revision (DOWN records too);
 *    apply a state iff its revision is higher. Duplicates, stale and
 *    reordered deliveries fall out.
 * 2. Track the cluster's highest revision; an event more than one past it
 *    may mean a missed event: the caller resyncs.
 * 3. A resync replaces the table with the server's list, then applies again,
 *    by rule 1, every event that arrived while the list was being fetched.
 * 4. A list whose revision is below one already seen means the server lost
 *    its state (an in-memory local runtime restarted): the list replaces the
 *    table outright, with nothing carried over.
 *
 * No DOM here: the module is unit-tested under Node.
 */
import type { MembershipEvent, Node, NodeList } from '../../client/types.ts';

const byNodeId = (a: Node, b: Node): number => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);

export interface TableEventOutcome {
  /** False for a duplicate or a state older than the one held. */
  applied: boolean;
  /** The event skipped at least one revision: resync. */
  gap: boolean;
}

export interface TableSnapshotOutcome {
  /** The server's revision went backwards (rule 4). */
  reset: boolean;
  /** Node ids whose record was added, changed or removed by the snapshot. */
  changed: string[];
}

export class ClusterTable {
  /** The newest known record of every node, UP or DOWN. */
  private records = new Map<string, Node>();
  private highest: number | undefined;
  private pending: { highestAtBegin: number | undefined; events: MembershipEvent[] } | undefined;
  private sorted: Node[] | undefined;
  /** Whether a list has been applied (before that, the table only holds what events said). */
  synced = false;

  constructor(readonly clusterId: string) {}

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.highest ?? 0;
  }

  get(nodeId: string): Node | undefined {
    return this.records.get(nodeId);
  }

  /** Every record, sorted by node id. Shared until the next change: do not mutate. */
  nodes(): readonly Node[] {
    this.sorted ??= [...this.records.values()].sort(byNodeId);
    return this.sorted;
  }

  counts(): { up: number; down: number } {
    let up = 0;
    for (const node of this.records.values()) if (node.status === 'UP') up++;
    return { up, down: this.records.size - up };
  }

  applyEvent(event: MembershipEvent): TableEventOutcome {
    if (event.clusterId !== this.clusterId) return { applied: false, gap: false };
    this.pending?.events.push(event);
    const gap = this.highest !== undefined && event.revision > this.highest + 1;
    if (this.highest === undefined || event.revision > this.highest) this.highest = event.revision;
    const applied = applyState(this.records, eventState(event));
    if (applied) this.sorted = undefined;
    return { applied, gap };
  }

  /** Call right before fetching the list: events from now on are applied again on top of it. */
  beginSnapshot(): void {
    this.pending = { highestAtBegin: this.highest, events: [] };
  }

  /** The fetch failed: keep the table as it is (a failed refresh never empties it). */
  cancelSnapshot(): void {
    this.pending = undefined;
  }

  applySnapshot(list: NodeList): TableSnapshotOutcome {
    const begun = this.pending ?? { highestAtBegin: this.highest, events: [] };
    this.pending = undefined;
    const reset = begun.highestAtBegin !== undefined && list.revision < begun.highestAtBegin;

    const records = new Map<string, Node>();
    for (const node of list.nodes) if (node.clusterId === this.clusterId) applyState(records, node);
    let highest = reset ? list.revision : Math.max(list.revision, this.highest ?? 0);
    for (const event of begun.events) {
      highest = Math.max(highest, event.revision);
      applyState(records, eventState(event));
    }

    const changed: string[] = [];
    for (const [id, old] of this.records) if (!sameRecord(old, records.get(id))) changed.push(id);
    for (const id of records.keys()) if (!this.records.has(id)) changed.push(id);

    this.records = records;
    this.highest = highest;
    this.sorted = undefined;
    this.synced = true;
    return { reset, changed };
  }
}

/** The node state an event carries, with its reason folded in (older servers may omit `downReason` on the node). */
function eventState(event: MembershipEvent): Node {
  const node = event.node.revision === event.revision ? event.node : { ...event.node, revision: event.revision };
  if (event.type === 'NODE_DOWN' && event.reason !== undefined && node.downReason === undefined) return { ...node, downReason: event.reason };
  return node;
}

/** Rule 1. Returns false when the state is not newer than the one held. */
function applyState(records: Map<string, Node>, node: Node): boolean {
  const held = records.get(node.nodeId);
  if (held !== undefined && node.revision <= held.revision) return false;
  records.set(node.nodeId, node);
  return true;
}

/** Same state as far as the table shows it (a resync returns equal records as new objects). */
function sameRecord(a: Node, b: Node | undefined): boolean {
  return (
    b !== undefined &&
    a.revision === b.revision &&
    a.status === b.status &&
    a.expiresAt === b.expiresAt &&
    a.lastKeepaliveAt === b.lastKeepaliveAt
  );
}

/** One row of `GET /v1/clusters`. */
export interface ClusterSummary {
  clusterId: string;
  up: number;
  down: number;
  revision: number;
  lastEventAt?: string;
}

export function isClusterSummary(value: unknown): value is ClusterSummary {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.clusterId === 'string' &&
    Number.isSafeInteger(v.up) &&
    Number.isSafeInteger(v.down) &&
    Number.isSafeInteger(v.revision) &&
    (v.lastEventAt === undefined || typeof v.lastEventAt === 'string')
  );
}

export function isClusterList(value: unknown): value is { clusters: ClusterSummary[] } {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { clusters?: unknown }).clusters) &&
    (value as { clusters: unknown[] }).clusters.every(isClusterSummary)
  );
}

/**
 * The clusters view's model. Counts come only from the server's list: an
 * event names one node, and without that cluster's whole table the console
 * cannot tell how a count moved (a re-registration of an UP node changes
 * nothing). So an event updates the cluster's revision and last-event time
 * at once and asks for the list again; a list older than an event already
 * seen asks again (the caller bounds how often).
 */
export class ClusterDirectory {
  private summaries = new Map<string, ClusterSummary>();
  /** The highest event revision seen per cluster since the last reset. */
  private seen = new Map<string, number>();

  list(): ClusterSummary[] {
    return [...this.summaries.values()].sort((a, b) => (a.clusterId < b.clusterId ? -1 : a.clusterId > b.clusterId ? 1 : 0));
  }

  get(clusterId: string): ClusterSummary | undefined {
    return this.summaries.get(clusterId);
  }

  /** Replaces the summaries; returns true when some cluster's list is older than an event already seen. */
  replace(clusters: readonly ClusterSummary[]): boolean {
    this.summaries = new Map(clusters.map((c) => [c.clusterId, { ...c }]));
    let behind = false;
    for (const [clusterId, revision] of this.seen) {
      const summary = this.summaries.get(clusterId);
      if (summary && summary.revision < revision) {
        behind = true;
        // Show what the event said until a newer list arrives.
        summary.revision = revision;
      }
    }
    return behind;
  }

  /** An event of a listed cluster: returns true when it was new (the counts need a fresh list). */
  noteEvent(event: MembershipEvent): boolean {
    const known = this.seen.get(event.clusterId) ?? 0;
    if (event.revision <= known) return false;
    this.seen.set(event.clusterId, event.revision);
    const summary = this.summaries.get(event.clusterId);
    if (summary) {
      summary.revision = Math.max(summary.revision, event.revision);
      if (summary.lastEventAt === undefined || Date.parse(event.at) > Date.parse(summary.lastEventAt)) summary.lastEventAt = event.at;
    }
    return true;
  }

  /** After a reconnect nothing seen before can be compared with the server's revisions (it may have restarted). */
  forgetSeen(): void {
    this.seen.clear();
  }
}
