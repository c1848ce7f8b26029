/**
 * A node's lease, written in one place: its renewal (keepalive and binding a
 * connection share it), the TTL that follows the lease, and the deadline
 * announcement the sweeper reads.
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
