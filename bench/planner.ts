/**
 * `roster capacity`: holds a workload (bench/workload.ts, the model `roster
 * cost` prices) against every limit a Roster deployment meets on AWS — the
 * stage throttles the stack sets, the account's API Gateway, WebSocket and
 * Lambda quotas, DynamoDB's per-partition, per-item and per-table limits, the
 * stream fan-out, the sweeper's time and the response size limits — and says
 * for each the load, the limit, the utilization, at how many nodes it breaks
 * and what lifts it: a stack setting, a quota increase (named, with the
 * figure to ask for), or only a change of the design.
 *
 * Loads are the workload's steady state (no storm), spread evenly over the
 * clusters; the busiest cluster is any of them. A storm — a tenth of one
 * cluster restarting at once, its subscribers connecting — is planned apart
 * (`stormPlan`): its rows are peaks of seconds, shown beside the steady
 * rows and never counted in the first limit to break. "Breaks at" scales the nodes,
 * the watchers and the churn together with the clusters fixed (the clusters
 * grow), and finds where the utilization reaches 100%. Every AWS figure is in
 * bench/aws-limits.ts with its documentation page; the stack's settings come
 * from its synthesized template (bench/stack-settings.ts).
 */
import { PAGE_SIZE } from '../functions/core/fanout-sizing.ts';
import { PAGE_MAX_BYTES } from '../functions/core/list-page.ts';
import { SUBSCRIPTIONS_VERSION_SHARDS, toNode } from '../functions/core/model.ts';
import { SETTLE_TRANSACTIONS_IN_FLIGHT } from '../functions/core/sweeper.ts';
import { TRANSACTION_ITEMS } from '../functions/core/transactions.ts';
import { LIST_PAGE_MAX } from '@roster/contract';
import { AWS_LIMITS, type AwsLimit } from './aws-limits.ts';
import { httpRouteKeyOf, routeThrottle, type StackSettings } from './stack-settings.ts';
import { table } from './table.ts';
import { MEASURED_UNITS, type Units } from './units.ts';
import { CLUSTER_READS_IN_FLIGHT, eventMessageBytes, FULL_VCPU_MB, operationRates, sampleNodeItem, stormPosts, SUBSCRIPTION_ITEM_KB, type Deployment, type Rates, type StormPosts, type StormTimeline, type Workload } from './workload.ts';

/** The account the deployment runs in: AWS's defaults unless raised. */
export interface Account {
  lambdaConcurrency: number;
  apiGatewayRate: number;
  apiGatewayBurst: number;
  webSocketNewConnections: number;
  tableReads: number;
  tableWrites: number;
}

export const DEFAULT_ACCOUNT: Account = {
  lambdaConcurrency: AWS_LIMITS.lambdaConcurrency.value,
  apiGatewayRate: AWS_LIMITS.apiGatewayAccountRate.value,
  apiGatewayBurst: AWS_LIMITS.apiGatewayAccountBurst.value,
  webSocketNewConnections: AWS_LIMITS.webSocketNewConnections.value,
  tableReads: AWS_LIMITS.dynamodbTableReads.value,
  tableWrites: AWS_LIMITS.dynamodbTableWrites.value,
};

/**
 * Assumed DynamoDB latencies on AWS, for the sweep's duration: nothing here
 * was measured on AWS. DynamoDB answers a small request in single-digit
 * milliseconds (10 ms here: that and the network from Lambda); a Query page
 * of 1 MB is assumed to take tens of milliseconds more
 * (docs/how-it-works/sweep-cost.md), and a transaction of 100 small updates
 * (the sweeper's DOWN writes) 50 ms. The sweep's rows are estimates.
 */
export const DYNAMODB_LATENCY = { requestMs: 10, perMbMs: 25, transactionMs: 50 };
/** Write units a transactional write takes per item of up to 1 KB (transaction-apis.html#transaction-capacity-handling). */
const TRANSACTION_WRITE_UNITS = 2;

/** The DOWN writes of `downs` nodes: one block of revisions, then transactions of 100, a few in flight (a smaller one, quicker). */
function downWritesMs(downs: number): number {
  if (downs <= 0) return 0;
  const { requestMs, transactionMs } = DYNAMODB_LATENCY;
  const rounds = Math.ceil(Math.ceil(downs / TRANSACTION_ITEMS) / SETTLE_TRANSACTIONS_IN_FLIGHT);
  const largest = Math.min(downs, TRANSACTION_ITEMS);
  return requestMs + rounds * (requestMs + ((transactionMs - requestMs) * largest) / TRANSACTION_ITEMS);
}

/** DynamoDB's "single-digit millisecond performance at any scale"; a Query reads at most 1 MB a page (Query.Pagination.html). */
const SWEEP_SOURCE = 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Introduction.html';

/** The storm the plan holds apart: a tenth of one cluster's nodes restarting at once. */
export const DEFAULT_STORM_SHARE = 0.1;

/** A storm in one cluster and what it costs. */
export interface StormPlan {
  /** Nodes of the cluster that restart at once (crashed: their connections drop; then they register again). */
  restarts: number;
  /** Its events: a NODE_DOWN and a NODE_REGISTERED a restart. */
  events: number;
  /** The cluster's subscribers: its nodes' bound connections and its watchers. */
  subscribers: number;
  /** Bytes of one event's message. */
  eventBytes: number;
  /** Posts with every subscriber batching (the SDK and the console ask for it), and with none. */
  batched: StormPosts;
  plain: StormPosts;
  /** Seconds the fan-out takes to post them at its rate (`fanoutPostsPerSecond`). */
  batchedSeconds: number;
  plainSeconds: number;
  /** Its peak loads against the limits they meet (not counted for `firstToBreak`). */
  rows: LimitRow[];
}

/** How a limit is lifted. */
export type Lift =
  /** A setting of the stack (a `-c` context value), up to the account's quota. */
  | { by: 'stack'; how: string }
  /** A Service Quotas increase; `ask` keeps the load at 70% of it. */
  | { by: 'quota'; service: string; name: string; code: string; ask: number }
  /** Nothing but a change of Roster's design (the limit cannot be raised). */
  | { by: 'design'; how: string };

export interface LimitRow {
  /** Stable identifier, e.g. `http-route:keepalive`. */
  id: string;
  /** What the limit is. */
  limit: string;
  /** Which route, item or partition it applies to. */
  where: string;
  load: number;
  capacity: number;
  unit: string;
  utilization: number;
  /** Nodes at which the utilization reaches 100% as the fleet grows (see the module comment); Infinity when it never does, 0 when it is over at any size (it depends on the clusters, not the nodes). */
  breaksAtNodes: number;
  lift: Lift;
  /** The AWS documentation page of the limit (or, for the sweep, the page of the model). */
  source: string;
  note?: string;
}

export interface CapacityPlan {
  workload: Workload;
  /** Where the stack's settings came from. */
  settings: string;
  account: Account;
  /** Every limit, in the order of the architecture. */
  rows: LimitRow[];
  /** The rows of a new account, whose Lambda concurrency is reduced (not counted for `firstToBreak`). */
  newAccount: LimitRow[];
  /** The limit that breaks at the fewest nodes. */
  firstToBreak: LimitRow | undefined;
  /** A storm in one cluster: its peak loads (not counted for `firstToBreak`). */
  storm: StormPlan;
}

export interface PlanOptions {
  units?: Units;
  account?: Account;
  /** Node metadata in KB: added to the item size and to each node of a list response. @default 0 */
  metadataKb?: number;
  /** Nodes of one cluster that restart at once (the storm). @default a tenth of a cluster */
  stormRestarts?: number;
}

interface Check {
  id: string;
  limit: string;
  where: string;
  load: number;
  capacity: number;
  unit: string;
  lift: Omit<Extract<Lift, { by: 'quota' }>, 'ask'> | Exclude<Lift, { by: 'quota' }>;
  source: string;
  note?: string;
  /** For a limit lifted by another quota: that quota's figure per unit of this capacity (Lambda's request rate: 1/10 of a concurrency). @default 1 */
  quotaPerCapacity?: number;
}

const quotaOf = (limit: AwsLimit): Omit<Extract<Lift, { by: 'quota' }>, 'ask'> => {
  if (!('quota' in limit) || !limit.quota) throw new Error('not a quota');
  return { by: 'quota', ...limit.quota };
};

/** What the deployment's settings give the workload model. */
export function deploymentOf(settings: StackSettings): Deployment {
  const keepalive = settings.httpFunctions[httpRouteKeyOf('keepalive')];
  return {
    sweepIntervalSeconds: settings.detection.sweepIntervalSeconds,
    sweepShards: settings.detection.sweepShards,
    functionMemoryMb: keepalive?.memoryMb ?? 256,
    fanoutMemoryMb: settings.fanout.memoryMb,
    sweeperMemoryMb: settings.sweeper.memoryMb,
    fanoutPostsPerSecond: settings.detection.fanoutPostsPerSecond,
  };
}

/** The lease nodes get when they name none is the stack's; the SDK keeps alive every third of it. */
export const stackKeepaliveSeconds = (settings: StackSettings): number => settings.detection.defaultLeaseSeconds / 3;

/** The bytes of one node in a list: in the HTTP body, and in Lambda's response (the body is a JSON string there, its quotes escaped). */
export function listBytesPerNode(metadataKb: number): { body: number; lambda: number } {
  const now = Date.parse('2026-12-01T00:00:00.000Z');
  const item = sampleNodeItem(metadataKb, now);
  const json = JSON.stringify(toNode(item, now));
  // One node and its separating comma; in Lambda's response the body is JSON-encoded once more.
  return { body: Buffer.byteLength(json) + 1, lambda: Buffer.byteLength(JSON.stringify(json)) - 2 + 1 };
}

/**
 * The pages of one cluster's full list, as the SDK reads it (`limit` at its
 * largest) and the server cuts it (functions/core/list-page.ts: at most
 * `PAGE_MAX_BYTES` of nodes as written in Lambda's response).
 */
export function listPages(nodesPerCluster: number, metadataKb: number): { pages: number; nodesPerPage: number; pageBytes: { body: number; lambda: number } } {
  const perNode = listBytesPerNode(metadataKb);
  const nodesPerPage = Math.max(1, Math.min(LIST_PAGE_MAX, Math.floor(PAGE_MAX_BYTES / perNode.lambda)));
  const onPage = Math.min(Math.max(1, Math.ceil(nodesPerCluster)), nodesPerPage);
  return { pages: Math.max(1, Math.ceil(nodesPerCluster / nodesPerPage)), nodesPerPage, pageBytes: { body: onPage * perNode.body, lambda: onPage * perNode.lambda } };
}

/** What every group of checks reads. */
interface Ctx {
  w: Workload;
  r: Rates;
  settings: StackSettings;
  account: Account;
  metadataKb: number;
  /** Requests (and META reads) a full list takes: its pages. */
  listPages: number;
  units: Units;
  /** The share of one cluster's nodes that restart at once in the storm. */
  stormShare: number;
}

const perCluster = (c: Ctx, x: number): number => x / c.w.clusters;

/**
 * Writes a second of a cluster's revision counter: one per registration, and
 * the sweeper's one block per sweep that declares downs there (at most one a
 * sweep interval, however many downs).
 */
const metaWrites = (c: Ctx, registrations: number, downs: number): number => registrations + Math.min(downs, 1 / c.settings.detection.sweepIntervalSeconds);
/** The HTTP stage's throttle of one route against the load the workload puts on it. */
function httpRouteCheck(settings: Ctx['settings'], id: string, route: string, load: number, what: string): Check {
  const t = routeThrottle(settings.http, route);
  return {
    id: `http-route:${id}`,
    limit: `HTTP API stage throttle (${what})`,
    where: route,
    load,
    capacity: t.rateLimit,
    unit: 'requests/s',
    lift: { by: 'stack', how: `-c expectedNodes= (each hot route's throttle is twice the declared fleet's load; now ${t.rateLimit}, burst ${t.burstLimit}), up to the account's quota` },
    source: 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html',
    note: 'the stage throttle applies to each route separately (DefaultRouteSettings, or RouteSettings for that route)',
  };
}

/** The WebSocket stage's throttle of one route against the load the workload puts on it. */
function wsRouteCheck(settings: Ctx['settings'], route: string, load: number, what: string): Check {
  const t = routeThrottle(settings.webSocket, route);
  return {
    id: `ws-route:${route}`,
    limit: `WebSocket stage throttle (${what})`,
    where: route,
    load,
    capacity: t.rateLimit,
    unit: 'messages/s',
    lift: { by: 'stack', how: `-c expectedNodes= (each hot route's throttle is twice the declared fleet's load; now ${t.rateLimit}, burst ${t.burstLimit}), up to the account's quota` },
    source: 'https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-protect.html',
  };
}

/** The stage throttles of the routes the SDK uses, the account's API Gateway quotas. */
function gatewayChecks(c: Ctx): Check[] {
  const { r, settings, account } = c;
  const postRate = settings.detection.fanoutPostsPerSecond;
  // Every request of the account but the @connections posts: HTTP requests, pings, $connect.
  // A full list's pages after its first are requests of their own.
  const nonPosts = r.httpRequests + r.fullLists * (c.listPages - 1) + r.pings + r.reconnects;
  return [
    httpRouteCheck(settings, 'keepalive', httpRouteKeyOf('keepalive'), r.keepalives, 'keepalives'),
    httpRouteCheck(settings, 'list', httpRouteKeyOf('list-nodes'), r.refreshes + r.notModifiedSyncs + r.fullLists * c.listPages, 'list refreshes and syncs, a request a page of a full list'),
    httpRouteCheck(settings, 'register', httpRouteKeyOf('register'), r.registrations, 'registrations'),
    wsRouteCheck(settings, '$connect', r.reconnects, 'connections'),
    wsRouteCheck(settings, 'ping', r.pings, 'pings'),
    {
      id: 'apigw:account-rate',
      limit: "API Gateway's account throttle",
      where: 'the account, in the region',
      load: nonPosts + r.eventMessages,
      capacity: account.apiGatewayRate,
      unit: 'requests/s',
      lift: quotaOf(AWS_LIMITS.apiGatewayAccountRate),
      source: AWS_LIMITS.apiGatewayAccountRate.source,
      note: 'shared by every API of the account and its @connections posts: HTTP requests, client messages ($connect, ping) and one post per subscriber per event',
    },
    {
      id: 'apigw:event-burst',
      limit: "API Gateway's account burst, one event's posts",
      where: `one event, ${Math.round(r.recipients).toLocaleString('en-US')} subscribers`,
      // The fan-out's own bucket (functions/core/post-rate.ts) lets half a second of its rate go at once, the rest at the rate.
      load: Math.min(r.recipients, postRate / 2),
      capacity: account.apiGatewayBurst,
      unit: 'posts at once',
      lift: quotaOf(AWS_LIMITS.apiGatewayAccountRate),
      quotaPerCapacity: account.apiGatewayRate / account.apiGatewayBurst,
      source: AWS_LIMITS.apiGatewayAccountBurst.source,
      note: `the fan-out paces itself to ${postRate.toLocaleString('en-US')} posts a second (fanoutPostsPerSecond) with half a second's burst; an event's posts take ~${Math.round(r.fanout.ms)} ms. AWS sets the bucket from the rate quota, so raising the rate raises it`,
    },
    {
      id: 'apigw:fanout-peak',
      limit: "API Gateway's account throttle while an event is posted",
      where: 'the account, in the region',
      load: nonPosts + Math.max(r.eventMessages, Math.min(r.recipients, postRate)),
      capacity: account.apiGatewayRate,
      unit: 'requests/s',
      lift: quotaOf(AWS_LIMITS.apiGatewayAccountRate),
      source: AWS_LIMITS.apiGatewayAccountRate.source,
      note: `the steady requests and messages, and a second of one event's posts: all of them, or ${postRate.toLocaleString('en-US')} (the fan-out's pace) when there are more; -c fanoutPostsPerSecond= trades this against the stream shard's time`,
    },
    {
      id: 'ws:new-connections',
      limit: 'WebSocket new connections',
      where: 'the account, in the region',
      load: r.reconnects,
      capacity: account.webSocketNewConnections,
      unit: 'connections/s',
      lift: quotaOf(AWS_LIMITS.webSocketNewConnections),
      source: AWS_LIMITS.webSocketNewConnections.source,
    },
  ];
}

/** The account's Lambda concurrency and request rate. */
function lambdaChecks(c: Ctx): Check[] {
  const { r, account } = c;
  const lambdaRate = account.lambdaConcurrency * AWS_LIMITS.lambdaRequestsPerConcurrency.value;
  return [
    {
      id: 'lambda:concurrency',
      limit: 'Lambda concurrency',
      where: 'the account, in the region',
      load: r.concurrency + 1,
      capacity: account.lambdaConcurrency,
      unit: 'concurrent executions',
      lift: quotaOf(AWS_LIMITS.lambdaConcurrency),
      source: AWS_LIMITS.lambdaConcurrency.source,
      note: 'shared by every function of the account: invocations × assumed durations (bench/workload.ts), the sweeper always one',
    },
    {
      id: 'lambda:request-rate',
      limit: "Lambda's request rate (10 × concurrency)",
      where: 'the account, in the region',
      load: r.invocations + 1 / 60,
      capacity: lambdaRate,
      unit: 'invocations/s',
      lift: quotaOf(AWS_LIMITS.lambdaRequestsPerConcurrency),
      quotaPerCapacity: 1 / AWS_LIMITS.lambdaRequestsPerConcurrency.value,
      source: AWS_LIMITS.lambdaRequestsPerConcurrency.source,
    },
  ];
}

const PARTITION_SOURCE = AWS_LIMITS.dynamodbPartitionWrites.source;
const SHARD_KEYS = { by: 'design' as const, how: "spread the key's items over several partition keys (write sharding)" };
const ONE_ITEM = { by: 'design' as const, how: 'fewer writes to this one item (batch, shard the counter, or reserve values in blocks)' };

/** A cluster's partition key `C#{clusterId}` and its `META` item (functions/core/model.ts has the key layout). */
function clusterKeyChecks(c: Ctx): Check[] {
  const { w, r } = c;
  const clusterReadUnits = 0.5 * Math.ceil((r.nodesPerCluster * w.itemKb) / 4);
  // Every page of a full list reads the revision first (a walk that cannot continue is told so).
  const metaReads = perCluster(c, r.refreshes + r.notModifiedSyncs + r.fullLists * c.listPages);
  const clusterPartitionReads =
    perCluster(c, r.refreshes + r.notModifiedSyncs + r.fullLists * r.listRru + r.registrations * Math.ceil(w.itemKb / 4)) + perCluster(c, r.sweeperClusterReads) * clusterReadUnits;
  return [
    {
      id: 'ddb:cluster-partition-writes',
      limit: 'DynamoDB partition key writes',
      where: 'C#{clusterId}',
      load: perCluster(c, r.writesAt.node + r.writesAt.meta),
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: SHARD_KEYS,
      source: PARTITION_SOURCE,
      note: "a cluster's node items and its META item; keepalives are most of it; DynamoDB may split a hot key's items by sort key, but not reliably under a steady load",
    },
    {
      id: 'ddb:cluster-partition-reads',
      limit: 'DynamoDB partition key reads',
      where: 'C#{clusterId}',
      load: clusterPartitionReads,
      capacity: AWS_LIMITS.dynamodbPartitionReads.value,
      unit: 'read units/s',
      lift: { by: 'design', how: 'fewer full lists (conditional, paginated, compressed) or a sharded cluster key' },
      source: PARTITION_SOURCE,
      note: 'refreshes (the META item), full lists (consistent), registrations, the sweeper\'s cluster reads',
    },
    {
      id: 'ddb:meta-item-writes',
      limit: 'DynamoDB item writes',
      where: 'C#{clusterId} META',
      load: metaWrites(c, perCluster(c, r.registrations), perCluster(c, r.restarts)),
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: ONE_ITEM,
      source: PARTITION_SOURCE,
      note: "the cluster's revision counter: one write per registration or deregistration, and one per sweep for all the downs the sweep declares there (a block of revisions); an item never splits",
    },
    {
      id: 'ddb:meta-item-reads',
      limit: 'DynamoDB item reads',
      where: 'C#{clusterId} META',
      load: metaReads,
      capacity: AWS_LIMITS.dynamodbPartitionReads.value,
      unit: 'read units/s',
      lift: { by: 'design', how: 'answer refreshes without a consistent read of the one item (cache it, or read eventually consistent)' },
      source: PARTITION_SOURCE,
      note: 'read (consistent, 1 unit) by every list refresh answered 304 and every full list',
    },
  ];
}

/** A cluster's subscriptions `S#{clusterId}` and their `VERSION` item, the `CLUSTERS` partition, the expiry index. */
function otherKeyChecks(c: Ctx): Check[] {
  const { w, r, settings } = c;
  const clusters = w.clusters;
  const subscriptionReads = perCluster(c, r.events) * (SUBSCRIPTIONS_VERSION_SHARDS + Math.ceil((r.recipients * SUBSCRIPTION_ITEM_KB) / 4));
  return [
    {
      id: 'ddb:subscriptions-partition-writes',
      limit: 'DynamoDB partition key writes',
      where: 'S#{clusterId}',
      load: perCluster(c, r.writesAt.subscription + r.writesAt.version),
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: SHARD_KEYS,
      source: PARTITION_SOURCE,
      note: "the cluster's subscriptions and their version item: written by every $connect and $disconnect",
    },
    {
      id: 'ddb:subscriptions-partition-reads',
      limit: 'DynamoDB partition key reads',
      where: 'S#{clusterId}',
      load: subscriptionReads,
      capacity: AWS_LIMITS.dynamodbPartitionReads.value,
      unit: 'read units/s',
      lift: SHARD_KEYS,
      source: PARTITION_SOURCE,
      note: `per event, the version's ${SUBSCRIPTIONS_VERSION_SHARDS} shards (one BatchGetItem) and (counted always) the subscriptions Query`,
    },
    {
      id: 'ddb:version-item-writes',
      limit: 'DynamoDB item writes',
      where: `S#{clusterId} VERSION…VERSION#${SUBSCRIPTIONS_VERSION_SHARDS - 1} (each)`,
      load: perCluster(c, r.writesAt.version) / SUBSCRIPTIONS_VERSION_SHARDS,
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: ONE_ITEM,
      source: PARTITION_SOURCE,
      note: `the subscriptions version, counted in ${SUBSCRIPTIONS_VERSION_SHARDS} shards (each change in its connection's): 2 changes per reconnect`,
    },
    {
      id: 'ddb:clusters-partition-reads',
      limit: 'DynamoDB partition key reads',
      where: 'CLUSTERS',
      load: (0.5 * Math.ceil((clusters * SUBSCRIPTION_ITEM_KB) / 4)) / 60,
      capacity: AWS_LIMITS.dynamodbPartitionReads.value,
      unit: 'read units/s',
      lift: SHARD_KEYS,
      source: PARTITION_SOURCE,
      note: 'one item per cluster, read by every full sweep (once a minute); written when a cluster gets its first node',
    },
    {
      id: 'ddb:index-partition-writes',
      limit: 'DynamoDB index partition key writes',
      where: `UP#0..${settings.detection.sweepShards - 1} (each)`,
      load: r.writesAt.index / settings.detection.sweepShards,
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: { by: 'stack', how: '-c sweepShards= (more index partitions)' },
      source: PARTITION_SOURCE,
      note: 'the expiry index: registrations, lease cuts and DOWN writes move entries',
    },
  ];
}

/** The table's quotas and a new table's warm throughput. */
function tableChecks(c: Ctx): Check[] {
  const { r, account, settings } = c;
  // A table pre-warmed by the stack (infra/table.ts, from -c expectedNodes) serves that much at once; otherwise a new table's figure.
  const warmWrites = Math.max(AWS_LIMITS.dynamodbNewTableWarmWrites.value, settings.tableWarmThroughput?.writeUnitsPerSecond ?? 0);
  const warmReads = Math.max(AWS_LIMITS.dynamodbNewTableWarmReads.value, settings.tableWarmThroughput?.readUnitsPerSecond ?? 0);
  const prewarm = { by: 'stack' as const, how: "-c expectedNodes= (the stack pre-warms the table's WarmThroughput for the declared fleet)" };
  const heartbeatWrites = 0.1;
  const tableWrites = Object.values(r.writesAt).reduce((a, b) => a + b, 0) + heartbeatWrites;
  const tableReads = r.readUnits + r.sweeperReadUnits;
  return [
    {
      id: 'ddb:table-writes',
      limit: 'DynamoDB table writes (on-demand, with its index)',
      where: 'the table',
      load: tableWrites,
      capacity: account.tableWrites,
      unit: 'write units/s',
      lift: quotaOf(AWS_LIMITS.dynamodbTableWrites),
      source: AWS_LIMITS.dynamodbTableWrites.source,
    },
    {
      id: 'ddb:table-reads',
      limit: 'DynamoDB table reads (on-demand, with its index)',
      where: 'the table',
      load: tableReads,
      capacity: account.tableReads,
      unit: 'read units/s',
      lift: quotaOf(AWS_LIMITS.dynamodbTableReads),
      source: AWS_LIMITS.dynamodbTableReads.source,
    },
    {
      id: 'ddb:warm-writes',
      limit: "DynamoDB warm throughput of the table (writes)",
      where: 'the table',
      load: tableWrites,
      capacity: warmWrites,
      unit: 'write units/s',
      lift: prewarm,
      source: AWS_LIMITS.dynamodbNewTableWarmWrites.source,
      note: "what the table serves at once: a new on-demand table's figure, or the WarmThroughput the stack pre-warmed it to; DynamoDB raises it as traffic grows (to double a previous peak within 30 minutes), so only a fleet that arrives at once meets it",
    },
    {
      id: 'ddb:warm-reads',
      limit: "DynamoDB warm throughput of the table (reads)",
      where: 'the table',
      load: tableReads,
      capacity: warmReads,
      unit: 'read units/s',
      lift: prewarm,
      source: AWS_LIMITS.dynamodbNewTableWarmReads.source,
      note: "what the table serves at once: a new on-demand table's figure, or the WarmThroughput the stack pre-warmed it to; DynamoDB raises it as traffic grows (to double a previous peak within 30 minutes), so only a fleet that arrives at once meets it",
    },
  ];
}

/** A cluster's stream shard and the sweeper's time (one sweep's requests, at the assumed latencies). */
function fanoutAndSweepChecks(c: Ctx): Check[] {
  const { w, r, settings } = c;
  const clusters = w.clusters;
  const mapping = settings.fanoutMapping;
  const { requestMs, perMbMs } = DYNAMODB_LATENCY;
  const interval = settings.detection.sweepIntervalSeconds;
  const clusterMb = (r.nodesPerCluster * w.itemKb) / 1024;
  const clusterReadMs = Math.max(1, Math.ceil(clusterMb)) * requestMs + clusterMb * perMbMs;
  const downsPerSweep = r.restarts * interval;
  const scheduledClusters = (r.sweeperClusterReads - clusters * (1 / 60)) * interval;
  // Announced nodes are read alone, 100 keys a BatchGetItem.
  const announcedMs = Math.ceil((r.announcements * interval) / 100) * requestMs;
  const downsMs = downWritesMs(downsPerSweep);
  const sweepMs = (clustersRead: number) => settings.detection.sweepShards * requestMs + announcedMs + Math.ceil(clustersRead / CLUSTER_READS_IN_FLIGHT) * clusterReadMs + downsMs + requestMs;
  return [
    {
      id: 'stream:shard',
      limit: "Stream shard: the fan-out's time per second",
      where: "a cluster's shard",
      load: perCluster(c, r.events) * (r.fanout.ms / 1000),
      capacity: AWS_LIMITS.streamBatchesPerShard.value * mapping.parallelizationFactor,
      unit: 'fan-out seconds/s',
      lift: { by: 'design', how: 'batch events per message, or faster pages; a ParallelizationFactor above 1 loses the revision order' },
      source: AWS_LIMITS.streamBatchesPerShard.source,
      note: `a cluster's events are one partition key's, so one shard's, read ${mapping.parallelizationFactor} batch at a time; each event in its own batch (the worst case), ${r.fanout.pages} page${r.fanout.pages === 1 ? '' : 's'} of ${PAGE_SIZE} subscribers`,
    },
    {
      id: 'sweep:scheduled',
      limit: 'A sweep within its interval',
      where: `every ${interval} s, ${Math.max(0, scheduledClusters).toFixed(1)} clusters`,
      load: sweepMs(Math.max(0, scheduledClusters)) / 1000,
      capacity: interval,
      unit: 's',
      lift: { by: 'design', how: 'more cluster reads in flight' },
      source: SWEEP_SOURCE,
      note: `the clusters due, the announcement queries and the announced nodes, the DOWN writes (transactions of ${TRANSACTION_ITEMS}, ${SETTLE_TRANSACTIONS_IN_FLIGHT} in flight); assumed DynamoDB latencies: ${requestMs} ms a request, ${DYNAMODB_LATENCY.transactionMs} ms a transaction, ${perMbMs} ms more per MB read (${CLUSTER_READS_IN_FLIGHT} cluster reads in flight, 1 MB pages)`,
    },
    {
      id: 'sweep:full',
      limit: 'A full sweep within the interval',
      where: `once a minute, ${clusters.toLocaleString('en-US')} clusters`,
      load: sweepMs(clusters) / 1000,
      capacity: interval,
      unit: 's',
      lift: { by: 'design', how: 'more cluster reads in flight, or a full sweep spread over several sweeps' },
      source: SWEEP_SOURCE,
      note: 'every cluster read; a sweep that takes longer than the interval delays the next (and the detections it makes); the same assumed latencies',
    },
  ];
}

/** A page of one cluster's full list against the response size limits (functions/core/list-page.ts cuts the pages). */
function listChecks(c: Ctx): Check[] {
  const { r, metadataKb } = c;
  const { pages, nodesPerPage, pageBytes } = listPages(r.nodesPerCluster, metadataKb);
  const listOverhead = 200;
  const where = `${Math.round(r.nodesPerCluster).toLocaleString('en-US')} nodes in ${pages} page${pages === 1 ? '' : 's'} of at most ${nodesPerPage.toLocaleString('en-US')}`;
  return [
    {
      id: 'list:lambda-response',
      limit: "Lambda's response size (a list page)",
      where,
      load: pageBytes.lambda + listOverhead,
      capacity: AWS_LIMITS.lambdaResponseBytes.value,
      unit: 'bytes',
      lift: { by: 'design', how: `smaller pages (a page stops at ${PAGE_MAX_BYTES / 1024 / 1024} MiB of nodes as written in the response)` },
      source: AWS_LIMITS.lambdaResponseBytes.source,
      note: `GET …/nodes of one cluster, a page${metadataKb > 0 ? `, ${metadataKb} KB of metadata a node` : ''}; the handler's result carries the body as a JSON string, its quotes escaped; gzip-compressed, as base64, it is smaller`,
    },
    {
      id: 'list:http-payload',
      limit: 'HTTP API payload size (a list page)',
      where,
      load: pageBytes.body + listOverhead,
      capacity: AWS_LIMITS.httpPayloadBytes.value,
      unit: 'bytes',
      lift: { by: 'design', how: 'smaller pages' },
      source: AWS_LIMITS.httpPayloadBytes.source,
      note: 'GET …/nodes of one cluster, a page uncompressed',
    },
  ];
}

/** The storm of a workload: how many of one cluster's nodes restart, its events, its subscribers, its posts. */
function stormOf(c: Ctx): Omit<StormPlan, 'rows'> {
  const { w, r, settings, metadataKb } = c;
  const restarts = Math.round(c.stormShare * r.nodesPerCluster);
  const events = 2 * restarts;
  const subscribers = r.recipients;
  // The restarts that held a connection drop it, and subscribe again once registered.
  const rejoining = Math.min(subscribers, Math.round(restarts * Math.min(1, (w.boundNodes ?? w.nodes) / Math.max(1, w.nodes))));
  const timeline = stormTimeline(c, restarts, rejoining);
  const delivery = { events, eventBytes: eventMessageBytes(metadataKb), batchSize: settings.fanoutMapping.batchSize };
  const batched = stormPosts({ ...delivery, plain: 0, batched: subscribers - rejoining, timeline });
  const plain = stormPosts({ ...delivery, plain: subscribers, batched: 0 });
  const rate = settings.detection.fanoutPostsPerSecond;
  return { restarts, events, subscribers, eventBytes: delivery.eventBytes, batched, plain, batchedSeconds: batched.posts / rate, plainSeconds: plain.posts / rate };
}

/** Slots of the planned storm's timeline. */
const STORM_SLOT_MS = 100;

/**
 * When a planned storm's events reach the stream: the downs over one sweep
 * (its planned duration), then the registrations at the pace the register
 * route lets them in, the restarts that held a connection subscribing again
 * as they register. (Nodes that restart within their grace register before
 * their downs are declared: the waves then overlap, and batch better.)
 */
function stormTimeline(c: Ctx, restarts: number, rejoining: number): StormTimeline {
  const register = routeThrottle(c.settings.http, httpRouteKeyOf('register'));
  const registeringPerSecond = Math.max(1, Math.min(restarts, register.rateLimit + register.burstLimit));
  const slots = (ms: number): number => Math.max(1, Math.ceil(ms / STORM_SLOT_MS));
  const spread = (count: number, over: number): number[] => Array.from({ length: over }, (_, i) => Math.floor(((i + 1) * count) / over) - Math.floor((i * count) / over));
  const downSlots = slots(stormSweep(c, restarts).seconds * 1000);
  const registerSlots = slots((restarts / registeringPerSecond) * 1000);
  return {
    slotMs: STORM_SLOT_MS,
    eventsPerSlot: [...spread(restarts, downSlots), ...spread(restarts, registerSlots)],
    joinsPerSlot: [...spread(0, downSlots), ...spread(rejoining, registerSlots)],
    pollMs: AWS_LIMITS.streamIdlePollMs.value,
    postsPerSecond: c.settings.detection.fanoutPostsPerSecond,
  };
}

/** One sweep that declares a storm's downs: its parts (ms) and how long it takes (s). */
function stormSweep(c: Ctx, restarts: number): { partitionMs: number; vcpu: number; seconds: number } {
  const { w, r, settings, units } = c;
  const { requestMs, perMbMs } = DYNAMODB_LATENCY;
  const clusterMb = (r.nodesPerCluster * w.itemKb) / 1024;
  const readMs = Math.max(1, Math.ceil(clusterMb)) * requestMs + clusterMb * perMbMs;
  const writesMs = downWritesMs(restarts);
  // The cluster's node items share a partition key: its partition takes the transactions' two units an item at its rate.
  const partitionMs = ((restarts * TRANSACTION_WRITE_UNITS) / AWS_LIMITS.dynamodbPartitionWrites.value) * 1000;
  const vcpu = Math.min(1, deploymentOf(settings).sweeperMemoryMb / FULL_VCPU_MB);
  const cpuMs = (restarts * units.sweepCpuUsPerDown) / 1000 / vcpu;
  return { partitionMs, vcpu, seconds: Math.max(readMs + writesMs, readMs + partitionMs, cpuMs) / 1000 };
}

/**
 * A storm's peaks in one cluster (seconds long, not a steady load): its
 * restarts' registrations on the revision counter, its connections on the
 * subscriptions version's shards, the sweep that declares its downs, and
 * the account's request rate while the fan-out posts it.
 */
/** What would bring a storm's sweep under its interval (docs/measured/sweep.md). */
const STORM_SWEEP_LIFT = {
  by: 'design',
  how:
    "a cluster's node items spread over several partition keys (its downs then share more than one partition's 1,000 write units a second: " +
    'a transaction takes two an item), and more memory for the sweeper for its CPU (Lambda gives CPU in proportion, one vCPU at 1,769 MB: ' +
    'infra/sweeper.ts; billed every second) (docs/measured/sweep.md)',
} as const;

/** The single items a storm's registrations write once each: the cluster's revision counter and its CLUSTERS entry. */
/** Read units of an eventually consistent read of an item up to 4 KB (provisioned-capacity-mode reads). */
const EVENTUALLY_CONSISTENT_READ_UNITS = 0.5;

function registrationItemChecks(registering: number, restarts: string, interval: number, register: { rateLimit: number; burstLimit: number }): Check[] {
  return [
    {
      id: 'storm:meta-item-writes',
      limit: 'DynamoDB item writes, in a storm',
      where: `C#{clusterId} META, ${restarts} registering`,
      load: registering + 1 / interval,
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: { by: 'design', how: `pace registrations: the register route's throttle (rate ${register.rateLimit} + burst ${register.burstLimit} now) under 700 a second` },
      source: PARTITION_SOURCE,
      note:
        `the restarts register as fast as the register route admits them in a second (its burst and its rate), one revision each: that keeps revisions synchronous and gap-free (docs/how-it-works/architecture.md#revisions); ` +
        'the sweeper declares all the downs of a sweep with one write. Past 1,000 a second DynamoDB throttles the item: those registrations are answered 429, and the SDK retries them',
    },
    {
      id: 'storm:clusters-item-reads',
      limit: 'DynamoDB item reads, in a storm',
      where: `CLUSTERS {clusterId}, ${restarts} registering`,
      load: registering * EVENTUALLY_CONSISTENT_READ_UNITS,
      capacity: AWS_LIMITS.dynamodbPartitionReads.value,
      unit: 'read units/s',
      lift: { by: 'design', how: "remember listed clusters in the register function (an entry changes only when its cluster comes or goes)" },
      source: PARTITION_SOURCE,
      note:
        "a restarting node's retained record kept its cluster listed, so its registration reads the cluster's entry (eventually consistent, half a unit) instead of writing it; " +
        'only a node new to the cluster, or one whose record is gone, writes it (functions/core/registry.ts, keepClusterListed). ' +
        "Every cluster's entry is in the one CLUSTERS partition, so storms in several clusters at once add up there",
    },
  ];
}

function stormChecks(c: Ctx): Check[] {
  const { r, settings, account, units } = c;
  const storm = stormOf(c);
  const interval = settings.detection.sweepIntervalSeconds;
  const register = routeThrottle(settings.http, httpRouteKeyOf('register'));
  const registering = Math.min(storm.restarts, register.rateLimit + register.burstLimit);
  const connect = routeThrottle(settings.webSocket, '$connect');
  const connecting = Math.min(storm.subscribers, account.webSocketNewConnections, connect.rateLimit + connect.burstLimit);
  const lambdaRate = account.lambdaConcurrency * AWS_LIMITS.lambdaRequestsPerConcurrency.value;
  const dropping = Math.min(storm.subscribers, lambdaRate);
  const { partitionMs, vcpu, seconds: sweepSeconds } = stormSweep(c, storm.restarts);
  // The fan-out posts the storm at its rate, the steady events' posts among them.
  const accountWhilePosting = r.httpRequests + r.fullLists * (c.listPages - 1) + r.pings + r.reconnects + Math.max(r.eventMessages, settings.detection.fanoutPostsPerSecond);
  const restarts = storm.restarts.toLocaleString('en-US');
  return [
    ...registrationItemChecks(registering, restarts, interval, register),
    {
      id: 'storm:version-item-writes',
      limit: 'DynamoDB item writes, in a storm',
      where: `S#{clusterId} VERSION…#${SUBSCRIPTIONS_VERSION_SHARDS - 1} (each), connecting`,
      load: (connecting + storm.restarts) / SUBSCRIPTIONS_VERSION_SHARDS,
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: ONE_ITEM,
      source: PARTITION_SOURCE,
      note: `the cluster's ${storm.subscribers.toLocaleString('en-US')} subscribers connecting as fast as new connections are let in (${connecting.toLocaleString('en-US')} a second: the account's quota and the $connect throttle), and the restarts' connections dropping, over ${SUBSCRIPTIONS_VERSION_SHARDS} shards`,
    },
    {
      id: 'storm:version-item-drops',
      limit: 'DynamoDB item writes, in a storm',
      where: `S#{clusterId} VERSION…#${SUBSCRIPTIONS_VERSION_SHARDS - 1} (each), all dropping`,
      load: dropping / SUBSCRIPTIONS_VERSION_SHARDS,
      capacity: AWS_LIMITS.dynamodbPartitionWrites.value,
      unit: 'write units/s',
      lift: ONE_ITEM,
      source: PARTITION_SOURCE,
      note: `every connection of the cluster dropping within a second (a network fault on their side): $disconnect runs at most at Lambda's request rate (${lambdaRate.toLocaleString('en-US')} a second), over ${SUBSCRIPTIONS_VERSION_SHARDS} shards`,
    },
    {
      id: 'storm:sweep',
      limit: "One sweep declaring the storm's downs",
      where: `${restarts} downs, sweeper ${deploymentOf(settings).sweeperMemoryMb} MB`,
      load: sweepSeconds,
      capacity: interval,
      unit: 's',
      lift: STORM_SWEEP_LIFT,
      source: SWEEP_SOURCE,
      note:
        `the cluster read, one block of revisions, the DOWN writes in transactions of ${TRANSACTION_ITEMS} (${SETTLE_TRANSACTIONS_IN_FLIGHT} in flight, the assumed ${DYNAMODB_LATENCY.transactionMs} ms each) ` +
        `and no faster than the cluster's partition takes ${TRANSACTION_WRITE_UNITS} write units a DOWN (${Math.round(partitionMs).toLocaleString('en-US')} ms, unless split for heat spreads its items) — ` +
        `or the sweeper's CPU, if longer: ${units.sweepCpuUsPerDown} µs a DOWN (measured, scripts/measure-sweep.ts) on ${vcpu.toFixed(2)} of a vCPU. A sweep longer than its interval delays the crash detections it makes`,
    },
    {
      id: 'storm:account-rate',
      limit: "API Gateway's account throttle, while the fan-out posts a storm",
      where: 'the account, in the region',
      load: accountWhilePosting + registering + connecting,
      capacity: account.apiGatewayRate,
      unit: 'requests/s',
      lift: quotaOf(AWS_LIMITS.apiGatewayAccountRate),
      source: AWS_LIMITS.apiGatewayAccountRate.source,
      note: `the steady load, the fan-out posting at its rate (fanoutPostsPerSecond, ${settings.detection.fanoutPostsPerSecond.toLocaleString('en-US')}) for ${Math.round(storm.batchedSeconds).toLocaleString('en-US')} s, the restarts' registrations and the connections of the storm's first second`,
    },
  ];
}

/** Every limit's load and capacity for one workload: the steady state's, or a storm's. */
function checks(c: Ctx, kind: 'steady' | 'storm'): Check[] {
  if (kind === 'storm') return stormChecks(c);
  return [...gatewayChecks(c), ...lambdaChecks(c), ...clusterKeyChecks(c), ...otherKeyChecks(c), ...tableChecks(c), ...fanoutAndSweepChecks(c), ...listChecks(c)];
}

/** The workload `f` times larger: nodes, watchers and churn scaled, the clusters as they are. */
const scaled = (w: Workload, f: number): Workload => ({ ...w, nodes: w.nodes * f, subscribers: w.subscribers * f, churnPerHour: w.churnPerHour * f });

/** The limits for a workload, with no breaking points (see `plan`). */
function evaluate(w: Workload, settings: StackSettings, account: Account, units: Units, metadataKb: number, kind: 'steady' | 'storm', stormShare: number): Check[] {
  const item = { ...w, itemKb: w.itemKb + metadataKb };
  const r = operationRates(item, units, deploymentOf(settings));
  return checks({ w: item, r, settings, account, metadataKb, listPages: listPages(r.nodesPerCluster, metadataKb).pages, units, stormShare }, kind);
}

/** Rounds a quota figure up to two significant digits. */
function roundUp(x: number): number {
  if (x <= 0) return 0;
  const step = 10 ** Math.max(0, Math.floor(Math.log10(x)) - 1);
  return Math.ceil(x / step) * step;
}

interface RowOptions {
  wanted?: (id: string) => boolean;
  kind?: 'steady' | 'storm';
  stormShare?: number;
}

function rowsOf(w: Workload, settings: StackSettings, account: Account, units: Units, metadataKb: number, options: RowOptions = {}): LimitRow[] {
  const { wanted = () => true, kind = 'steady', stormShare = DEFAULT_STORM_SHARE } = options;
  const base = evaluate(w, settings, account, units, metadataKb, kind, stormShare);
  const utilizationAt = (f: number, i: number): number => {
    const c = evaluate(scaled(w, f), settings, account, units, metadataKb, kind, stormShare)[i] as Check;
    return c.load / c.capacity;
  };
  return base.flatMap((c, i) => {
    if (!wanted(c.id)) return [];
    const utilization = c.load / c.capacity;
    // Every load grows with the fleet: the breaking point is found by bisection on the scale (in log space).
    let breaksAtNodes = Infinity;
    const max = 1e4;
    if (utilizationAt(max, i) >= 1) {
      let lo = 1e-4;
      let hi = max;
      if (utilizationAt(lo, i) >= 1) {
        // Over at any fleet size: the load depends on what does not scale (the clusters), not on the nodes.
        breaksAtNodes = 0;
      } else {
        for (let k = 0; k < 60; k++) {
          const mid = Math.sqrt(lo * hi);
          if (utilizationAt(mid, i) >= 1) hi = mid;
          else lo = mid;
        }
        breaksAtNodes = w.nodes * hi;
      }
    }
    const { quotaPerCapacity = 1, ...row } = c;
    const lift: Lift = c.lift.by === 'quota' ? { ...c.lift, ask: roundUp(c.capacity * quotaPerCapacity * Math.max(1, utilization / 0.7)) } : c.lift;
    return [{ ...row, utilization, breaksAtNodes, lift }];
  });
}

/** The capacity plan of a workload on a deployment with `settings`. */
export function plan(w: Workload, settings: StackSettings, options: PlanOptions = {}): CapacityPlan {
  const units = options.units ?? MEASURED_UNITS;
  const account = options.account ?? DEFAULT_ACCOUNT;
  const metadataKb = options.metadataKb ?? 0;
  const rows = rowsOf(w, settings, account, units, metadataKb);
  const newAccountConcurrency = AWS_LIMITS.lambdaConcurrencyNewAccount.value;
  const newAccount = rowsOf(w, settings, { ...account, lambdaConcurrency: newAccountConcurrency }, units, metadataKb, { wanted: (id) => id.startsWith('lambda:') }).map((row) => ({ ...row, id: `new-account:${row.id}`, limit: `${row.limit}, a new account (${newAccountConcurrency})`, note: AWS_LIMITS.lambdaConcurrencyNewAccount.note }));
  const nodesPerCluster = w.nodes / w.clusters;
  const stormShare = options.stormRestarts === undefined ? DEFAULT_STORM_SHARE : Math.min(1, options.stormRestarts / nodesPerCluster);
  const item = { ...w, itemKb: w.itemKb + metadataKb };
  const stormRates = operationRates(item, units, deploymentOf(settings));
  const storm: StormPlan = {
    ...stormOf({ w: item, r: stormRates, settings, account, metadataKb, listPages: listPages(stormRates.nodesPerCluster, metadataKb).pages, units, stormShare }),
    rows: rowsOf(w, settings, account, units, metadataKb, { kind: 'storm', stormShare }),
  };
  const firstToBreak = rows.reduce<LimitRow | undefined>((first, row) => {
    if (row.breaksAtNodes === Infinity) return first;
    if (!first || row.breaksAtNodes < first.breaksAtNodes || (row.breaksAtNodes === first.breaksAtNodes && row.utilization > first.utilization)) return row;
    return first;
  }, undefined);
  return { workload: w, settings: settings.source, account, rows, newAccount, firstToBreak, storm };
}

/** The limits at or above `threshold` of their capacity (0.7: the 70% the design aims under), in the plan's order. */
export const limitsOver = (p: CapacityPlan, threshold: number): LimitRow[] => p.rows.filter((row) => row.utilization >= threshold);

const UNITS_SHOWN: Record<string, string> = {
  'requests/s': 'req/s',
  'messages/s': 'msg/s',
  'connections/s': 'conn/s',
  'concurrent executions': 'concurrent',
  'invocations/s': 'inv/s',
  'write units/s': 'WCU/s',
  'read units/s': 'RCU/s',
  'fan-out seconds/s': 's/s',
  'posts at once': 'posts',
};

/** A figure with its unit, compact: bytes as KB/MB, large numbers with separators, small ones with two significant digits. */
export function quantity(value: number, unit: string): string {
  if (unit === 'bytes') return value >= 1024 * 1024 ? `${(value / 1024 / 1024).toFixed(1)} MB` : `${(value / 1024).toFixed(1)} KB`;
  const shown = UNITS_SHOWN[unit] ?? unit;
  const n = value >= 100 ? Math.round(value).toLocaleString('en-US') : value >= 1 ? value.toFixed(1) : value === 0 ? '0' : value.toPrecision(2);
  return `${n} ${shown}`;
}

const percent = (x: number): string => (x >= 10 ? `${Math.round(x * 100).toLocaleString('en-US')}%` : x >= 0.01 ? `${(x * 100).toFixed(1)}%` : x > 0 ? '<0.1%' : '0%');
const nodesShown = (n: number): string =>
  n === Infinity ? 'never' : n === 0 ? 'any size' : `${Number(n.toPrecision(n >= 1000 ? 3 : 2)).toLocaleString('en-US')} nodes`;

function liftShown(lift: Lift, utilization: number): string {
  if (lift.by === 'quota') return `a quota increase: ${lift.service} "${lift.name}" (${lift.code})${utilization >= 0.7 ? `, ask for ${lift.ask.toLocaleString('en-US')}` : ''}`;
  return `${lift.by === 'stack' ? 'a stack setting' : 'a change of design'}: ${lift.how}`;
}

/** A route key as the table shows it: the common prefix shortened. */
const whereShown = (where: string): string => where.replace('/v1/clusters/{clusterId}', '…');

/** The storm's section of the plan: what it is, its peaks against their limits, and its posts. */
function renderStorm(storm: StormPlan, sourceIndex: (url: string) => number): string[] {
  const n = (x: number): string => Math.round(x).toLocaleString('en-US');
  const lines = [
    `In a storm: ${n(storm.restarts)} nodes of one cluster restart at once (${n(storm.events)} events, ${n(storm.eventBytes)} B each, to its ${n(storm.subscribers)} subscribers). Peaks of seconds, not counted above:`,
  ];
  const rows = [['', 'LIMIT', 'WHERE', 'PEAK', 'LIMIT AT', 'USE', 'LIFTED BY']];
  for (const row of storm.rows) {
    const mark = row.utilization >= 1 ? '!!' : row.utilization >= 0.7 ? '!' : '';
    rows.push([mark, `${row.limit} [${sourceIndex(row.source)}]`, whereShown(row.where), quantity(row.load, row.unit), quantity(row.capacity, row.unit), percent(row.utilization), row.lift.by]);
  }
  lines.push(...table(rows));
  for (const row of storm.rows.filter((r) => r.utilization >= 0.7)) {
    lines.push(`  ${row.limit} (${whereShown(row.where)}), ${percent(row.utilization)}: ${liftShown(row.lift, row.utilization)}.`);
    if (row.note) lines.push(`    ${row.note}`);
  }
  lines.push(
    `Its posts: ${n(storm.batched.posts)} with every subscriber batching (${n(storm.batched.perBatched)} EVENTS messages each, at most 32 KB), ` +
      `${n(storm.plain.posts)} with none (${n(storm.plain.perPlain)} each); at the fan-out's rate, ${n(storm.batchedSeconds)} s and ${n(storm.plainSeconds)} s.`,
  );
  lines.push('');
  return lines;
}

/** The plan as text: one row per limit, the first to break, the quotas to ask for, the new account, the sources. */
export function renderPlan(p: CapacityPlan): string[] {
  const w = p.workload;
  const lines: string[] = [];
  const perCluster = w.nodes / w.clusters;
  lines.push(
    `Roster's limits on AWS: ${w.nodes.toLocaleString('en-US')} nodes in ${w.clusters.toLocaleString('en-US')} cluster${w.clusters === 1 ? '' : 's'} (${Number(perCluster.toPrecision(3)).toLocaleString('en-US')} each), ` +
      `${w.subscribers.toLocaleString('en-US')} extra watchers, a keepalive every ${Number(w.keepaliveSeconds.toFixed(2))} s (lease ${Number((3 * w.keepaliveSeconds).toFixed(2))} s), ` +
      `a list refresh every ${w.refreshSeconds} s, a ping every ${w.pingSeconds} s, ${Number(w.churnPerHour.toPrecision(3)).toLocaleString('en-US')} restarts/h; steady state, no storm`,
  );
  lines.push(`Stack settings: ${p.settings}. Account: Lambda concurrency ${p.account.lambdaConcurrency.toLocaleString('en-US')}, API Gateway ${p.account.apiGatewayRate.toLocaleString('en-US')} requests/s.`);
  lines.push('');
  const sources: string[] = [];
  const sourceIndex = (url: string): number => {
    const at = sources.indexOf(url);
    if (at >= 0) return at + 1;
    sources.push(url);
    return sources.length;
  };
  const rows = [['', 'LIMIT', 'WHERE', 'LOAD', 'LIMIT AT', 'USE', 'BREAKS AT', 'LIFTED BY']];
  for (const row of [...p.rows, ...p.newAccount]) {
    const mark = row.utilization >= 1 ? '!!' : row.utilization >= 0.7 ? '!' : '';
    rows.push([
      mark,
      `${row.limit} [${sourceIndex(row.source)}]`,
      whereShown(row.where),
      quantity(row.load, row.unit),
      quantity(row.capacity, row.unit),
      percent(row.utilization),
      `${nodesShown(row.breaksAtNodes)}${row === p.firstToBreak ? ' ◀ first' : ''}`,
      row.lift.by,
    ]);
  }
  lines.push(...table(rows));
  lines.push('');
  const detailed = [...limitsOver(p, 0.7), ...(p.firstToBreak && p.firstToBreak.utilization < 0.7 ? [p.firstToBreak] : []), ...p.newAccount.filter((r) => r.utilization >= 0.7)];
  if (detailed.length > 0) {
    lines.push('What lifts them:');
    for (const row of detailed) {
      lines.push(`  ${row.limit} (${whereShown(row.where)}), ${percent(row.utilization)}: ${liftShown(row.lift, row.utilization)}.`);
      if (row.note) lines.push(`    ${row.note}`);
    }
    lines.push('');
  }
  const f = p.firstToBreak;
  lines.push(f ? `First to break: ${f.limit} (${f.where}), at ${nodesShown(f.breaksAtNodes)}: ${percent(f.utilization)} now.` : 'No limit breaks however large the fleet grows.');
  const over = limitsOver(p, 0.7);
  lines.push(over.length === 0 ? 'Every limit is under 70%.' : `At or over 70% (!) or 100% (!!): ${over.length} of ${p.rows.length} limits.`);
  const asks = new Map<string, string>();
  for (const row of [...over, ...p.newAccount.filter((r) => r.utilization >= 0.7)]) {
    if (row.lift.by !== 'quota') continue;
    const key = `${row.lift.service} "${row.lift.name}" (${row.lift.code})${row.id.startsWith('new-account:') ? ' on a new account' : ''}`;
    const ask = row.lift.ask.toLocaleString('en-US');
    const previous = asks.get(key);
    if (previous === undefined || Number(previous.replace(/,/g, '')) < row.lift.ask) asks.set(key, ask);
  }
  if (asks.size > 0) {
    lines.push('Quota increases to ask for in Service Quotas (to keep the load under 70%):');
    for (const [key, ask] of asks) lines.push(`  ${key}: ${ask}`);
  }
  lines.push('');
  lines.push(...renderStorm(p.storm, sourceIndex));
  lines.push('Model: bench/planner.ts (loads from bench/workload.ts, shared with `roster cost`; AWS figures in bench/aws-limits.ts). Sources:');
  sources.forEach((url, i) => lines.push(`  [${i + 1}] ${url}`));
  return lines;
}
