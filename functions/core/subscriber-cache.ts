/**
 * The fan-out's read of a cluster's subscriptions: who an event goes to.
 *
 * Every change to a cluster's subscriptions is followed by a bump of the
 * cluster's subscriptions version (subscriptions.ts), so the fan-out can keep
 * a cluster's list between events and read it again only when the version
 * moved (`SubscriberCache`): one small consistent read of the version per
 * event instead of a query of every subscriber. The version is counted in
 * SUBSCRIPTIONS_VERSION_SHARDS items, and is the sum of the shards.
 */
import type { Deps } from './deps.ts';
import { ledgerRefOf, type LedgerRef } from './fanout-ledger.ts';
import { SUBSCRIPTIONS_VERSION_SHARDS, SUBSCRIPTION_SK_PREFIX, subscriptionPk, subscriptionsVersionKey } from './model.ts';
import { batchGetAll, queryPages } from './query.ts';

export interface Subscriber {
  connectionId: string;
  connectedAt: number;
  /** Takes several events of one cluster in one `EVENTS` message. */
  batch: boolean;
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

/**
 * The cluster's subscriptions version (0 before its first subscription) and
 * fan-out ledger reference, strongly consistent: every shard in one
 * BatchGetItem, the version their sum, the ledger reference shard 0's.
 */
async function subscriptionsState(deps: Deps, clusterId: string): Promise<SubscriptionsState> {
  const keys = Array.from({ length: SUBSCRIPTIONS_VERSION_SHARDS }, (_, shard) => subscriptionsVersionKey(clusterId, shard));
  const items = await batchGetAll(deps, keys, { ProjectionExpression: 'sk, #version, fanoutLedger', ExpressionAttributeNames: { '#version': 'version' }, ConsistentRead: true }, `the subscriptions version of ${clusterId}`);
  let version = 0;
  let ledger: LedgerRef | undefined;
  for (const item of items) {
    version += Number(item.version ?? 0);
    if (item.sk === subscriptionsVersionKey(clusterId).sk) ledger = ledgerRefOf(item.fanoutLedger);
  }
  return { version, ...(ledger ? { ledger } : {}) };
}
