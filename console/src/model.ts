/**
 * What the console knows. The node table keeps every record the server
 * returns with `?status=all`, DOWN nodes included, because an operator wants
 * to see who went down and why. Its revision rules (snapshot plus deltas,
 * gaps, resets) are the SDK's: both are views of the contract's
 * `RevisionedMap` (contract/revisioned-map.ts).
 *
 * No DOM here: the module is unit-tested under Node.
 */
import { RevisionedMap, type ClusterSummary, type RevisionedMapOptions, type MembershipEvent, type Node, type NodeList } from '@roster/contract';

export { isClusterList, isClusterSummary, type ClusterSummary } from '@roster/contract';

export interface TableEventOutcome {
  /** False for a duplicate or a state older than the one held. */
  applied: boolean;
  /** A revision has been missing for longer than the wait for a late event: resync. */
  gap: boolean;
}

export interface TableSnapshotOutcome {
  /** The server's revision went backwards: it lost its state, and nothing held was kept. */
  reset: boolean;
  /** Node ids whose record was added, changed or removed by the snapshot. */
  changed: string[];
}

export class ClusterTable {
  private readonly records: RevisionedMap;

  constructor(
    readonly clusterId: string,
    options: RevisionedMapOptions = {},
  ) {
    this.records = new RevisionedMap(clusterId, options);
  }

  /** Whether a list has been applied (before that, the table only holds what events said). */
  get synced(): boolean {
    return this.records.hasView;
  }

  /** The highest cluster revision seen (0 before anything was seen). */
  get revision(): number {
    return this.records.revision;
  }

  get(nodeId: string): Node | undefined {
    return this.records.get(nodeId);
  }

  /** Every record, sorted by node id. Shared until the next change: do not mutate. */
  nodes(): readonly Node[] {
    return this.records.list();
  }

  counts(): { up: number; down: number } {
    return this.records.counts();
  }

  /** True, once, when a revision skipped by an event is still missing after the wait (contract/revisioned-map.ts, rule 2): resync. */
  checkGap(): boolean {
    return this.records.checkGap();
  }

  applyEvent(event: MembershipEvent): TableEventOutcome {
    const { applied, gap } = this.records.applyEvent(event);
    return { applied, gap };
  }

  /** Call right before fetching the list: events from now on are applied again on top of it. */
  beginSnapshot(): void {
    this.records.beginSnapshot();
  }

  /** The fetch failed: keep the table as it is (a failed refresh never empties it). */
  cancelSnapshot(): void {
    this.records.cancelSnapshot();
  }

  applySnapshot(list: NodeList): TableSnapshotOutcome {
    const { reset, changes } = this.records.applySnapshot(list);
    return { reset, changed: changes.map((c) => c.nodeId) };
  }
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
