/**
 * WebSocket connections: their records, subscriptions and connection-bound
 * liveness.
 *
 * A connection record (`WS#{id}`) lists the clusters it subscribes to and the
 * node it binds; a subscription record per cluster (`S#{clusterId}` /
 * `WS#{id}`) is what the fan-out queries (subscriber-cache.ts). Both expire
 * on their own shortly after API Gateway's two-hour connection limit.
 *
 * Every change to a cluster's subscriptions is followed by a bump of the
 * cluster's subscriptions version, so the fan-out can keep a cluster's list
 * between events and read it again only when the version moved. The version
 * is counted in SUBSCRIPTIONS_VERSION_SHARDS items (`S#{clusterId}` /
 * `VERSION`, `VERSION#1`…), each change in its connection's shard: one item
 * takes at most 1,000 writes a second, and 10,000 subscribers connecting (or
 * dropping) at once would pass that on a single one. The version is the sum
 * of the shards: every bump grows it, so "the version moved" is still one
 * number.
 */
import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { takeAction, type ActionCount } from './action-limit.ts';
import { mapLimit } from './concurrency.ts';
import { isConditionFailure } from './conditions.ts';
import type { Deps } from './deps.ts';
import { ValidationError } from './errors.ts';
import { cutLease, renewLease } from './lease.ts';
import { CONNECTION_SK, connectionPk, subscriptionPk, subscriptionSk, subscriptionsVersionKey, versionShardOf } from './model.ts';

/** API Gateway closes every WebSocket connection after two hours; records outlive that a little. */
export const CONNECTION_TTL_SECONDS = 2 * 3600 + 600;
/** Subscriptions one connection may hold: bounds the fan-out cost one client can cause. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;

export interface ConnectionRecord extends ActionCount {
  pk: string;
  sk: string;
  connectionId: string;
  clusters?: Set<string>;
  clusterId?: string;
  nodeId?: string;
  connectedAt: number;
  /** The connection asked for batched messages (`batch=true` on connect; docs/running-nodes/wire-batching.md). */
  batch?: boolean;
  ttl: number;
}

const ttlFrom = (now: number): number => Math.ceil(now / 1000) + CONNECTION_TTL_SECONDS;

/**
 * `$connect`: subscribes to `clusterId` and, with `nodeId`, binds the node.
 * Binding is a sign of life: it renews the node's lease. Binding a node that
 * is not registered (or is down) is refused with 404 — register first.
 * With `batch`, the connection takes batched messages for every cluster it
 * subscribes to, now or later.
 */
export async function connect(
  deps: Deps,
  connectionId: string,
  params: { clusterId?: string; nodeId?: string; incarnation?: number; batch?: boolean },
): Promise<void> {
  const { clusterId, nodeId, incarnation } = params;
  const batch = params.batch === true ? true : undefined;
  if (nodeId !== undefined && clusterId === undefined) {
    throw new ValidationError('nodeId needs clusterId: a connection binds a node of the cluster it subscribes to');
  }
  if (incarnation !== undefined && nodeId === undefined) {
    throw new ValidationError('incarnation needs nodeId: it names the incarnation being bound');
  }
  const now = deps.now();
  // Binding renews the lease exactly as a keepalive does, and ties it to this connection.
  if (clusterId !== undefined && nodeId !== undefined) await renewLease(deps, clusterId, nodeId, { incarnation, bindConnection: connectionId });
  await deps.db.send(
    new PutCommand({
      TableName: deps.config.tableName,
      Item: {
        pk: connectionPk(connectionId),
        sk: CONNECTION_SK,
        connectionId,
        clusters: clusterId !== undefined ? new Set([clusterId]) : undefined,
        clusterId,
        nodeId,
        connectedAt: now,
        batch,
        ttl: ttlFrom(now),
      },
    }),
  );
  if (clusterId !== undefined) await putSubscription(deps, connectionId, clusterId, now, batch);
}

/** The record the fan-out reads: it carries what the fan-out needs per connection (its age, whether it batches). */
async function putSubscription(deps: Deps, connectionId: string, clusterId: string, connectedAt: number, batch: true | undefined): Promise<void> {
  await deps.db.send(
    new PutCommand({
      TableName: deps.config.tableName,
      Item: {
        pk: subscriptionPk(clusterId),
        sk: subscriptionSk(connectionId),
        connectionId,
        connectedAt,
        batch,
        ttl: ttlFrom(connectedAt),
      },
    }),
  );
  await bumpSubscriptions(deps, clusterId, connectionId);
}

/**
 * Counts a change to a cluster's subscriptions, in the shard of the
 * connection that changed. It comes after the change, so a reader that sees
 * the new version and then queries sees the change too; a writer that fails
 * in between has not acknowledged its change (subscribe answers with an
 * error), and a removal it left uncounted costs one post that answers 410,
 * which removes the subscription again, counted.
 */
async function bumpSubscriptions(deps: Deps, clusterId: string, connectionId: string): Promise<void> {
  await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: subscriptionsVersionKey(clusterId, versionShardOf(connectionId)),
      UpdateExpression: 'ADD #version :one',
      ExpressionAttributeNames: { '#version': 'version' },
      ExpressionAttributeValues: { ':one': 1 },
    }),
  );
}

async function getConnection(deps: Deps, connectionId: string): Promise<ConnectionRecord | undefined> {
  const out = await deps.db.send(
    new GetCommand({
      TableName: deps.config.tableName,
      Key: { pk: connectionPk(connectionId), sk: CONNECTION_SK },
      ConsistentRead: true,
    }),
  );
  return out.Item as ConnectionRecord | undefined;
}


/** Adds `clusterId` to, or deletes it from, the connection's set of clusters under `condition`: subscribe and unsubscribe change that one set alike. */
async function changeClusterSet(
  deps: Deps,
  connectionId: string,
  change: 'ADD' | 'DELETE',
  clusterId: string,
  condition: string,
  values: Record<string, unknown> = {},
): Promise<void> {
  await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: { pk: connectionPk(connectionId), sk: CONNECTION_SK },
      // CLUSTERS is a DynamoDB reserved word: it must go through an expression attribute name.
      UpdateExpression: `${change} #clusters :c`,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#clusters': 'clusters' },
      ExpressionAttributeValues: { ':c': new Set([clusterId]), ...values },
    }),
  );
}

export async function subscribe(deps: Deps, connectionId: string, clusterId: string): Promise<void> {
  const conn = await getConnection(deps, connectionId);
  if (!conn) throw new ValidationError('unknown connection');
  await takeAction(deps, connectionId, conn);
  try {
    await changeClusterSet(
      deps,
      connectionId,
      'ADD',
      clusterId,
      'attribute_exists(pk) AND (attribute_not_exists(#clusters) OR size(#clusters) < :max OR contains(#clusters, :id))',
      { ':max': MAX_SUBSCRIPTIONS_PER_CONNECTION, ':id': clusterId },
    );
  } catch (err) {
    if (isConditionFailure(err)) {
      throw new ValidationError(`a connection may subscribe to at most ${MAX_SUBSCRIPTIONS_PER_CONNECTION} clusters`);
    }
    throw err;
  }
  await putSubscription(deps, connectionId, clusterId, conn.connectedAt, conn.batch === true ? true : undefined);
}

export async function unsubscribe(deps: Deps, connectionId: string, clusterId: string): Promise<void> {
  await takeAction(deps, connectionId);
  await changeClusterSet(deps, connectionId, 'DELETE', clusterId, 'attribute_exists(pk)').catch((err: unknown) => {
    if (!isConditionFailure(err)) throw err;
  });
  await forgetSubscription(deps, clusterId, connectionId);
}

/**
 * `$disconnect` (and a 410 found by the fan-out): removes the connection's
 * records and, if it bound a node, cuts that node's lease to the disconnect
 * grace period. The cut is conditional on this connection still being the
 * node's binding, so a node that already reconnected is left alone.
 *
 * The cut goes out beside the clean-up, not after it: the grace runs from
 * the cut, so every round trip before it delays the node's `NODE_DOWN` (a
 * crashed host's hundred connections drop at once, and each cut waits for
 * its own). Both are awaited, and a failure of either fails the invocation.
 */
export async function disconnect(deps: Deps, connectionId: string): Promise<{ cutLease: boolean }> {
  const conn = await getConnection(deps, connectionId);
  if (!conn) return { cutLease: false };
  const { clusterId, nodeId } = conn;
  const [cut, cleanup] = await Promise.allSettled([
    clusterId !== undefined && nodeId !== undefined ? cutLease(deps, connectionId, clusterId, nodeId) : Promise.resolve(false),
    removeConnection(deps, connectionId, [...(conn.clusters ?? [])]),
  ]);
  if (cut.status === 'rejected') throw cut.reason;
  if (cleanup.status === 'rejected') throw cleanup.reason;
  return { cutLease: cut.value };
}

/** Deletes a connection's record and its subscriptions, and tells each cluster's subscriber cache. */
async function removeConnection(deps: Deps, connectionId: string, clusters: string[]): Promise<void> {
  const deletes = [
    { pk: connectionPk(connectionId), sk: CONNECTION_SK },
    ...clusters.map((c) => ({ pk: subscriptionPk(c), sk: subscriptionSk(connectionId) })),
  ];
  for (let i = 0; i < deletes.length; i += 25) {
    let requests: Record<string, unknown>[] | undefined = deletes
      .slice(i, i + 25)
      .map((Key) => ({ DeleteRequest: { Key } }));
    // BatchWrite may leave items unprocessed under load; retry those until done.
    for (let attempt = 0; requests && requests.length > 0 && attempt < 5; attempt++) {
      const out = await deps.db.send(new BatchWriteCommand({ RequestItems: { [deps.config.tableName]: requests } }));
      requests = out.UnprocessedItems?.[deps.config.tableName] as Record<string, unknown>[] | undefined;
    }
  }
  await mapLimit(clusters, 10, (clusterId) => bumpSubscriptions(deps, clusterId, connectionId));
}

/**
 * Removes one subscription record. The fan-out uses it on a 410, beside
 * `disconnect`: a subscription can outlive its connection record (they expire
 * separately), and then only this removes it.
 */
export async function forgetSubscription(deps: Deps, clusterId: string, connectionId: string): Promise<void> {
  await deps.db.send(
    new DeleteCommand({ TableName: deps.config.tableName, Key: { pk: subscriptionPk(clusterId), sk: subscriptionSk(connectionId) } }),
  );
  await bumpSubscriptions(deps, clusterId, connectionId);
}
