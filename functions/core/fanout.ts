/**
 * The stream fan-out: each event record becomes one message posted to every
 * connection subscribed to the record's cluster.
 *
 * Records are processed in stream order. The first record that cannot be
 * delivered to every live subscriber is reported as a batch item failure and
 * processing stops there, so Lambda retries from that record on and order is
 * kept; delivery is at least once. A 410 (connection gone) removes the
 * connection exactly as `$disconnect` would — including the lease cut of a
 * bound node, since API Gateway delivers `$disconnect` only on a best-effort basis.
 */
import { GoneException, PostToConnectionCommand, type ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import type { Deps } from './deps.ts';
import { disconnect, forgetSubscription, subscribersOf, type Subscriber } from './connections.ts';
import { toEvent, type NodeItem } from './model.ts';
import { logger } from './log.ts';
import { metrics } from './metrics.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from './stream-filter.ts';

export interface FanoutDeps extends Deps {
  management: ApiGatewayManagementApiClient;
}

/**
 * A 410 from a connection younger than this is not treated as gone: on AWS a
 * connection cannot receive messages until `$connect` has returned, and its
 * client fetches the list right after, so skipping the message loses nothing.
 */
export const YOUNG_CONNECTION_MS = 10_000;
/** Posts in flight at once per event. */
const POST_CONCURRENCY = 64;

export interface FanoutResult extends DynamoDBBatchResponse {
  delivered: number;
  gone: number;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}

type PostOutcome = 'delivered' | 'gone' | 'failed';

async function post(deps: FanoutDeps, clusterId: string, subscriber: Subscriber, data: Uint8Array, now: number): Promise<PostOutcome> {
  try {
    await deps.management.send(new PostToConnectionCommand({ ConnectionId: subscriber.connectionId, Data: data }));
    return 'delivered';
  } catch (err) {
    const gone = err instanceof GoneException || (err instanceof Error && err.name === 'GoneException');
    if (!gone) return 'failed';
    if (now - subscriber.connectedAt >= YOUNG_CONNECTION_MS) {
      await disconnect(deps, subscriber.connectionId);
      await forgetSubscription(deps, clusterId, subscriber.connectionId);
    }
    return 'gone';
  }
}

export async function fanOut(deps: FanoutDeps, records: DynamoDBRecord[]): Promise<FanoutResult> {
  const result: FanoutResult = { batchItemFailures: [], delivered: 0, gone: 0 };
  const oldest = records[0]?.dynamodb?.ApproximateCreationDateTime;
  // Seconds since the epoch, as Lambda passes it: the age of the batch is how far the fan-out is behind.
  if (oldest !== undefined) metrics.observe('StreamBatchAge', Math.max(0, deps.now() - oldest * 1000));
  const subscribersByCluster = new Map<string, Subscriber[]>();
  for (const record of records) {
    // The event source mapping already filtered; this guard keeps a misconfigured trigger harmless.
    if (!matchesFilter(FANOUT_FILTER_PATTERNS, record) || !record.dynamodb?.NewImage) continue;
    const item = unmarshall(record.dynamodb.NewImage as Record<string, AttributeValue>) as NodeItem;
    const event = toEvent(item);
    if (!event) continue;
    try {
      let subscribers = subscribersByCluster.get(event.clusterId);
      if (!subscribers) {
        subscribers = await subscribersOf(deps, event.clusterId);
        subscribersByCluster.set(event.clusterId, subscribers);
      }
      const data = Buffer.from(JSON.stringify(event));
      const now = deps.now();
      const outcomes = await mapLimit(subscribers, POST_CONCURRENCY, (s) => post(deps, event.clusterId, s, data, now));
      result.delivered += outcomes.filter((o) => o === 'delivered').length;
      const gone = new Set(subscribers.filter((_, i) => outcomes[i] === 'gone').map((s) => s.connectionId));
      result.gone += gone.size;
      if (gone.size > 0) subscribersByCluster.set(event.clusterId, subscribers.filter((s) => !gone.has(s.connectionId)));
      if (outcomes.includes('failed')) throw new Error('some subscribers could not be reached');
    } catch (err) {
      logger.warn('fan-out failed; the record will be retried', {
        clusterId: event.clusterId,
        revision: event.revision,
        error: err instanceof Error ? err.message : String(err),
      });
      // Retry from this record on; later records of the batch are retried with it, in order.
      metrics.count('FanoutFailures');
      result.batchItemFailures.push({ itemIdentifier: record.dynamodb.SequenceNumber ?? record.eventID ?? '' });
      break;
    }
  }
  if (result.delivered > 0) metrics.count('EventsFannedOut', {}, result.delivered);
  if (result.gone > 0) metrics.count('GoneConnections', {}, result.gone);
  return result;
}
