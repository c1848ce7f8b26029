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
 * cut into pages (`pageCount`: no more than the post rate needs); several pages are delivered in parallel by
 * `dispatchPage`, each by its own invocation of the page function (on AWS,
 * and in the local runtime through its Lambda Invoke API), a single page by
 * the fan-out itself, as is everything when no dispatcher is given (tests).
 * A group's subscribers come from the `SubscriberCache` when one is given:
 * the list held since the last event, unless the cluster's subscriptions
 * version moved (functions/core/subscriber-cache.ts).
 *
 * At the account's request quota (docs/how-it-works/fanout-sizing.md#at-the-account-quota).
 * Posts are paced by one token bucket (`PostRate`) of `fanoutPostsPerSecond`
 * per execution environment of the fan-out; the pages it hands out each get
 * their share of its rate and of its burst. A post answered 429 is
 * retried for that connection alone, with exponential backoff and jitter,
 * until the invocation's deadline; meanwhile the page posts to the others
 * (a throttled connection waits without holding one of the POST_CONCURRENCY slots).
 *
 * Failures. The first group that could not be delivered to every live
 * subscriber by the deadline is reported as a batch item failure (its first
 * record) and processing stops there, so Lambda retries from that record on
 * and order is kept; delivery is at least once. Before returning, the
 * fan-out writes a ledger (fanout-ledger.ts) of what is still owed to whom —
 * and, for the groups it completed whose records the retry will bring
 * again, that nothing is — so the retry posts only what was not
 * acknowledged. A 410 (connection gone) removes the connection exactly as
 * `$disconnect` would — including the lease cut of a bound node, since API
 * Gateway delivers `$disconnect` only on a best-effort basis.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord } from 'aws-lambda';
import { Slots } from './concurrency.ts';
import { pageCount } from './fanout-sizing.ts';
import { payloadOf, type Poster, type Payload, type PosterOutcome } from './poster.ts';
import type { Deps } from './deps.ts';
import { audienceOf, type Audience, type Subscriber, type SubscriberCache } from './subscriber-cache.ts';
import { disconnect, forgetSubscription } from './subscriptions.ts';
import { clearLedger, readLedger, writeLedger, type Ledger } from './fanout-ledger.ts';
import { toEvent, type MembershipEvent, type NodeItem } from './model.ts';
import { logger } from './log.ts';
import { metrics } from './metrics.ts';
import { PostRate, throttleBackoff } from './post-rate.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from './stream-filter.ts';

/** A subscriber of a page, with what it still needs when a ledger says it already has some of the events. */
export interface PageSubscriber extends Subscriber {
  /** The page's revisions this connection still needs; absent: every one. */
  needs?: number[];
}

/** One page of a group's subscribers with the messages for them: what a page worker needs, and nothing it must read. */
export interface Page {
  clusterId: string;
  /** One message per event, in revision order: what a plain connection gets (batched ones get them as `EVENTS` messages). */
  single: string[];
  /** The revision of each event of `single`. */
  revisions: number[];
  subscribers: PageSubscriber[];
  /** When the page was cut (epoch ms): a 410 from a connection younger than YOUNG_CONNECTION_MS is not taken as gone. */
  now: number;
  /** When posting stops (epoch ms): what is not delivered by then is owed. @default DEFAULT_BUDGET_MS after the page starts */
  deadline?: number;
  /** This page's share of the fan-out's post rate. @default the setting `fanoutPostsPerSecond` */
  postsPerSecond?: number;
  /** This page's share of the burst the fan-out's bucket had left. @default half a second of `postsPerSecond` */
  burst?: number;
}

export interface PageResult {
  /** Connections that got every message they needed. */
  delivered: number;
  /** Messages posted successfully. */
  messages: number;
  /** Connections that answered 410 (those older than YOUNG_CONNECTION_MS were removed). */
  gone: string[];
  /** Connections that did not get every message they needed: failing, throttled past the deadline, or not reached by it. */
  failed: number;
  /** Those connections, each with the revisions it still needs (present when `failed` is not 0). */
  owed?: Record<string, number[]>;
}

export interface FanoutDeps extends Deps {
  poster: Poster;
  /** Delivers one page elsewhere (on AWS, a parallel invocation); without it pages are delivered in this process. */
  dispatchPage?: (page: Page) => Promise<PageResult>;
  /** Subscriber lists kept between events (read again when their version moves); without it every event queries them. */
  subscriberCache?: SubscriberCache;
  /** Posts in flight at once per page worker. @default POST_CONCURRENCY */
  postConcurrency?: number;
  /** Subscribers per page. @default as `pageCount` (fanout-sizing.ts) cuts them for the post rate */
  pageSize?: number;
  /** The fan-out's token bucket, kept by its execution environment across invocations. @default one per invocation */
  postRate?: PostRate;
}

export interface FanoutOptions {
  /**
   * When the invocation must have returned (epoch ms): the Lambda context's
   * remaining time. Posting stops LEDGER_RESERVE_MS before it.
   * @default DEFAULT_BUDGET_MS from now
   */
  deadline?: number;
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
/** The time a fan-out or a page may take when given no deadline: under the fan-out's 60 s timeout (infra/fanout.ts). */
export const DEFAULT_BUDGET_MS = 50_000;
/** Kept back from a fan-out's deadline for what follows its posting: the pages' results, the ledger. */
export const LEDGER_RESERVE_MS = 3_000;

export interface FanoutResult extends DynamoDBBatchResponse {
  /** Messages posted successfully. */
  delivered: number;
  gone: number;
  /** Connections left owed something when the batch failed (kept in the ledger for the retry). */
  owed: number;
}

/** One message of a connection's sequence, and the revisions it carries. */
interface Message {
  payload: Payload;
  revisions: number[];
}

/** `events` as `EVENTS` messages of at most BATCH_MESSAGE_LIMIT_BYTES, each with the positions of the events it carries; a run of one event stays that event's message. */
function batchRuns(clusterId: string, events: readonly string[]): { text: string; members: number[] }[] {
  const head = `{"type":"EVENTS","clusterId":${JSON.stringify(clusterId)},"events":[`;
  const frame = Buffer.byteLength(head) + 2;
  const runs: { text: string; members: number[] }[] = [];
  let current: number[] = [];
  let size = frame;
  const flush = () => {
    if (current.length === 1) runs.push({ text: events[current[0] as number] as string, members: current });
    else if (current.length > 1) runs.push({ text: `${head}${current.map((i) => events[i]).join(',')}]}`, members: current });
    current = [];
    size = frame;
  };
  for (const [i, event] of events.entries()) {
    const bytes = Buffer.byteLength(event) + 1;
    if (current.length > 0 && size + bytes > BATCH_MESSAGE_LIMIT_BYTES) flush();
    current.push(i);
    size += bytes;
  }
  flush();
  return runs;
}

/**
 * The events (single-event messages, in order) as `EVENTS` messages of at most
 * BATCH_MESSAGE_LIMIT_BYTES; a run of one event stays its single-event message.
 */
export function batchMessages(clusterId: string, events: readonly string[]): string[] {
  return batchRuns(clusterId, events).map((run) => run.text);
}

/**
 * The messages of each subscriber of a page: every plain connection that
 * needs the same events shares one list, and so does every batched one, so
 * each message's bytes and hash are made once per page.
 */
function messagePlanner(page: Page): (subscriber: PageSubscriber) => Message[] {
  const singles = new Map<number, Payload>();
  const single = (i: number): Payload => {
    let payload = singles.get(i);
    if (!payload) singles.set(i, (payload = payloadOf(page.single[i] as string)));
    return payload;
  };
  const plans = new Map<string, Message[]>();
  return (subscriber) => {
    const key = `${subscriber.batch ? 'b' : 's'}:${subscriber.needs?.join(',') ?? '*'}`;
    const known = plans.get(key);
    if (known) return known;
    const needed = subscriber.needs ? new Set(subscriber.needs) : undefined;
    const indices = page.revisions.flatMap((revision, i) => (needed && !needed.has(revision) ? [] : [i]));
    const revisionAt = (i: number) => page.revisions[i] as number;
    const messages = subscriber.batch
      ? batchRuns(page.clusterId, indices.map((i) => page.single[i] as string)).map(({ text, members }) => {
          const at = members.map((m) => indices[m] as number);
          return { payload: at.length === 1 ? single(at[0] as number) : payloadOf(text), revisions: at.map(revisionAt) };
        })
      : indices.map((i) => ({ payload: single(i), revisions: [revisionAt(i)] }));
    plans.set(key, messages);
    return messages;
  };
}

/**
 * Posts one connection its messages, in order, and stops at the first that
 * does not get through. A 429 is retried for this connection alone, after a
 * backoff with jitter, until the deadline; a post whose turn under the rate
 * would come after the deadline is not made.
 */
async function postInOrder(
  deps: FanoutDeps,
  connectionId: string,
  messages: readonly Message[],
  pace: { rate: PostRate; slots: Slots; deadline: number },
): Promise<{ outcome: 'delivered' | 'gone' | 'owed'; posted: number; throttled: number }> {
  let posted = 0;
  let throttled = 0;
  let throttles = 0;
  while (posted < messages.length) {
    const { payload } = messages[posted] as Message;
    const outcome = await pace.slots.run<PosterOutcome | 'late'>(async () => ((await pace.rate.take(pace.deadline)) ? deps.poster.post(connectionId, payload) : 'late'));
    if (outcome === 'delivered') {
      posted++;
      throttles = 0;
      continue;
    }
    if (outcome === 'gone') return { outcome, posted, throttled };
    if (outcome === 'throttled') {
      throttled++;
      throttles++;
      const wait = throttleBackoff(throttles);
      if (Date.now() + wait < pace.deadline) {
        await sleep(wait);
        continue;
      }
    }
    return { outcome: 'owed', posted, throttled };
  }
  return { outcome: 'delivered', posted, throttled };
}

/**
 * Delivers one page in this process: the page worker's whole job, on AWS and
 * locally alike. `rate`, when given, is shared with the other pages this
 * process delivers; otherwise the page keeps its own share (`postsPerSecond`).
 */
export async function deliverPage(deps: FanoutDeps, page: Page, rate?: PostRate): Promise<PageResult> {
  const pace = {
    rate: rate ?? new PostRate(page.postsPerSecond ?? deps.config.fanoutPostsPerSecond, page.burst),
    // Posts in flight, first come first served; a connection waiting out a throttle holds no slot.
    slots: new Slots(deps.postConcurrency ?? POST_CONCURRENCY),
    deadline: page.deadline ?? Date.now() + DEFAULT_BUDGET_MS,
  };
  const messagesFor = messagePlanner(page);
  const result: PageResult = { delivered: 0, messages: 0, gone: [], failed: 0 };
  const owed: Record<string, number[]> = {};
  let throttled = 0;
  await Promise.all(
    page.subscribers.map(async (subscriber) => {
      const messages = messagesFor(subscriber);
      const sent = await postInOrder(deps, subscriber.connectionId, messages, pace);
      result.messages += sent.posted;
      throttled += sent.throttled;
      if (sent.outcome === 'delivered') result.delivered++;
      else if (sent.outcome === 'owed') {
        result.failed++;
        owed[subscriber.connectionId] = messages.slice(sent.posted).flatMap((m) => m.revisions);
      } else {
        result.gone.push(subscriber.connectionId);
        if (page.now - subscriber.connectedAt >= YOUNG_CONNECTION_MS) {
          await disconnect(deps, subscriber.connectionId);
          await forgetSubscription(deps, page.clusterId, subscriber.connectionId);
        }
      }
    }),
  );
  if (throttled > 0) metrics.count('PostsThrottled', {}, throttled);
  if (result.failed > 0) result.owed = owed;
  return result;
}

interface Group {
  clusterId: string;
  events: MembershipEvent[];
  /** The group's first record in stream order: where a retry must start. */
  first: DynamoDBRecord;
  /** Positions of its first and last record in the batch. */
  firstAt: number;
  lastAt: number;
}

/** The batch's events grouped by cluster, in order of first appearance, each group in revision order. */
function groupByCluster(records: DynamoDBRecord[]): Group[] {
  const groups = new Map<string, Group>();
  for (const [at, record] of records.entries()) {
    // The event source mapping already filtered; this guard keeps a misconfigured trigger harmless.
    if (!matchesFilter(FANOUT_FILTER_PATTERNS, record) || !record.dynamodb?.NewImage) continue;
    const event = toEvent(unmarshall(record.dynamodb.NewImage as Record<string, AttributeValue>) as NodeItem);
    if (!event) continue;
    const group = groups.get(event.clusterId);
    if (group) {
      group.events.push(event);
      group.lastAt = at;
    } else groups.set(event.clusterId, { clusterId: event.clusterId, events: [event], first: record, firstAt: at, lastAt: at });
  }
  // A node's revisions only grow, so sorting keeps each node's stream order and gives the cluster's revision order.
  for (const group of groups.values()) group.events.sort((a, b) => a.revision - b.revision);
  return [...groups.values()];
}

/** What an attempt at a group left behind: enough to write its ledger. */
interface GroupOutcome {
  /** Whether some subscriber did not get this group's events: the batch fails here. */
  incomplete: boolean;
  /** Per connection, the revisions it still needs: this group's and, from the ledger it started from, others' still owed. */
  owed: Map<string, number[]>;
  /** The revisions a ledger written now speaks for. */
  covered: number[];
  /** Subscribers that had something to get. */
  targets: number;
}

/** A page whose invocation failed as a whole: nothing it did is known, so everything it carried is owed. */
function pageLost(page: Page, err: unknown): PageResult {
  logger.warn('a fan-out page failed; its subscribers are owed everything it carried', {
    clusterId: page.clusterId,
    subscribers: page.subscribers.length,
    error: err instanceof Error ? err.message : String(err),
  });
  const owed = Object.fromEntries(page.subscribers.map((s) => [s.connectionId, s.needs ?? page.revisions]));
  return { delivered: 0, messages: 0, gone: [], failed: page.subscribers.length, owed };
}

/**
 * Delivers one group to every subscriber of its cluster that still needs it
 * (all of them, unless a ledger of an earlier attempt says otherwise), its
 * pages in parallel, posting until `deadline`.
 */
async function deliverGroup(deps: FanoutDeps, group: Group, audience: Audience, pace: { rate: PostRate; deadline: number }, result: FanoutResult): Promise<GroupOutcome> {
  const { rate, deadline } = pace;
  const revisions = group.events.map((e) => e.revision);
  const ledger: Ledger | undefined = audience.ledger?.covered.some((r) => revisions.includes(r)) ? await readLedger(deps, group.clusterId, audience.ledger) : undefined;
  const targets: PageSubscriber[] = [];
  for (const subscriber of audience.subscribers) {
    const needs = ledger ? revisions.filter((r) => !ledger.covered.has(r) || (ledger.owed.get(subscriber.connectionId)?.includes(r) ?? false)) : revisions;
    if (needs.length === 0) continue; // it acknowledged every one of them in an earlier attempt
    targets.push(needs.length < revisions.length ? { ...subscriber, needs } : subscriber);
  }
  const single = group.events.map((event) => JSON.stringify(event));
  const now = deps.now();
  const pages: Page[] = [];
  const pageSize = deps.pageSize ?? Math.ceil(targets.length / Math.max(1, pageCount(targets.length, rate.perSecond)));
  for (let i = 0; i < targets.length; i += pageSize) {
    pages.push({ clusterId: group.clusterId, single, revisions, subscribers: targets.slice(i, i + pageSize), now, deadline });
  }
  let results: PageResult[];
  if (pages.length > 1 && deps.dispatchPage) {
    const dispatch = deps.dispatchPage;
    // Each page worker paces itself at its share of the rate, and of the burst the bucket has left: together
    // they keep to the fan-out's bucket. What they post comes off it; if they posted past the burst, they
    // were posting at its full rate until now, and it is empty.
    const credit = rate.available();
    rate.charge(credit);
    const share = { postsPerSecond: rate.perSecond / pages.length, burst: credit / pages.length };
    results = await Promise.all(pages.map((page) => dispatch({ ...page, ...share }).catch((err: unknown) => pageLost(page, err))));
    if (results.reduce((n, r) => n + r.messages, 0) > credit) rate.drain();
  } else {
    results = await Promise.all(pages.map((page) => deliverPage(deps, page, rate)));
  }
  result.delivered += results.reduce((n, r) => n + r.messages, 0);
  result.gone += results.reduce((n, r) => n + r.gone.length, 0);

  const owed = new Map<string, number[]>();
  for (const r of results) for (const [connectionId, still] of Object.entries(r.owed ?? {})) owed.set(connectionId, still);
  const incomplete = owed.size > 0;
  if (ledger) {
    // What the earlier attempt left owed outside this group (a retry that brought only some of its records) stays owed.
    const current = new Set(audience.subscribers.map((s) => s.connectionId));
    for (const [connectionId, still] of ledger.owed) {
      const elsewhere = still.filter((r) => !revisions.includes(r));
      if (elsewhere.length > 0 && current.has(connectionId)) owed.set(connectionId, [...(owed.get(connectionId) ?? []), ...elsewhere].sort((a, b) => a - b));
    }
  }
  const covered = ledger ? [...new Set([...ledger.covered, ...revisions])] : revisions;
  return { incomplete, owed, covered, targets: targets.length };
}

/** Runs `write`, logging instead of throwing: what it keeps only saves duplicates. */
async function bestEffort(what: string, clusterId: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    logger.warn(`fan-out: could not ${what}; a retry may post duplicates`, { clusterId, error: err instanceof Error ? err.message : String(err) });
  }
}

export async function fanOut(deps: FanoutDeps, records: DynamoDBRecord[], options: FanoutOptions = {}): Promise<FanoutResult> {
  const result: FanoutResult = { batchItemFailures: [], delivered: 0, gone: 0, owed: 0 };
  const deadline = (options.deadline ?? Date.now() + DEFAULT_BUDGET_MS) - LEDGER_RESERVE_MS;
  const rate = deps.postRate ?? new PostRate(deps.config.fanoutPostsPerSecond);
  const oldest = records[0]?.dynamodb?.ApproximateCreationDateTime;
  // Seconds since the epoch, as Lambda passes it: the age of the batch is how far the fan-out is behind.
  if (oldest !== undefined) metrics.observe('StreamBatchAge', Math.max(0, deps.now() - oldest * 1000));
  const completed: { group: Group; outcome: GroupOutcome }[] = [];
  let failure: { group: Group; outcome?: GroupOutcome; reason: string } | undefined;
  for (const group of groupByCluster(records)) {
    if (Date.now() >= deadline) {
      failure = { group, reason: 'the invocation ran out of time before this group' };
      break;
    }
    try {
      const audience = deps.subscriberCache ? await deps.subscriberCache.current(deps, group.clusterId) : await audienceOf(deps, group.clusterId);
      const outcome = await deliverGroup(deps, group, audience, { rate, deadline }, result);
      if (outcome.incomplete) {
        failure = { group, outcome, reason: `${outcome.owed.size} subscribers were not reached by the deadline` };
        break;
      }
      completed.push({ group, outcome });
      // The retried events are delivered: the ledger is done with once every revision it covers came by (or none did: it is stale).
      const ref = audience.ledger;
      const revisions = group.events.map((e) => e.revision);
      if (ref && (ref.covered.every((r) => revisions.includes(r)) || !ref.covered.some((r) => revisions.includes(r)))) {
        await bestEffort('clear its ledger', group.clusterId, () => clearLedger(deps, group.clusterId, ref.id));
      }
    } catch (err) {
      failure = { group, reason: err instanceof Error ? err.message : String(err) };
      break;
    }
  }
  if (failure) {
    const { group, outcome, reason } = failure;
    logger.warn('fan-out failed; the records from here on will be retried', {
      clusterId: group.clusterId,
      revisions: group.events.map((e) => e.revision),
      owed: outcome?.owed.size ?? 0,
      error: reason,
    });
    metrics.count('FanoutFailures');
    result.owed = outcome?.owed.size ?? 0;
    // What the retry must not post again: the owed of the failed group, and "nothing owed" for every completed
    // group with records after the failed one's first (the retry brings those records again).
    const ledgers = [...(outcome ? [{ group, outcome }] : []), ...completed.filter((c) => c.group.lastAt > group.firstAt && c.outcome.targets > 0)];
    await Promise.all(ledgers.map((l) => bestEffort('write its ledger', l.group.clusterId, () => writeLedger(deps, l.group.clusterId, l.outcome.covered, l.outcome.owed))));
    // Retry from this group's first record on; later records of the batch are retried with it, in order.
    result.batchItemFailures.push({ itemIdentifier: group.first.dynamodb?.SequenceNumber ?? group.first.eventID ?? '' });
  }
  if (result.delivered > 0) metrics.count('EventsFannedOut', {}, result.delivered);
  if (result.gone > 0) metrics.count('GoneConnections', {}, result.gone);
  return result;
}
