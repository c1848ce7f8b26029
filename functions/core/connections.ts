/**
 * WebSocket connections: subscriptions and connection-bound liveness.
 *
 * A connection record (`WS#{id}`) lists the clusters it subscribes to and the
 * node it binds; a subscription record per cluster (`S#{clusterId}` /
 * `WS#{id}`) is what the fan-out queries. Both expire on their own shortly
 * after API Gateway's two-hour connection limit.
 *
 * Every change to a cluster's subscriptions is followed by a bump of the
 * cluster's subscriptions version, so the fan-out can keep a cluster's list
 * between events and read it again only when the version moved
 * (`SubscriberCache`): one small consistent read of the version per event
 * instead of a query of every subscriber. The version is counted in
 * SUBSCRIPTIONS_VERSION_SHARDS items (`S#{clusterId}` / `VERSION`,
 * `VERSION#1`…), each change in its connection's shard: one item takes at
 * most 1,000 writes a second, and 10,000 subscribers connecting (or dropping)
 * at once would pass that on a single one. The version is the sum of the
 * shards: every bump grows it, so "the version moved" is still one number.
 */
import { BatchGetCommand, type BatchGetCommandOutput, BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { queryPages } from './query.ts';
import type { Deps } from './deps.ts';
import { ThrottledError, ValidationError } from './errors.ts';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  CONNECTION_SK,
  SUBSCRIPTIONS_VERSION_SHARDS,
  SUBSCRIPTION_SK_PREFIX,
  connectionPk,
  subscriptionPk,
  subscriptionSk,
  subscriptionsVersionKey,
  versionShardOf,
} from './model.ts';
import { mapLimit } from './concurrency.ts';
import { isConditionFailure } from './conditions.ts';
import { cutLease, renewLease } from './lease.ts';
import { ledgerRefOf, type LedgerRef } from './fanout-ledger.ts';

/** API Gateway closes every WebSocket connection after two hours; records outlive that a little. */
export const CONNECTION_TTL_SECONDS = 2 * 3600 + 600;
/** Subscriptions one connection may hold: bounds the fan-out cost one client can cause. */
export const MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;
/**
 * Subscribe and unsubscribe actions one connection may take per window. Each
 * one writes two items, so a client looping on them would cost writes without
 * end. The limit lets a client fill its MAX_SUBSCRIPTIONS_PER_CONNECTION at
 * once (the console subscribes to every listed cluster) and cuts a loop to
 * two actions a second. The stage throttling bounds the whole API; this
 * bounds one connection.
 */
export const ACTION_LIMIT = { actions: 120, windowSeconds: 60 } as const;

export interface ConnectionRecord {
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
  /** The action-limit window the count is for (epoch ms / window length). */
  actionWindow?: number;
  /** Subscribe and unsubscribe actions taken in `actionWindow`. */
  actions?: number;
}

export interface Subscriber {
  connectionId: string;
  connectedAt: number;
  /** Takes several events of one cluster in one `EVENTS` message. */
  batch: boolean;
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

/**
 * Counts one subscribe or unsubscribe action against the connection's limit,
 * atomically in the connection record: a conditional increment within the
 * current window, or a conditional start of a new window. Two concurrent
 * actions can never both take the last one. Throws `ThrottledError` past
 * the limit, `ValidationError` for an unknown connection.
 *
 * `known` (the record, when the caller has read it) picks the likely branch
 * first, so an action costs one write.
 */
export async function takeAction(deps: Deps, connectionId: string, known?: ConnectionRecord): Promise<void> {
  const window = Math.floor(deps.now() / (ACTION_LIMIT.windowSeconds * 1000));
  const key = { pk: connectionPk(connectionId), sk: CONNECTION_SK };
  const increment = () =>
    deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: key,
        UpdateExpression: 'SET actions = actions + :one',
        ConditionExpression: 'actionWindow = :w AND actions < :max',
        ExpressionAttributeValues: { ':one': 1, ':w': window, ':max': ACTION_LIMIT.actions },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  const startWindow = () =>
    deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: key,
        UpdateExpression: 'SET actionWindow = :w, actions = :one',
        ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(actionWindow) OR actionWindow < :w)',
        ExpressionAttributeValues: { ':one': 1, ':w': window },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  const throttled = () =>
    new ThrottledError(`at most ${ACTION_LIMIT.actions} subscribe and unsubscribe actions per ${ACTION_LIMIT.windowSeconds} s on one connection`);
  let mode: 'increment' | 'start' = known && known.actionWindow !== window ? 'start' : 'increment';
  // Each failed condition tells (ALL_OLD) which write fits; a concurrent action can make one more round necessary.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await (mode === 'start' ? startWindow() : increment());
      return;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const old = err.Item ? (unmarshall(err.Item) as ConnectionRecord) : undefined;
      if (!old) throw new ValidationError('unknown connection');
      if (old.actionWindow === undefined || old.actionWindow < window) mode = 'start';
      else if (old.actionWindow === window && (old.actions ?? 0) < ACTION_LIMIT.actions) mode = 'increment';
      // This window is used up (or a writer with a clock ahead of ours started a later one).
      else throw throttled();
    }
  }
  throw throttled();
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
 */
export async function disconnect(deps: Deps, connectionId: string): Promise<{ cutLease: boolean }> {
  const conn = await getConnection(deps, connectionId);
  if (!conn) return { cutLease: false };
  const clusters = [...(conn.clusters ?? [])];
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
  if (conn.clusterId === undefined || conn.nodeId === undefined) return { cutLease: false };
  return { cutLease: await cutLease(deps, connectionId, conn.clusterId, conn.nodeId) };
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

/** The connections subscribed to a cluster (strongly consistent: a subscriber that just joined must be seen). */
export async function subscribersOf(deps: Deps, clusterId: string): Promise<Subscriber[]> {
  const subscribers: Subscriber[] = [];
  const input = {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :ws)',
    ExpressionAttributeValues: { ':pk': subscriptionPk(clusterId), ':ws': SUBSCRIPTION_SK_PREFIX },
    // BATCH is a DynamoDB reserved word.
    ProjectionExpression: 'connectionId, connectedAt, #batch',
    ExpressionAttributeNames: { '#batch': 'batch' },
    ConsistentRead: true,
  };
  await queryPages(deps, input, (page) => {
    for (const item of page.Items ?? []) {
      subscribers.push({ connectionId: String(item.connectionId), connectedAt: Number(item.connectedAt), batch: item.batch === true });
    }
  });
  return subscribers;
}

/** What the fan-out reads per event from the subscriptions version items. */
export interface SubscriptionsState {
  /** The count of changes to the cluster's subscriptions: the sum of its shards. */
  version: number;
  /** The fan-out's ledger of a failed delivery, while its records are being retried (fanout-ledger.ts). */
  ledger?: LedgerRef;
}

/** The subscribers a fan-out posts an event to, and the ledger of an earlier attempt at it, if any. */
export interface Audience {
  subscribers: readonly Subscriber[];
  ledger?: LedgerRef;
}

/** A cluster's subscriber list as read at a subscriptions version. */
interface HeldList {
  version: number;
  subscribers: readonly Subscriber[];
}

/**
 * The fan-out's subscriber lists, kept between events (once per execution
 * environment) and trusted only at the version they were read at. At most
 * `maxClusters` lists are kept; the one used least recently goes first.
 */
export class SubscriberCache {
  private readonly lists = new Map<string, HeldList>();

  constructor(private readonly maxClusters = 1000) {}

  /** The cluster's subscribers now (the held list if the version has not moved, else a fresh query), and its fan-out ledger. */
  async current(deps: Deps, clusterId: string): Promise<Audience> {
    const { version, ledger } = await subscriptionsState(deps, clusterId);
    const held = this.lists.get(clusterId);
    this.lists.delete(clusterId);
    // Read after the version: every change counted up to `version` is in the list.
    const list = held?.version === version ? held : { version, subscribers: await subscribersOf(deps, clusterId) };
    this.lists.set(clusterId, list);
    if (this.lists.size > this.maxClusters) this.lists.delete(this.lists.keys().next().value as string);
    return { subscribers: list.subscribers, ...(ledger ? { ledger } : {}) };
  }
}

/** The cluster's subscribers and its fan-out ledger, read afresh (a fan-out without a `SubscriberCache`). */
export async function audienceOf(deps: Deps, clusterId: string): Promise<Audience> {
  // The state first: a subscriber counted in it is in the list read after it.
  const { ledger } = await subscriptionsState(deps, clusterId);
  return { subscribers: await subscribersOf(deps, clusterId), ...(ledger ? { ledger } : {}) };
}

/** BatchGetItem may leave keys unprocessed under load; this many rounds, then the read fails. */
const BATCH_GET_ATTEMPTS = 5;

/**
 * The cluster's subscriptions version (0 before its first subscription) and
 * fan-out ledger reference, strongly consistent: every shard in one
 * BatchGetItem, the version their sum, the ledger reference shard 0's.
 */
async function subscriptionsState(deps: Deps, clusterId: string): Promise<SubscriptionsState> {
  const table = deps.config.tableName;
  let keys: Record<string, unknown>[] | undefined = Array.from({ length: SUBSCRIPTIONS_VERSION_SHARDS }, (_, shard) => subscriptionsVersionKey(clusterId, shard));
  let version = 0;
  let ledger: LedgerRef | undefined;
  for (let attempt = 0; keys && keys.length > 0; attempt++) {
    if (attempt === BATCH_GET_ATTEMPTS) throw new ThrottledError(`the subscriptions version of ${clusterId} could not be read`);
    const out: BatchGetCommandOutput = await deps.db.send(
      new BatchGetCommand({
        RequestItems: {
          [table]: { Keys: keys, ProjectionExpression: 'sk, #version, fanoutLedger', ExpressionAttributeNames: { '#version': 'version' }, ConsistentRead: true },
        },
      }),
    );
    for (const item of out.Responses?.[table] ?? []) {
      version += Number(item.version ?? 0);
      if (item.sk === subscriptionsVersionKey(clusterId).sk) ledger = ledgerRefOf(item.fanoutLedger);
    }
    keys = out.UnprocessedKeys?.[table]?.Keys;
  }
  return { version, ...(ledger ? { ledger } : {}) };
}
