/**
 * The sweeper: finds UP nodes past their lease and marks them DOWN.
 *
 * It reads only the sparse `byExpiry` index (UP nodes, sorted by expiry), so a
 * sweep costs a handful of queries however many healthy nodes there are.
 *
 * Self-preservation. If the sweeper itself could not reach the store, or has
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
 * hangs, then succeeds — counts as a failure too: a sweep slower than
 * `SLOW_SWEEP_MS` met it, and keepalives were stuck as well.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Deps } from './deps.ts';
import { metrics } from './metrics.ts';
import { EXPIRY_INDEX, SWEEPER_KEY, nodeItemKey, sweepPartitions } from './model.ts';
import { isConditionFailure, markDown, nextRevision } from './registry.ts';

export interface SweepResult {
  /** Nodes marked DOWN. */
  down: number;
  /** Nodes given one more lease by self-preservation. */
  extended: number;
  /** Candidates whose conditional write lost to a keepalive or another change. */
  raced: number;
  /** Whether this sweep was an amnesty sweep. */
  amnesty: boolean;
  durationMs: number;
}

interface Candidate {
  clusterId: string;
  nodeId: string;
  revision: number;
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
}

export const newSweeperState = (): SweeperState => ({ sawStoreFailure: false });

/**
 * The heartbeat item is written at most this often: it only has to be fresher
 * than the amnesty window (minutes), and writing it every second would be most
 * of the sweeper's DynamoDB bill.
 */
export const HEARTBEAT_EVERY_MS = 10_000;

/** A sweep slower than this met a store that was not answering (its requests take milliseconds): a store failure. */
export const SLOW_SWEEP_MS = 2_000;

/** How long sweeps keep granting amnesty once an outage is over: time for nodes whose leases ran out to renew. */
export const AMNESTY_PERIOD_MS = 5_000;

const PAGE = 100;

async function expiredCandidates(deps: Deps, now: number): Promise<Candidate[]> {
  const found: Candidate[] = [];
  for (const partition of sweepPartitions(deps.config.sweepShards)) {
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await deps.db.send(
        new QueryCommand({
          TableName: deps.config.tableName,
          IndexName: EXPIRY_INDEX,
          KeyConditionExpression: 'sweepPk = :p AND expiresAt <= :now',
          ExpressionAttributeValues: { ':p': partition, ':now': now },
          Limit: PAGE,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        found.push({ clusterId: String(item.clusterId), nodeId: String(item.nodeId), revision: Number(item.revision) });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
  }
  return found;
}

/**
 * One more lease for an expired node (self-preservation). No event: the node
 * never went DOWN. But it takes a new revision: a reader that listed the
 * cluster meanwhile saw the node as expired, and the new revision is what
 * tells its next refresh (and, as a gap, a subscriber) to read the list again.
 */
async function extendLease(deps: Deps, node: Candidate, now: number): Promise<void> {
  const revision = await nextRevision(deps, node.clusterId, new Date(now).toISOString());
  await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: nodeItemKey(node.clusterId, node.nodeId),
      UpdateExpression: 'SET expiresAt = leaseMs + :now, #ttl = leaseSeconds + :ttlBase, revision = :revision REMOVE ev',
      ConditionExpression: 'revision = :rev AND #status = :up AND expiresAt <= :now',
      ExpressionAttributeNames: { '#status': 'status', '#ttl': 'ttl' },
      ExpressionAttributeValues: {
        ':now': now,
        ':ttlBase': Math.ceil(now / 1000) + deps.config.downRetentionSeconds,
        ':rev': node.revision,
        ':revision': revision,
        ':up': 'UP',
      },
    }),
  );
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

/** Runs one sweep. Throws if the store is unreachable (and remembers it in `state`). */
export async function sweep(deps: Deps, state: SweeperState = newSweeperState()): Promise<SweepResult> {
  const started = deps.now();
  const result: SweepResult = { down: 0, extended: 0, raced: 0, amnesty: false, durationMs: 0 };
  try {
    result.amnesty = started < (state.amnestyUntil ?? 0);
    if (!result.amnesty && (await needsAmnesty(deps, state, started))) {
      result.amnesty = true;
      state.amnestyUntil = started + AMNESTY_PERIOD_MS;
    }
    const candidates = await expiredCandidates(deps, started);
    for (const node of candidates) {
      const now = deps.now();
      try {
        if (result.amnesty) {
          await extendLease(deps, node, now);
          result.extended++;
          metrics.count('LeasesExtended');
        } else {
          const revision = await nextRevision(deps, node.clusterId, new Date(now).toISOString());
          const reason = await markDown(deps, node, revision, now, 'expiry');
          result.down++;
          metrics.count('NodesDown', { reason });
        }
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
        result.raced++;
      }
    }
    const finished = deps.now();
    if (state.lastHeartbeatAt === undefined || finished - state.lastHeartbeatAt >= HEARTBEAT_EVERY_MS || result.amnesty) {
      await deps.db.send(new PutCommand({ TableName: deps.config.tableName, Item: { ...SWEEPER_KEY, lastSweepAt: finished } }));
      state.lastHeartbeatAt = finished;
    }
    state.lastSweepAt = finished;
    state.sawStoreFailure = finished - started > SLOW_SWEEP_MS;
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
