/**
 * Self-preservation by renewal threshold, in the manner of Eureka's: when a
 * large share of the fleet stops renewing at once, the likelier cause is
 * between the nodes and the information center — a throttled stage (API
 * Gateway answers those 429s itself: no function ever sees them), a network
 * partition — not that they all died. The sweeper then holds their downs and
 * extends their leases instead of declaring them down en masse.
 *
 * What counts. A *lapse* is an UP node the sweeper finds past its lease
 * without its bound connection having dropped (a silent lapse: its
 * keepalives stopped arriving). A node whose bound connection dropped is not
 * counted and never held: the information center saw its socket close,
 * which a crash does and a throttled stage or a partition does not, so a
 * crash storm (a cluster restarting at once) is still reported within the
 * disconnect grace. A lapse stays counted for one lease of its node, until
 * the node renews, or past a hold, until it lapses again.
 *
 * The threshold, per scope: more than `percent` % of the scope's UP nodes
 * (those UP now, and those declared down within the window) and at least
 * `minNodes` of them lapsed within one lease. Two scopes:
 * - a cluster, on its own counts;
 * - the deployment, on the counts of the clusters that are not held on their
 *   own: a fault spread thinly over many small clusters (a throttled stage
 *   refusing a share of every cluster's keepalives) trips it where no single
 *   cluster would, while one cluster's own mass lapse does not hold the
 *   others.
 *
 * While a scope is over its threshold its lapses are held: each gets one
 * more lease (functions/core/sweeper.ts), and is looked at again when that
 * runs out. Live nodes renew within it (renewals resume), and leave the
 * count; dead ones lapse again. A hold therefore ends by itself once the
 * nodes still lapsing are few enough to be real failures — they are then
 * declared down — or, at the latest, `maxHoldMs` after it began: unlike
 * Eureka's self-preservation, it never freezes the list for good. A scope
 * whose hold ran out does not hold again until it has been under its
 * threshold once.
 *
 * This module only counts and decides; it reads nothing and writes nothing.
 * One instance per sweeper process (functions/core/sweeper.ts keeps it in
 * its state).
 */

export interface ThresholdSettings {
  /** Hold when more than this percentage of a scope's UP nodes lapsed within one lease… */
  percent: number;
  /** …and at least this many. */
  minNodes: number;
  /** The longest a scope holds (ms); 0 turns holding off. */
  maxHoldMs: number;
}

/** A lapse the watch keeps counting. */
interface Lapse {
  /** When it leaves the count unless the node lapses again (epoch ms): its last lapse plus its lease. */
  until: number;
  /** The node was declared down (it no longer counts among the UP nodes). */
  declared: boolean;
  /** The lease end a hold gave it: the node renewed if it is seen UP with a later one. */
  heldTo?: number;
}

interface ClusterCount {
  /** UP nodes at the last read of the cluster, due ones included. */
  up: number;
  lapses: Map<string, Lapse>;
  /** When its hold began (set while the cluster is over its threshold). */
  overSince?: number;
}

/** What one read of a cluster told the watch. */
export interface ClusterObservation {
  /** UP nodes, due ones included. */
  up: number;
  /** The silent lapses found due now (cut leases are not given). */
  lapsed: readonly { nodeId: string; leaseMs: number }[];
  /** The lease end of each UP node that is not due (only asked for when `watching` says so). */
  leaseEnds?: ReadonlyMap<string, number>;
}

/** Why a cluster's lapses are held, or that they are not. */
export type HoldDecision =
  | { hold: false; expired?: 'cluster' | 'deployment' }
  | { hold: true; scope: 'cluster' | 'deployment'; lapsed: number; base: number; since: number };

/** The counts of one scope. */
export interface ScopeCount {
  lapsed: number;
  /** UP nodes now, and those declared down within the window: what `lapsed` is a share of. */
  base: number;
}

export class LapseWatch {
  private readonly clusters = new Map<string, ClusterCount>();
  private deploymentOverSince?: number;
  private decisions = new Map<string, HoldDecision>();

  constructor(private readonly settings: ThresholdSettings) {}

  /** Whether the watch needs the lease ends of a cluster's live nodes (it counts lapses there). */
  watching(clusterId: string): boolean {
    return (this.clusters.get(clusterId)?.lapses.size ?? 0) > 0;
  }

  /** Takes in what a read of `clusterId` at `now` found. */
  observe(clusterId: string, now: number, seen: ClusterObservation): void {
    let count = this.clusters.get(clusterId);
    if (!count) this.clusters.set(clusterId, (count = { up: 0, lapses: new Map() }));
    count.up = seen.up;
    for (const [nodeId, lapse] of count.lapses) {
      const leaseEnd = seen.leaseEnds?.get(nodeId);
      // Renewed: a keepalive or a registration moved its lease past where a hold left it.
      if (leaseEnd !== undefined && leaseEnd > (lapse.heldTo ?? now)) count.lapses.delete(nodeId);
    }
    for (const { nodeId, leaseMs } of seen.lapsed) count.lapses.set(nodeId, { until: now + leaseMs, declared: false });
  }

  /** A cluster left the cluster list: nothing of it counts any more. */
  forget(clusterId: string): void {
    this.clusters.delete(clusterId);
  }

  /** The held node got one more lease, to `leaseEnd`. */
  held(clusterId: string, nodeId: string, leaseEnd: number): void {
    const lapse = this.clusters.get(clusterId)?.lapses.get(nodeId);
    if (lapse) lapse.heldTo = leaseEnd;
  }

  /** The node was declared down: it still counts as a lapse for its window, no longer as UP. */
  declared(clusterId: string, nodeId: string): void {
    const lapse = this.clusters.get(clusterId)?.lapses.get(nodeId);
    if (lapse) lapse.declared = true;
  }

  /** A cluster's counts now (lapses whose window passed are dropped). */
  private countOf(count: ClusterCount, now: number): ScopeCount {
    let lapsed = 0;
    let declared = 0;
    for (const [nodeId, lapse] of count.lapses) {
      if (lapse.until <= now) {
        count.lapses.delete(nodeId);
        continue;
      }
      lapsed++;
      if (lapse.declared) declared++;
    }
    return { lapsed, base: count.up + declared };
  }

  private over(c: ScopeCount): boolean {
    return c.lapsed >= this.settings.minNodes && c.lapsed * 100 > this.settings.percent * c.base;
  }

  /**
   * Decides, for every cluster the watch knows, whether its lapses are held
   * now; `decision` then answers per cluster. Called once per sweep, after
   * the sweep's reads were observed and before its lapses are settled.
   */
  evaluate(now: number): { deployment: ScopeCount; holding: string[] } {
    const { maxHoldMs } = this.settings;
    this.decisions = new Map();
    const deployment: ScopeCount = { lapsed: 0, base: 0 };
    const holding: string[] = [];
    const alone = new Map<string, ScopeCount>();
    for (const [clusterId, count] of this.clusters) {
      const c = this.countOf(count, now);
      if (!this.over(c)) {
        count.overSince = undefined;
        deployment.lapsed += c.lapsed;
        deployment.base += c.base;
        alone.set(clusterId, c);
        continue;
      }
      count.overSince ??= now;
      if (now - count.overSince < maxHoldMs) {
        this.decisions.set(clusterId, { hold: true, scope: 'cluster', lapsed: c.lapsed, base: c.base, since: count.overSince });
        holding.push(clusterId);
      } else this.decisions.set(clusterId, { hold: false, expired: 'cluster' });
    }
    if (!this.over(deployment)) this.deploymentOverSince = undefined;
    else {
      this.deploymentOverSince ??= now;
      const since = this.deploymentOverSince;
      const hold = now - since < maxHoldMs;
      for (const clusterId of alone.keys()) {
        this.decisions.set(clusterId, hold ? { hold: true, scope: 'deployment', lapsed: deployment.lapsed, base: deployment.base, since } : { hold: false, expired: 'deployment' });
        if (hold) holding.push(clusterId);
      }
    }
    return { deployment, holding };
  }

  /** Whether `clusterId`'s lapses are held, as the last `evaluate` decided. */
  decision(clusterId: string): HoldDecision {
    return this.decisions.get(clusterId) ?? { hold: false };
  }
}
