/**
 * The stream fan-out: the events of a stream batch, posted to every
 * connection subscribed to their cluster.
 *
 * Units of work. The batch's events are grouped by cluster (in order of
 * first appearance; each group sorted by revision, which per node is stream
 * order). For a group, every plain connection gets one message per event and
 * every connection that asked for batching (`batch=true`, docs/running-nodes/wire-batching.md)
 * gets the group as `EVENTS` messages; each connection's messages are posted
 * one after another, so it sees them in order. The group's subscribers are
 * cut into pages of `PAGE_SIZE`; several pages are delivered in parallel by
 * `dispatchPage`, each by its own invocation of the page function (on AWS,
 * and in the local runtime through its Lambda Invoke API), a single page by
 * the fan-out itself, as is everything when no dispatcher is given (tests).
 * A group's subscribers come from the `SubscriberCache` when one is given:
 * the list held since the last event, unless the cluster's subscriptions
 * version moved (functions/core/connections.ts).
 *
 * Failures. The first group that could not be delivered to every live
 * subscriber is reported as a batch item failure (its first record) and
 * processing stops there, so Lambda retries from that record on and order is
 * kept; delivery is at least once. A 410 (connection gone) removes the
 * connection exactly as `$disconnect` would — including the lease cut of a
 * bound node, since API Gateway delivers `$disconnect` only on a best-effort basis.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { mapLimit } from './concurrency.ts';
import { PAGE_SIZE } from './fanout-sizing.ts';
import { payloadOf, type ConnectionsApi, type Payload, type PostOutcome } from './connections-api.ts';
import type { Deps } from './deps.ts';
import { disconnect, forgetSubscription, subscribersOf, type Subscriber, type SubscriberCache } from './connections.ts';
import { toEvent, type MembershipEvent, type NodeItem } from './model.ts';
import { logger } from './log.ts';
import { metrics } from './metrics.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from './stream-filter.ts';

/** One page of a group's subscribers with the messages for them: what a page worker needs, and nothing it must read. */
export interface Page {
  clusterId: string;
  /** One message per event, in order, for plain connections. */
  single: string[];
  /** The same events for batched connections: `EVENTS` messages (or the single message when there is one event). */
  batched: string[];
  subscribers: Subscriber[];
  /** When the page was cut (epoch ms): a 410 from a connection younger than YOUNG_CONNECTION_MS is not taken as gone. */
  now: number;
}

export interface PageResult {
  /** Connections that got every message. */
  delivered: number;
  /** Messages posted successfully. */
  messages: number;
  /** Connections that answered 410 (those older than YOUNG_CONNECTION_MS were removed). */
  gone: string[];
  /** Connections that could not be reached after retries. */
  failed: number;
}

export interface FanoutDeps extends Deps {
  connections: ConnectionsApi;
  /** Delivers one page elsewhere (on AWS, a parallel invocation); without it pages are delivered in this process. */
  dispatchPage?: (page: Page) => Promise<PageResult>;
  /** Subscriber lists kept between events (read again when their version moves); without it every event queries them. */
  subscriberCache?: SubscriberCache;
}

/**
 * A 410 from a connection younger than this is not treated as gone: on AWS a
 * connection cannot receive messages until `$connect` has returned, and its
 * client fetches the list right after, so skipping the message loses nothing.
 */
export const YOUNG_CONNECTION_MS = 10_000;
/** Connections posted to at once by one page worker. */
export const POST_CONCURRENCY = 128;
/**
 * Largest `EVENTS` message: one WebSocket frame. API Gateway takes messages of
 * up to 128 KB but frames of at most 32 KB, and closes a connection (1009)
 * that gets a larger frame; a message that fits one frame is safe with every
 * client (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
 */
export const BATCH_MESSAGE_LIMIT_BYTES = 30 * 1024;

export interface FanoutResult extends DynamoDBBatchResponse {
  /** Messages posted successfully. */
  delivered: number;
  gone: number;
}

/**
 * The events (single-event messages, in order) as `EVENTS` messages of at most
 * BATCH_MESSAGE_LIMIT_BYTES; a run of one event stays its single-event message.
 */
export function batchMessages(clusterId: string, events: readonly string[]): string[] {
  const head = `{"type":"EVENTS","clusterId":${JSON.stringify(clusterId)},"events":[`;
  const frame = Buffer.byteLength(head) + 2;
  const messages: string[] = [];
  let current: string[] = [];
  let size = frame;
  const flush = () => {
    if (current.length === 1) messages.push(current[0] as string);
    else if (current.length > 1) messages.push(`${head}${current.join(',')}]}`);
    current = [];
    size = frame;
  };
  for (const event of events) {
    const bytes = Buffer.byteLength(event) + 1;
    if (current.length > 0 && size + bytes > BATCH_MESSAGE_LIMIT_BYTES) flush();
    current.push(event);
    size += bytes;
  }
  flush();
  return messages;
}

/** Posts one connection its messages, in order; stops at the first that does not get through. */
async function postInOrder(deps: FanoutDeps, connectionId: string, payloads: Payload[]): Promise<{ outcome: PostOutcome; posted: number }> {
  let posted = 0;
  for (const payload of payloads) {
    const outcome = await deps.connections.post(connectionId, payload);
    if (outcome !== 'delivered') return { outcome, posted };
    posted++;
  }
  return { outcome: 'delivered', posted };
}

/** Delivers one page in this process: the page worker's whole job, on AWS and locally alike. */
export async function deliverPage(deps: FanoutDeps, page: Page): Promise<PageResult> {
  const single = page.single.map(payloadOf);
  const batched = page.batched.length === page.single.length && page.batched.every((m, i) => m === page.single[i]) ? single : page.batched.map(payloadOf);
  const result: PageResult = { delivered: 0, messages: 0, gone: [], failed: 0 };
  await mapLimit(page.subscribers, POST_CONCURRENCY, async (subscriber) => {
    const { outcome, posted } = await postInOrder(deps, subscriber.connectionId, subscriber.batch ? batched : single);
    result.messages += posted;
    if (outcome === 'delivered') result.delivered++;
    else if (outcome === 'failed') result.failed++;
    else {
      result.gone.push(subscriber.connectionId);
      if (page.now - subscriber.connectedAt >= YOUNG_CONNECTION_MS) {
        await disconnect(deps, subscriber.connectionId);
        await forgetSubscription(deps, page.clusterId, subscriber.connectionId);
      }
    }
  });
  return result;
}

interface Group {
  clusterId: string;
  events: MembershipEvent[];
  /** The group's first record in stream order: where a retry must start. */
  first: DynamoDBRecord;
}

/** The batch's events grouped by cluster, in order of first appearance, each group in revision order. */
function groupByCluster(records: DynamoDBRecord[]): Group[] {
  const groups = new Map<string, Group>();
  for (const record of records) {
    // The event source mapping already filtered; this guard keeps a misconfigured trigger harmless.
    if (!matchesFilter(FANOUT_FILTER_PATTERNS, record) || !record.dynamodb?.NewImage) continue;
    const event = toEvent(unmarshall(record.dynamodb.NewImage as Record<string, AttributeValue>) as NodeItem);
    if (!event) continue;
    const group = groups.get(event.clusterId);
    if (group) group.events.push(event);
    else groups.set(event.clusterId, { clusterId: event.clusterId, events: [event], first: record });
  }
  // A node's revisions only grow, so sorting keeps each node's stream order and gives the cluster's revision order.
  for (const group of groups.values()) group.events.sort((a, b) => a.revision - b.revision);
  return [...groups.values()];
}

/** Delivers one group to every subscriber of its cluster, its pages in parallel; throws if any subscriber could not be reached. */
async function deliverGroup(deps: FanoutDeps, group: Group, subscribers: readonly Subscriber[], result: FanoutResult): Promise<void> {
  const single = group.events.map((event) => JSON.stringify(event));
  const batched = batchMessages(group.clusterId, single);
  const now = deps.now();
  const pages: Page[] = [];
  for (let i = 0; i < subscribers.length; i += PAGE_SIZE) {
    pages.push({ clusterId: group.clusterId, single, batched, subscribers: subscribers.slice(i, i + PAGE_SIZE), now });
  }
  const here = (page: Page) => deliverPage(deps, page);
  const dispatch = pages.length > 1 && deps.dispatchPage ? deps.dispatchPage : here;
  const results = await Promise.all(pages.map(dispatch));
  result.delivered += results.reduce((n, r) => n + r.messages, 0);
  result.gone += results.reduce((n, r) => n + r.gone.length, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  if (failed > 0) throw new Error(`${failed} subscribers could not be reached`);
}

export async function fanOut(deps: FanoutDeps, records: DynamoDBRecord[]): Promise<FanoutResult> {
  const result: FanoutResult = { batchItemFailures: [], delivered: 0, gone: 0 };
  const oldest = records[0]?.dynamodb?.ApproximateCreationDateTime;
  // Seconds since the epoch, as Lambda passes it: the age of the batch is how far the fan-out is behind.
  if (oldest !== undefined) metrics.observe('StreamBatchAge', Math.max(0, deps.now() - oldest * 1000));
  for (const group of groupByCluster(records)) {
    try {
      const subscribers = deps.subscriberCache ? await deps.subscriberCache.current(deps, group.clusterId) : await subscribersOf(deps, group.clusterId);
      await deliverGroup(deps, group, subscribers, result);
    } catch (err) {
      logger.warn('fan-out failed; the records from here on will be retried', {
        clusterId: group.clusterId,
        revisions: group.events.map((e) => e.revision),
        error: err instanceof Error ? err.message : String(err),
      });
      // Retry from this group's first record on; later records of the batch are retried with it, in order.
      metrics.count('FanoutFailures');
      result.batchItemFailures.push({ itemIdentifier: group.first.dynamodb?.SequenceNumber ?? group.first.eventID ?? '' });
      break;
    }
  }
  if (result.delivered > 0) metrics.count('EventsFannedOut', {}, result.delivered);
  if (result.gone > 0) metrics.count('GoneConnections', {}, result.gone);
  return result;
}
