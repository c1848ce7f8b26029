/**
 * The sweeper: finds UP nodes past their lease and marks them DOWN.
 *
 * Where it looks. A keepalive writes only the node item (one write unit): it
 * never touches the expiry index, so the index cannot say when a renewed
 * lease runs out. The sweeper therefore reads a whole cluster (one Query of
 * its node items) when the cluster may have a node due, and learns every
 * node's current deadline from that read:
 *
 * - by its schedule: after reading a cluster it knows the earliest deadline
 *   of its UP nodes, and reads it again then. Renewals only move deadlines
 *   later, so nothing can come due before that — except through the two
 *   writes that bring a deadline forward:
 * - by announcement: a registration and the lease cut of a dropped connection
 *   set `sweepAt`, the key of the sparse `byExpiry` index; each sweep queries
 *   the deadlines that came due since the last one (a few seconds of
 *   look-back cover the index's eventual consistency) and reads those nodes
 *   alone (`readAnnounced`) — their clusters whole only when one lapsed
 *   silently, which self-preservation counts against the cluster's UP nodes;
 * - and once a minute, or after a failure, it reads every cluster, which
 *   rebuilds the schedule from scratch (a new process, a missed announcement).
 *
 * A healthy cluster is therefore read about once per (lease − keepalive
 * interval), not every sweep; docs/how-it-works/sweep-cost.md has the cost model against
 * the alternatives. Marking DOWN stays a conditional write
 * (`status = UP AND expiresAt <= now`), so a keepalive racing the sweeper
 * wins or loses cleanly.
 *
 * Empty clusters. A full sweep also sees which listed clusters have no node
 * left — no UP node and no DOWN node still within its retention (its `ttl`)
 * — and removes them from the `CLUSTERS` partition, so full sweeps and
 * `GET /v1/clusters` do not grow with every cluster id ever used. The
 * removal is conditional on the entry's `gen` (the count of registrations
 * that listed it, read at the start of the sweep) after a consistent
 * re-read of the cluster found it still empty: a registration that lists
 * the cluster again always writes its node first and `gen` after
 * (registry.ts, `rememberCluster`), so it either shows in the re-read, or
 * moves `gen` before the delete (which then fails), or re-lists the cluster
 * after it. The cluster's revision counter stays: a cluster that comes back
 * goes on from its last revision.
 *
 * Settling. A sweep reads its clusters (CLUSTER_READS_IN_FLIGHT at a
 * time), then settles every due node of every cluster at once: 1,000 nodes
 * of a storm are declared down in one sweep, not one after another. Each
 * cluster's due nodes take their revisions as one block
 * (`reserveRevisions`: one write of the cluster's `META` item per sweep,
 * not one per node — the counter is a single item, and a single item takes
 * at most 1,000 writes a second). The writes go in transactions of 100
 * (transactions.ts), SETTLE_TRANSACTIONS_IN_FLIGHT at a time: one request
 * per 100 nodes, not per node, which is what a small sweeper's CPU pays for.
 * Each DOWN write is still conditional on its own node, so a keepalive
 * racing the sweeper wins or loses cleanly: a transaction whose condition
 * failed for one node is sent again without it. A node whose write lost the
 * race leaves its revision of the block unused: a gap, as any lost race
 * always did (docs/how-it-works/architecture.md#revisions).
 *
 * Self-preservation by renewal threshold (self-preservation.ts). Before it
 * settles, a sweep counts the silent lapses (UP nodes past their lease with
 * their bound connection still up) per cluster and over the deployment;
 * where more than `selfPreservationPercent` % of the UP nodes and at least
 * `selfPreservationMinNodes` lapsed within one lease, it holds them — one
 * more lease each, with a warning and the `NodesHeld` metric — for at most
 * `selfPreservationMaxSeconds`. API Gateway's 429s and a partition between
 * the nodes and the information center never reach a function: counting
 * what lapses is how the sweeper tells them from deaths.
 *
 * Self-preservation after the sweeper's own failures. If the sweeper itself could not reach the store, or has
 * not completed a sweep for `sweeperAmnestySeconds`, nodes that expired in the
 * meantime most likely expired because *the information center* was out, not
 * because they died. The first sweep after such a gap therefore grants every
 * expired UP node one more lease instead of declaring it down. Nodes that are
 * alive keep alive within it; dead ones go DOWN one lease later. This avoids
 * the mass `NODE_DOWN` storm without Eureka's open-ended freeze.
 *
 * Amnesty lasts `AMNESTY_PERIOD_MS` of sweeps, not one: a lease can run out
 * just after the store is back (a keepalive stuck in the outage was granted
 * a lease that was mostly over when it landed), and its node needs a moment
 * to renew. A store that stops answering without failing — every request
 * hangs, then succeeds — counts as a failure too: a sweep one of whose
 * requests took longer than `SLOW_REQUEST_MS` met it, and keepalives were
 * stuck as well. (One request, not the whole sweep: a full sweep of a large
 * table takes its time without anything being wrong.)
 */
import { DeleteCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mapLimit } from './concurrency.ts';
import { isConditionFailure } from './conditions.ts';
import type { Deps } from './deps.ts';
import { lapsedLeaseExtension } from './lease.ts';
import { metrics } from './metrics.ts';
import { CLUSTERS_PK, EXPIRY_INDEX, NODE_SK_PREFIX, SWEEPER_KEY, clusterIndexKey, clusterPk, nodeItemKey, sweepPartitions } from './model.ts';
import { batchGetAll, queryAll, queryPages } from './query.ts';
import { downUpdate, reserveRevisions } from './registry.ts';
import { updateEach, type ItemUpdate, type UpdateOutcome } from './transactions.ts';
import { LapseWatch, type HoldDecision } from './self-preservation.ts';

export interface SweepResult {
  /** Nodes marked DOWN. */
  down: number;
  /** Nodes given one more lease by self-preservation (an amnesty, or a hold). */
  extended: number;
  /** Of those, the nodes held by the renewal threshold (a mass lapse). */
  held: number;
  /** The clusters whose lapses this sweep held, with the counts that crossed the threshold (at most 20 listed). */
  holding: { clusterId: string; scope: 'cluster' | 'deployment'; lapsed: number; base: number; since: string }[];
  /** Clusters whose hold ran out this sweep: their lapses were declared although the threshold was still crossed. */
  holdsExpired: string[];
  /** Candidates whose conditional write lost to a keepalive or another change. */
  raced: number;
  /** Whether this sweep was an amnesty sweep. */
  amnesty: boolean;
  /** Whether this sweep read every cluster (rather than the due ones). */
  full: boolean;
  /** Clusters whose node items this sweep read. */
  clustersRead: number;
  /** Node items DynamoDB read for it (UP and retained DOWN alike): what its read units are paid for. */
  itemsRead: number;
  /** Clusters with no node left that this sweep removed from the `CLUSTERS` partition (full sweeps only). */
  clustersRemoved: number;
  durationMs: number;
  /** The slowest store request of this sweep: over `SLOW_REQUEST_MS`, the next sweeps grant amnesty. */
  slowestRequestMs: number;
}

interface Candidate {
  clusterId: string;
  nodeId: string;
  revision: number;
  /** Its lease was cut to the disconnect grace when its bound connection dropped. */
  cut: boolean;
  /** Its lease (what an extension gives it). */
  leaseMs: number;
}

/** State a long-running sweeper keeps between sweeps (one per process). */
export interface SweeperState {
  /** True when a sweep failed since the last successful one: the store was unreachable. */
  sawStoreFailure: boolean;
  /** When this process last completed a sweep (epoch ms); the stored heartbeat is read only without it. */
  lastSweepAt?: number;
  /** When this process last wrote the heartbeat item. */
  lastHeartbeatAt?: number;
  /** Sweeps that start before this grant amnesty (the period after an outage). */
  amnestyUntil?: number;
  /** When this process last read every cluster. */
  lastFullSweepAt?: number;
  /** Per cluster, when to read it next: the earliest deadline of its UP nodes at the last read. */
  schedule: Map<string, number>;
  /** Announcements already acted on (`{pk}|{sk}|{sweepAt}` → sweepAt), for the look-back window. */
  seen: Map<string, number>;
  /** The end of the window the last announcement query covered. */
  announcedUpTo?: number;
  /** The lapses counted for the renewal threshold (made at the first sweep, from the configuration). */
  watch?: LapseWatch;
}

export const newSweeperState = (): SweeperState => ({ sawStoreFailure: false, schedule: new Map(), seen: new Map() });

/**
 * The heartbeat item is written at most this often: it only has to be fresher
 * than the amnesty window (minutes), and writing it every second would be most
 * of the sweeper's DynamoDB bill.
 */
export const HEARTBEAT_EVERY_MS = 10_000;

/** A store request slower than this met a store that was not answering (they take milliseconds): a store failure. */
export const SLOW_REQUEST_MS = 2_000;

/** How long sweeps keep granting amnesty once an outage is over: time for nodes whose leases ran out to renew. */
export const AMNESTY_PERIOD_MS = 5_000;

/** Every cluster is read at least this often, whatever the schedule says. */
export const FULL_SWEEP_EVERY_MS = 60_000;
/**
 * How far back each sweep looks for announced deadlines beyond the previous
 * sweep: the index is eventually consistent, and an announcement that became
 * visible late is still acted on.
 */
export const ANNOUNCEMENT_LOOKBACK_MS = 5_000;
/** Cluster queries in flight at once: 32 keep a full sweep of 1,000 clusters of 100 nodes at ~0.43 s of a 1 s sweep (`roster capacity`; 8 took 1.4 s). */
export const CLUSTER_READS_IN_FLIGHT = 32;
/**
 * Transactions of settlements (DOWN writes or extensions, up to 100 each:
 * transactions.ts) in flight at once. A storm's 1,000 downs are ten
 * transactions, three round trips; few enough that one sweep is not a burst
 * its cluster's partition throttles (a transactional write is two write
 * units an item, and a cluster's node items share a partition key).
 */
export const SETTLE_TRANSACTIONS_IN_FLIGHT = 4;
const PAGE = 100;

/** The listed clusters (the `CLUSTERS` partition), each with its listing count `gen` (absent on entries older than it). */
async function allClusters(deps: Deps): Promise<Map<string, number | undefined>> {
  const items = await queryAll(deps, {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': CLUSTERS_PK },
    ProjectionExpression: 'clusterId, gen',
  });
  return new Map(items.map((item) => [String(item.clusterId), item.gen === undefined ? undefined : Number(item.gen)]));
}

/** The nodes, by cluster, with a deadline announced in the look-back window that this process has not acted on yet. */
async function announcedNodes(deps: Deps, state: SweeperState, now: number): Promise<Map<string, Set<string>>> {
  const from = (state.announcedUpTo ?? now) - ANNOUNCEMENT_LOOKBACK_MS;
  for (const [key, at] of state.seen) if (at < from) state.seen.delete(key);
  const found = new Map<string, Set<string>>();
  for (const partition of sweepPartitions(deps.config.sweepShards)) {
    const input = {
      TableName: deps.config.tableName,
      IndexName: EXPIRY_INDEX,
      KeyConditionExpression: 'sweepPk = :p AND sweepAt BETWEEN :from AND :now',
      ExpressionAttributeValues: { ':p': partition, ':from': from, ':now': now },
      Limit: PAGE,
    };
    await queryPages(deps, input, (page) => {
      for (const item of page.Items ?? []) {
        const key = `${String(item.pk)}|${String(item.sk)}|${Number(item.sweepAt)}`;
        if (state.seen.has(key)) continue;
        state.seen.set(key, Number(item.sweepAt));
        const clusterId = String(item.clusterId);
        let nodes = found.get(clusterId);
        if (!nodes) found.set(clusterId, (nodes = new Set()));
        nodes.add(String(item.nodeId));
      }
    });
  }
  state.announcedUpTo = now;
  return found;
}

interface ClusterRead {
  due: Candidate[];
  /** The earliest deadline of its UP nodes that are not due. */
  next?: number;
  /** Node items read. */
  read: number;
  /** Whether it has a node at all: an UP one, or a DOWN one within its retention (`ttl` not passed). */
  holdsNodes: boolean;
  /** UP nodes, due ones included. */
  up: number;
  /** The lease end of every UP node that is not due, when asked for (the renewal threshold is counting lapses there). */
  leaseEnds?: Map<string, number>;
}

/** A node item that keeps its cluster listed: UP, or DOWN within its retention (`ttl`, epoch seconds; none is forever). */
const HOLDS_CLUSTER = '#status = :up OR attribute_not_exists(#ttl) OR #ttl > :nowSeconds';

/** The attributes a sweep reads of a node item. */
const NODE_PROJECTION = { ProjectionExpression: 'nodeId, #status, expiresAt, revision, cutReason, leaseMs, #ttl', ExpressionAttributeNames: { '#status': 'status', '#ttl': 'ttl' } };

/** Adds one node item to `read`: a due UP node is a candidate, a live one moves `next`. */
function take(deps: Deps, clusterId: string, item: Record<string, unknown>, now: number, read: ClusterRead): void {
  read.read++;
  if (item.status !== 'UP') {
    if (item.ttl === undefined || Number(item.ttl) * 1000 > now) read.holdsNodes = true;
    return;
  }
  read.holdsNodes = true;
  read.up++;
  const expiresAt = Number(item.expiresAt);
  if (expiresAt <= now) {
    const leaseMs = Number(item.leaseMs ?? deps.config.defaultLeaseSeconds * 1000);
    read.due.push({ clusterId, nodeId: String(item.nodeId), revision: Number(item.revision), cut: item.cutReason !== undefined, leaseMs });
  } else {
    read.next = read.next === undefined ? expiresAt : Math.min(read.next, expiresAt);
    read.leaseEnds?.set(String(item.nodeId), expiresAt);
  }
}

const emptyRead = (withLeaseEnds: boolean): ClusterRead => ({ due: [], read: 0, holdsNodes: false, up: 0, ...(withLeaseEnds ? { leaseEnds: new Map<string, number>() } : {}) });

/**
 * One cluster's UP nodes that are due, the earliest deadline of the others,
 * and whether any node holds the cluster. Eventually consistent: a stale
 * item shows an older (earlier) deadline, which at worst makes the cluster
 * due sooner; the DOWN write checks the real one, and a removal reads again,
 * consistently (`removeIfEmpty`). Every node item is returned, not only the
 * UP ones: a filter would not make the read cheaper (DynamoDB charges for
 * the items it reads, filtered or not), and the DOWN ones tell whether the
 * cluster is empty.
 */
async function readCluster(deps: Deps, clusterId: string, now: number, withLeaseEnds: boolean): Promise<ClusterRead> {
  const read = emptyRead(withLeaseEnds);
  const input = {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ...NODE_PROJECTION,
    ExpressionAttributeValues: { ':pk': clusterPk(clusterId), ':prefix': NODE_SK_PREFIX },
  };
  await queryPages(deps, input, (page) => {
    for (const item of page.Items ?? []) take(deps, clusterId, item, now, read);
  });
  return read;
}

/**
 * The announced nodes of a cluster, read alone (BatchGetItem, eventually
 * consistent, as a cluster read is): what an announcement asks is whether
 * *this* node is due. A cluster whose nodes register at a steady pace has an
 * announcement coming due every sweep; reading the whole cluster for each
 * read 10,000 items a second for a 10,000-node cluster's ramp, where these
 * reads take one item a node. `holdsNodes` is not known from it (only a full
 * sweep removes clusters, from its own reads).
 */
async function readAnnounced(deps: Deps, clusterId: string, nodeIds: ReadonlySet<string>, now: number): Promise<ClusterRead> {
  const read = emptyRead(false);
  const items = await batchGetAll(deps, [...nodeIds].map((nodeId) => nodeItemKey(clusterId, nodeId)), NODE_PROJECTION, `the announced nodes of ${clusterId}`);
  for (const item of items) take(deps, clusterId, item, now, read);
  read.holdsNodes = true;
  return read;
}

/**
 * Removes a cluster with no node left from the `CLUSTERS` partition, unless
 * a registration listed it again since `gen` was read: first a consistent
 * read of its node items (nothing may hold it), then a delete conditional
 * on `gen`. Returns whether it was removed.
 */
async function removeIfEmpty(deps: Deps, clusterId: string, gen: number | undefined, now: number): Promise<boolean> {
  let holds = false;
  const input = {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    FilterExpression: HOLDS_CLUSTER,
    ProjectionExpression: 'sk',
    ExpressionAttributeNames: { '#status': 'status', '#ttl': 'ttl' },
    ExpressionAttributeValues: { ':pk': clusterPk(clusterId), ':prefix': NODE_SK_PREFIX, ':up': 'UP', ':nowSeconds': Math.floor(now / 1000) },
    ConsistentRead: true,
  };
  await queryPages(deps, input, (page) => {
    if ((page.Items ?? []).length > 0) holds = true;
  });
  if (holds) return false;
  try {
    await deps.db.send(
      new DeleteCommand({
        TableName: deps.config.tableName,
        Key: clusterIndexKey(clusterId),
        ConditionExpression: gen === undefined ? 'attribute_not_exists(gen)' : 'gen = :gen',
        ExpressionAttributeValues: gen === undefined ? undefined : { ':gen': gen },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false; // a registration listed it again: it stays
    throw err;
  }
}

/**
 * What this sweep reads: on a full sweep every listed cluster (with its
 * `gen`), whole; else the clusters due by schedule, whole, and the nodes
 * announced in other clusters, alone (with no `gen`: only a full sweep
 * removes clusters).
 */
async function toRead(deps: Deps, state: SweeperState, now: number, full: boolean): Promise<{ whole: Map<string, number | undefined>; announced: Map<string, Set<string>> }> {
  if (full) {
    state.schedule.clear();
    return { whole: await allClusters(deps), announced: new Map() };
  }
  const whole = new Map([...state.schedule].filter(([, at]) => at <= now).map(([clusterId]) => [clusterId, undefined]));
  const announced = await announcedNodes(deps, state, now);
  for (const clusterId of whole.keys()) announced.delete(clusterId);
  return { whole, announced };
}

/** Whether the sweeper missed enough time that expiries may be the information center's fault. */
async function needsAmnesty(deps: Deps, state: SweeperState, now: number): Promise<boolean> {
  if (state.sawStoreFailure) return true;
  const window = deps.config.sweeperAmnestySeconds * 1000;
  if (state.lastSweepAt !== undefined) return now - state.lastSweepAt > window;
  const out = await deps.db.send(
    new GetCommand({ TableName: deps.config.tableName, Key: SWEEPER_KEY, ConsistentRead: true }),
  );
  const last = Number(out.Item?.lastSweepAt ?? NaN);
  // No heartbeat at all means a fresh table: nothing was missed. Where the sweeper shares a process with
  // the API (the local runtime), a process that starts means the API was down until now.
  return Number.isFinite(last) && (deps.config.sweeperAmnestyOnStart || now - last > window);
}

/** What the sweep does with one due node. */
interface Settlement {
  node: Candidate;
  /** The revision of its block it writes. */
  revision: number;
  /** One more lease (an amnesty, or a hold) rather than DOWN. */
  extend: boolean;
  /** The extension is a hold of the renewal threshold. */
  held: boolean;
}

/** The conditional write that settles one due node: DOWN, or one more lease. */
function settlementUpdate(deps: Deps, s: Settlement, now: number): ItemUpdate {
  const { node } = s;
  if (!s.extend) return downUpdate(deps, node, s.revision, now, 'lapsed');
  return lapsedLeaseExtension(deps, node, s.revision, now, node.cut ? deps.config.disconnectGraceSeconds * 1000 : undefined);
}

/**
 * Counts what one settlement's write did; a lost race (its condition failed)
 * is counted, not thrown. Returns whether the node is still UP with a
 * deadline this sweep did not see (extended, or changed by the winner of the
 * race).
 */
function settled(s: Settlement, outcome: UpdateOutcome, now: number, result: SweepResult, watch: LapseWatch): boolean {
  const { node } = s;
  if (outcome === 'condition-failed') {
    result.raced++;
    return true;
  }
  if (s.extend) {
    result.extended++;
    if (s.held) {
      result.held++;
      watch.held(node.clusterId, node.nodeId, now + node.leaseMs);
    } else metrics.count('LeasesExtended');
    return true;
  }
  result.down++;
  watch.declared(node.clusterId, node.nodeId);
  // The reason stored is the item's own (`if_not_exists(cutReason, …)`); the condition held the revision read, so the read's is it.
  metrics.count('NodesDown', { reason: node.cut ? 'disconnected' : 'expired' });
  return false;
}

/**
 * What becomes of a cluster's due nodes: on an amnesty sweep, every one is
 * extended; while the cluster is held, its silent lapses are (a node whose
 * bound connection dropped never is: the information center saw it go);
 * otherwise every one is declared down.
 */
function settlementsOf(due: readonly Candidate[], first: number, amnesty: boolean, decision: HoldDecision): Settlement[] {
  return due.map((node, i) => {
    const held = !amnesty && decision.hold && !node.cut;
    return { node, revision: first + i, extend: amnesty || held, held };
  });
}

/** The renewal threshold's settings, from the configuration. */
const thresholdOf = (deps: Deps) => ({
  percent: deps.config.selfPreservationPercent,
  minNodes: deps.config.selfPreservationMinNodes,
  maxHoldMs: deps.config.selfPreservationMaxSeconds * 1000,
});

/**
 * Reads what is due: the clusters due by schedule whole, the announced nodes
 * alone — unless the renewal threshold needs their cluster's count (it is
 * counting lapses there, or an announced node lapsed silently): that
 * cluster is read whole too.
 */
async function readDue(deps: Deps, state: SweeperState, watch: LapseWatch, started: number, full: boolean): Promise<{ whole: Map<string, number | undefined>; wholeReads: ClusterRead[]; alone: [string, ClusterRead][] }> {
  const { whole, announced } = await toRead(deps, state, started, full);
  for (const clusterId of announced.keys()) {
    if (watch.watching(clusterId)) {
      whole.set(clusterId, undefined);
      announced.delete(clusterId);
    }
  }
  const alone: [string, ClusterRead][] = [];
  const reads = await mapLimit([...announced], CLUSTER_READS_IN_FLIGHT, ([clusterId, nodeIds]) => readAnnounced(deps, clusterId, nodeIds, started));
  for (const [i, clusterId] of [...announced.keys()].entries()) {
    const read = reads[i] as ClusterRead;
    if (read.due.some((n) => !n.cut)) whole.set(clusterId, undefined);
    else alone.push([clusterId, read]);
  }
  const wholeReads = await mapLimit([...whole.keys()], CLUSTER_READS_IN_FLIGHT, (clusterId) => readCluster(deps, clusterId, started, watch.watching(clusterId)));
  return { whole, wholeReads, alone };
}

/** Reads what is due, settles the due nodes, and schedules each cluster's next read. */
async function sweepClusters(deps: Deps, state: SweeperState, result: SweepResult, started: number): Promise<void> {
  const watch = (state.watch ??= new LapseWatch(thresholdOf(deps)));
  const { whole, wholeReads, alone } = await readDue(deps, state, watch, started, result.full);
  const clusters = [...whole.keys()];
  result.clustersRead = clusters.length;
  const withDue: { clusterId: string; due: Candidate[] }[] = [];
  for (const [i, clusterId] of clusters.entries()) {
    const { due, read, holdsNodes, up, leaseEnds } = wholeReads[i] as ClusterRead;
    result.itemsRead += read;
    watch.observe(clusterId, started, { up, lapsed: due.filter((n) => !n.cut), leaseEnds });
    // Only a full sweep knows every listed cluster's `gen`; an amnesty sweep changes nothing it need not.
    if (!holdsNodes && result.full && !result.amnesty) {
      if (await removeIfEmpty(deps, clusterId, whole.get(clusterId), started)) {
        result.clustersRemoved++;
        watch.forget(clusterId);
        metrics.count('ClustersRemoved');
      }
    }
    if (due.length > 0) withDue.push({ clusterId, due });
  }
  // Nodes read alone: their due ones are cut leases (a silent lapse had its cluster read whole), which the threshold does not count.
  for (const [clusterId, { due, read }] of alone) {
    result.itemsRead += read;
    if (due.length > 0) withDue.push({ clusterId, due });
  }
  watch.evaluate(started);

  // One block of revisions per cluster (one write of its counter), then every node's write, in transactions of 100.
  const nowIso = new Date(started).toISOString();
  const settlements = (
    await mapLimit(withDue, CLUSTER_READS_IN_FLIGHT, async ({ clusterId, due }) => {
      const decision = watch.decision(clusterId);
      if (decision.hold && !result.amnesty && due.some((n) => !n.cut) && result.holding.length < 20) {
        result.holding.push({ clusterId, scope: decision.scope, lapsed: decision.lapsed, base: decision.base, since: new Date(decision.since).toISOString() });
      }
      if (!decision.hold && decision.expired && !result.amnesty && due.some((n) => !n.cut)) result.holdsExpired.push(clusterId);
      const first = await reserveRevisions(deps, clusterId, due.length, nowIso);
      return settlementsOf(due, first, result.amnesty, decision);
    })
  ).flat();
  const now = deps.now();
  const unseen = new Set<string>();
  // A chunk that failed leaves its nodes as they were: the next sweep reads them again. The others are counted,
  // and the sweep then fails with the first error.
  const { outcomes, failure } = await updateEach(deps, settlements.map((s) => settlementUpdate(deps, s, now)), SETTLE_TRANSACTIONS_IN_FLIGHT);
  for (const [i, s] of settlements.entries()) {
    const outcome = outcomes[i];
    if (outcome !== undefined && settled(s, outcome, now, result, watch)) unseen.add(s.node.clusterId);
  }
  if (result.held > 0) metrics.count('NodesHeld', {}, result.held);
  if (failure !== undefined) throw failure;

  const nextSweep = started + deps.config.sweepIntervalSeconds * 1000;
  for (const [i, clusterId] of clusters.entries()) {
    const { next } = wholeReads[i] as ClusterRead;
    // A node whose new deadline this sweep did not see (extended, or a race lost to a renewal or a
    // re-registration) has its cluster read again at the next sweep; otherwise the cluster is read at
    // its earliest deadline, or, with no UP node left, not until an announcement or the next full sweep.
    if (unseen.has(clusterId)) state.schedule.set(clusterId, nextSweep);
    else if (next !== undefined) state.schedule.set(clusterId, next);
    else state.schedule.delete(clusterId);
  }
  // A node read alone brings its cluster's next read forward to its own deadline, never later: the
  // cluster's other nodes are as the schedule last saw them.
  for (const [clusterId, { next }] of alone) {
    const at = unseen.has(clusterId) ? nextSweep : next;
    const scheduled = state.schedule.get(clusterId);
    if (at !== undefined && (scheduled === undefined || at < scheduled)) state.schedule.set(clusterId, at);
  }
}

/** `deps` whose store requests report how long each took. */
function timingRequests(deps: Deps, took: (ms: number) => void): Deps {
  const send = deps.db.send.bind(deps.db) as (command: never) => Promise<unknown>;
  const timed = async (command: never): Promise<unknown> => {
    const start = deps.now();
    try {
      return await send(command);
    } finally {
      took(deps.now() - start);
    }
  };
  return { ...deps, db: Object.create(deps.db, { send: { value: timed } }) as Deps['db'] };
}

/** Runs one sweep. Throws if the store is unreachable (and remembers it in `state`). */
export async function sweep(untimed: Deps, state: SweeperState = newSweeperState()): Promise<SweepResult> {
  let slowest = 0;
  const result: SweepResult = {
    down: 0,
    extended: 0,
    held: 0,
    holding: [],
    holdsExpired: [],
    raced: 0,
    amnesty: false,
    full: false,
    clustersRead: 0,
    itemsRead: 0,
    clustersRemoved: 0,
    durationMs: 0,
    slowestRequestMs: 0,
  };
  const deps = timingRequests(untimed, (ms) => {
    slowest = Math.max(slowest, ms);
    // The store hung under this very sweep: what it reads now is what the outage left behind
    // (leases that ran out while keepalives were stuck), so from here on it extends, not declares.
    if (ms > SLOW_REQUEST_MS && !result.amnesty) {
      result.amnesty = true;
      state.amnestyUntil = untimed.now() + AMNESTY_PERIOD_MS;
    }
  });
  const started = deps.now();
  try {
    result.amnesty = started < (state.amnestyUntil ?? 0);
    if (!result.amnesty && (await needsAmnesty(deps, state, started))) {
      result.amnesty = true;
      state.amnestyUntil = started + AMNESTY_PERIOD_MS;
    }
    result.full = result.amnesty || state.lastFullSweepAt === undefined || started - state.lastFullSweepAt >= FULL_SWEEP_EVERY_MS;
    await sweepClusters(deps, state, result, started);
    if (result.full) {
      state.lastFullSweepAt = started;
      // A full sweep saw everything up to now; announcements from here on are new.
      state.announcedUpTo = started;
    }
    const finished = deps.now();
    if (state.lastHeartbeatAt === undefined || finished - state.lastHeartbeatAt >= HEARTBEAT_EVERY_MS || result.amnesty) {
      await deps.db.send(new PutCommand({ TableName: deps.config.tableName, Item: { ...SWEEPER_KEY, lastSweepAt: finished } }));
      state.lastHeartbeatAt = finished;
    }
    state.lastSweepAt = finished;
    result.slowestRequestMs = slowest;
    state.sawStoreFailure = slowest > SLOW_REQUEST_MS;
  } catch (err) {
    state.sawStoreFailure = true;
    throw err;
  }
  result.durationMs = deps.now() - started;
  metrics.observe('SweepDuration', result.durationMs);
  if (result.down + result.extended > 0) metrics.count('NodesSwept', {}, result.down + result.extended);
  return result;
}

/** When the last sweep completed (epoch ms), for the health endpoint. */
export async function lastSweepAt(deps: Deps): Promise<number | undefined> {
  const out = await deps.db.send(new GetCommand({ TableName: deps.config.tableName, Key: SWEEPER_KEY }));
  const value = Number(out.Item?.lastSweepAt ?? NaN);
  return Number.isFinite(value) ? value : undefined;
}
