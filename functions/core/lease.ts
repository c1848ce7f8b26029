/**
 * A node's lease, written in one place: every write of `expiresAt` but a
 * registration's new lease and a DOWN — its renewal (keepalive and binding a
 * connection share it, and so does a registration that changes nothing), its
 * cut when a bound connection drops, its extension by the sweeper's
 * self-preservation — the TTL that follows the lease, and the deadline
 * announcement the sweeper reads.
 *
 * Placeholders mean one thing in every expression here: `:now` is epoch
 * milliseconds (the unit of `expiresAt`), `:nowIso` the same moment as an
 * ISO string (the unit of `lastKeepaliveAt`).
 *
 * What a renewal costs. A keepalive is one conditional UpdateItem of the node
 * item and nothing else: it changes `expiresAt`, `lastKeepaliveAt` and `ttl`,
 * none of which is a key or a projected attribute of the `byExpiry` index, so
 * DynamoDB writes no index entry — one write unit for an item under 1 KB
 * ("Writes to a global secondary index": an index is written only when an
 * indexed key or projected attribute changes,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.Writes).
 * The bench measures it from DynamoDB's own ConsumedCapacity (`roster bench
 * --scenarios capacity`).
 *
 * Deadlines. The index is keyed by `sweepAt`, a deadline *announced* only by
 * the writes that can make a node due sooner than the sweeper expects:
 * registration (a new lease) and the lease cut of a dropped connection. A
 * renewal only moves the deadline later, which the sweeper learns when it
 * next reads the cluster (functions/core/sweeper.ts).
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Deps } from './deps.ts';
import { NodeNotFoundError, StaleIncarnationError } from './errors.ts';
import { effectiveStatus, nodeItemKey, nodeKey, sweepPartition, type NodeItem } from './model.ts';
import { isConditionFailure } from './conditions.ts';
import type { ItemUpdate } from './transactions.ts';

/**
 * The item's TTL (epoch seconds) for a moment `epochMs`: DynamoDB may delete
 * it only `downRetentionSeconds` after that, so an UP node is collected only
 * well after it would have been swept, and a DOWN one stays readable for the
 * retention. TTL is garbage collection only; it is never the clock.
 */
export const ttlAt = (deps: Deps, epochMs: number): number => Math.ceil(epochMs / 1000) + deps.config.downRetentionSeconds;

/**
 * The same TTL inside an update expression that sets `expiresAt = leaseMs + :now`:
 * `ttlAt(now + leaseMs)`, computed by DynamoDB from the item's own lease.
 */
export function renewedTtl(deps: Deps, now: number): { set: string; names: Record<string, string>; values: Record<string, unknown> } {
  return { set: '#ttl = leaseSeconds + :ttlBase', names: { '#ttl': 'ttl' }, values: { ':ttlBase': ttlAt(deps, now) } };
}

/** The attributes that put a node's deadline into the sparse `byExpiry` index. */
export function announcement(deps: Deps, clusterId: string, nodeId: string, deadline: number): { sweepPk: string; sweepAt: number } {
  return { sweepPk: sweepPartition(clusterId, nodeId, deps.config.sweepShards), sweepAt: deadline };
}

export interface RenewOptions {
  /** Renew only this incarnation (409 for another). */
  incarnation?: number;
  /** Also bind the node to this WebSocket connection. */
  bindConnection?: string;
}

/**
 * Renews a live node's lease: one conditional UpdateItem, no read, no event
 * (`REMOVE ev`), no revision. Fails with 404 when the node is unknown, DOWN,
 * or already past its lease (a lapsed lease is never revived: the client
 * registers again), and with 409 when `incarnation` is not the current one.
 *
 * `sweepPk` is set again so that a change of SWEEP_SHARDS moves every live
 * node within one renewal; setting it to the value it has costs nothing.
 */
export async function renewLease(deps: Deps, clusterId: string, nodeId: string, options: RenewOptions = {}): Promise<NodeItem> {
  const now = deps.now();
  const ttl = renewedTtl(deps, now);
  const values: Record<string, unknown> = {
    ':now': now,
    ':nowIso': new Date(now).toISOString(),
    ':sweepPk': sweepPartition(clusterId, nodeId, deps.config.sweepShards),
    ':up': 'UP',
    ...ttl.values,
  };
  let set = `expiresAt = leaseMs + :now, lastKeepaliveAt = :nowIso, ${ttl.set}, sweepPk = :sweepPk`;
  if (options.bindConnection !== undefined) {
    set += ', boundConn = :conn';
    values[':conn'] = options.bindConnection;
  }
  let condition = '#status = :up AND expiresAt > :now';
  if (options.incarnation !== undefined) {
    condition += ' AND incarnation = :inc';
    values[':inc'] = options.incarnation;
  }
  try {
    const out = await deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: nodeItemKey(clusterId, nodeId),
        UpdateExpression: `SET ${set} REMOVE ev, cutReason`,
        ConditionExpression: condition,
        ExpressionAttributeNames: { '#status': 'status', ...ttl.names },
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return out.Attributes as NodeItem;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const old = err.Item ? (unmarshall(err.Item) as NodeItem) : undefined;
    const key = nodeKey(clusterId, nodeId);
    if (!old || effectiveStatus(old, now).status !== 'UP') throw new NodeNotFoundError(key, { cause: err });
    throw new StaleIncarnationError(key, old.incarnation, options.incarnation ?? old.incarnation, { cause: err });
  }
}

/**
 * A registration that changes nothing a subscriber cares about: the lease is
 * renewed, with no revision and no event, conditional on the node still being
 * at the `revision` the registration read. The deadline only moves later, so
 * nothing is announced. A lease that lapsed since the read is not revived
 * silently: the condition fails and the caller's next attempt registers the
 * node again (with an event).
 */
export async function renewRegistration(deps: Deps, clusterId: string, nodeId: string, revision: number, now: number): Promise<NodeItem> {
  const ttl = renewedTtl(deps, now);
  const out = await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: nodeItemKey(clusterId, nodeId),
      UpdateExpression: `SET expiresAt = leaseMs + :now, lastKeepaliveAt = :nowIso, ${ttl.set}, sweepPk = :sweepPk REMOVE ev, cutReason`,
      ConditionExpression: 'revision = :rev AND #status = :up AND expiresAt > :now',
      ExpressionAttributeNames: { '#status': 'status', ...ttl.names },
      ExpressionAttributeValues: {
        ':now': now,
        ':nowIso': new Date(now).toISOString(),
        ':sweepPk': sweepPartition(clusterId, nodeId, deps.config.sweepShards),
        ':rev': revision,
        ':up': 'UP',
        ...ttl.values,
      },
      ReturnValues: 'ALL_NEW',
    }),
  );
  return out.Attributes as NodeItem;
}

/**
 * Cuts a bound node's lease to the disconnect grace when its connection
 * drops. The deadline moves earlier, so it is announced to the sweeper
 * (`sweepAt`), which otherwise would look at the cluster only when its old
 * deadline came. False when there was nothing to cut: the node is no longer
 * bound to this connection, not UP, or due sooner anyway.
 */
export async function cutLease(deps: Deps, connectionId: string, clusterId: string, nodeId: string): Promise<boolean> {
  const now = deps.now();
  const cut = now + deps.config.disconnectGraceSeconds * 1000;
  const { sweepPk, sweepAt } = announcement(deps, clusterId, nodeId, cut);
  try {
    await deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: nodeItemKey(clusterId, nodeId),
        UpdateExpression: 'SET expiresAt = :cut, cutReason = :reason, sweepPk = :sweepPk, sweepAt = :sweepAt REMOVE ev, boundConn',
        ConditionExpression: 'boundConn = :conn AND #status = :up AND expiresAt > :cut',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':cut': cut, ':reason': 'disconnected', ':conn': connectionId, ':up': 'UP', ':sweepPk': sweepPk, ':sweepAt': sweepAt },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * One more lease for a node past its deadline that the sweeper decided not
 * to declare down (self-preservation: functions/core/sweeper.ts). No event:
 * the node never went DOWN. But it takes a new `revision`: a reader that
 * listed the cluster meanwhile saw the node as expired, and the new revision
 * is what tells its next refresh (and, as a gap, a subscriber) to read the
 * list again. The extension is its own lease, or `graceMs` for a node whose
 * bound connection dropped (a crashed process is not kept UP for a lease).
 * The update, unsent: the sweeper sends it with its DOWN writes, in
 * transactions (transactions.ts).
 */
export function lapsedLeaseExtension(
  deps: Deps,
  node: { clusterId: string; nodeId: string; revision: number },
  revision: number,
  now: number,
  graceMs?: number,
): ItemUpdate {
  const ttl = renewedTtl(deps, now);
  return {
    TableName: deps.config.tableName,
    Key: nodeItemKey(node.clusterId, node.nodeId),
    UpdateExpression: `SET expiresAt = ${graceMs === undefined ? 'leaseMs' : ':grace'} + :now, ${ttl.set}, revision = :revision REMOVE ev`,
    ConditionExpression: 'revision = :rev AND #status = :up AND expiresAt <= :now',
    ExpressionAttributeNames: { '#status': 'status', ...ttl.names },
    ExpressionAttributeValues: {
      ':now': now,
      ...ttl.values,
      ':rev': node.revision,
      ':revision': revision,
      ':up': 'UP',
      ...(graceMs === undefined ? {} : { ':grace': graceMs }),
    },
  };
}
