/**
 * `roster cost`: the monthly AWS bill of a Roster deployment, by component,
 * following what the code does per operation, beside the same workload on
 * AWS Cloud Map and on a self-hosted three-node etcd. Prices: bench/prices.ts.
 *
 * What the code does, per operation (functions/core, client/):
 * - keepalive: 1 HTTP API request, 1 Lambda invocation, 1 conditional
 *   UpdateItem that rewrites `expiresAt`, the sort key of the `byExpiry`
 *   index: 1 WRU for the item (≤ 1 KB) + 2 WRU for the index (a changed index
 *   key is a delete and a put). The stream filter drops it: no fan-out.
 * - list (each client's anti-entropy refresh, SDK default every 30 s): 1 HTTP
 *   request, 1 Lambda, a consistent GetItem of the cluster revision and a
 *   consistent Query of every node item of the cluster (1 RRU per 4 KB).
 * - event (a node registering or going down): its writes (a revision `ADD`,
 *   the node item and its index entry), 1 fan-out invocation, 1 consistent
 *   Query of the cluster's subscriptions, 1 message per subscriber.
 * - each WebSocket connection: connection minutes; `{"action":"ping"}` every
 *   30 s (SDK default) = 2 messages (ping and PONG) and 1 Lambda invocation;
 *   a reconnect every ~107 min ahead of API Gateway's 2-hour limit =
 *   `$connect` + `$disconnect` (2 invocations, connection and subscription
 *   items, and for a bound node its bind and lease cut).
 * - the sweeper: EventBridge every minute, sweeping every second (README:
 *   "What the sweeper costs when nothing happens").
 * Not counted: data transfer out (nodes outside AWS pay $0.09/GB for
 * responses), CloudWatch Logs, storage (a few MB, inside DynamoDB's free 25 GB).
 */
import { table } from './table.ts';
import { HOURS_PER_MONTH, PRICES, SECONDS_PER_MONTH } from './prices.ts';

export interface CostInput {
  /** Nodes (each runs the SDK: keeps alive, holds a bound connection, refreshes its list). */
  nodes: number;
  /** Seconds between keepalives (the lease is three times this). */
  keepaliveSeconds: number;
  /** WebSocket watchers besides the nodes' own bound connections. */
  subscribers: number;
  /** Node restarts per hour; each is a NODE_DOWN and a NODE_REGISTERED. @default nodes / 24 (each node restarts once a day) */
  churnPerHour: number;
  /** Clusters the nodes and watchers are spread over evenly. @default 1 */
  clusters: number;
  /** Seconds between each client's list refresh (SDK `refreshIntervalMs`). @default 30 */
  refreshSeconds: number;
  /** Seconds between each connection's ping (SDK `pingIntervalMs`). @default 30 */
  pingSeconds: number;
  /** Billed duration of a keepalive invocation (one UpdateItem). @default 10 */
  keepaliveLambdaMs: number;
  /** Size of a node item in KB (1 KB per WRU; larger metadata costs more). @default 1 */
  itemKb: number;
}

export interface CostLine {
  component: string;
  quantity: string;
  usd: number;
}

export interface CostEstimate {
  input: CostInput;
  lines: CostLine[];
  total: number;
}

/** Lambda memory of the HTTP and WebSocket functions (infra/function.ts default). */
const FUNCTION_GB = 0.25;
/** The fan-out runs on a full vCPU (infra/roster-stack.ts FANOUT_MEMORY_MB). */
const FANOUT_GB = 1.769;
const SWEEPER_GB = 0.125;
/** Assumed billed durations (ms) of the other invocations, warm, arm64. */
const DURATION_MS = {
  register: 30,
  listBase: 15,
  /** Per node in the list: unmarshalling and serialising the answer. */
  listPerNode: 0.005,
  ping: 3,
  /** A refresh answered 304: one consistent GetItem of the revision counter. */
  notModified: 8,
  connect: 20,
  disconnect: 20,
  fanoutBase: 20,
  /** Per subscriber: one PostToConnection with 64 in flight; CPU-bound (measured ~0.4 ms of CPU per post on one core locally). */
  fanoutPerSubscriber: 0.4,
};
/** Connections are replaced every 100–115 minutes, ahead of API Gateway's 2-hour limit. */
export const RECONNECTS_PER_CONNECTION = (HOURS_PER_MONTH * 60) / 107.5;
const SUBSCRIPTION_ITEM_KB = 0.1;
const SWEEPS_PER_MONTH = SECONDS_PER_MONTH; // one per second
const SWEEP_SHARDS = 4;

const millions = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));

export function defaults(nodes: number): CostInput {
  return { nodes, keepaliveSeconds: 5, subscribers: 0, churnPerHour: nodes / 24, clusters: 1, refreshSeconds: 30, pingSeconds: 30, keepaliveLambdaMs: 10, itemKb: 1 };
}

/** The Roster bill for one month, by component. */
export function rosterCost(input: CostInput): CostEstimate {
  const { nodes, keepaliveSeconds, subscribers, churnPerHour, clusters, refreshSeconds, pingSeconds, keepaliveLambdaMs, itemKb } = input;
  const p = PRICES;
  const itemWru = Math.ceil(itemKb);
  const nodesPerCluster = nodes / clusters;
  const connections = nodes + subscribers;
  const recipients = connections / clusters;
  const restarts = churnPerHour * HOURS_PER_MONTH;
  const events = 2 * restarts;

  const keepalives = (nodes * SECONDS_PER_MONTH) / keepaliveSeconds;
  // A periodic refresh of an up-to-date cache is answered 304 from the revision counter alone
  // (If-None-Match); the whole list is read after each (re)connection, when the cache may be behind.
  const refreshes = (connections * SECONDS_PER_MONTH) / refreshSeconds;
  const registrations = restarts;
  const pings = (connections * SECONDS_PER_MONTH) / pingSeconds;
  const reconnects = connections * RECONNECTS_PER_CONNECTION + restarts;

  const fullLists = reconnects;
  const httpRequests = keepalives + refreshes + fullLists + registrations;
  const listMs = DURATION_MS.listBase + DURATION_MS.listPerNode * nodesPerCluster;
  const fanoutMs = DURATION_MS.fanoutBase + DURATION_MS.fanoutPerSubscriber * recipients;
  const invocations = httpRequests + pings + 2 * reconnects + events;
  const gbSeconds =
    (FUNCTION_GB *
      (keepalives * keepaliveLambdaMs +
        refreshes * DURATION_MS.notModified +
        fullLists * listMs +
        registrations * DURATION_MS.register +
        pings * DURATION_MS.ping +
        reconnects * (DURATION_MS.connect + DURATION_MS.disconnect)) +
      FANOUT_GB * events * fanoutMs) /
    1000;

  const messages = events * recipients + 2 * pings;
  const connectionMinutes = (connections * SECONDS_PER_MONTH) / 60;

  // Writes: keepalive = item + index delete and put; an event = revision ADD + item + one index write;
  // a reconnect = connection and subscription items (put, then delete) and, for a bound node, the
  // bind and the lease cut, each rewriting the index key.
  const boundShare = nodes / connections;
  const wru =
    keepalives * (itemWru + 2) +
    events * (1 + itemWru + 1) +
    reconnects * (4 + boundShare * 2 * (itemWru + 2)) +
    SWEEPS_PER_MONTH / 10; // the sweeper's heartbeat, at most every 10 s
  const listRru = 1 + Math.ceil((nodesPerCluster * itemKb) / 4);
  const rru =
    refreshes * 1 +
    fullLists * listRru +
    registrations * Math.ceil(itemKb / 4) +
    events * Math.ceil((recipients * SUBSCRIPTION_ITEM_KB) / 4) +
    SWEEPS_PER_MONTH * SWEEP_SHARDS * 0.5 +
    HOURS_PER_MONTH * 60;
  const sweeperGbSeconds = HOURS_PER_MONTH * 60 * 60 * SWEEPER_GB;
  const sweeperInvocations = HOURS_PER_MONTH * 60;

  const lines: CostLine[] = [
    { component: 'HTTP API requests', quantity: `${millions(keepalives)} keepalives + ${millions(refreshes)} refreshes (304) + ${millions(fullLists)} full lists + ${millions(registrations)} registrations`, usd: httpRequests * p.httpApiRequest.usd },
    { component: 'WebSocket messages', quantity: `${millions(events * recipients)} event messages + ${millions(2 * pings)} ping/PONG`, usd: messages * p.websocketMessage.usd },
    { component: 'WebSocket connection minutes', quantity: `${connections} connections × ${millions(SECONDS_PER_MONTH / 60)} min`, usd: connectionMinutes * p.websocketConnectionMinute.usd },
    { component: 'Lambda requests', quantity: `${millions(invocations)} invocations (HTTP, ping, $connect/$disconnect, fan-out)`, usd: invocations * p.lambdaRequest.usd },
    { component: 'Lambda duration (arm64; 256 MB, fan-out 1,769 MB)', quantity: `${millions(gbSeconds)} GB-s`, usd: gbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'DynamoDB writes', quantity: `${millions(wru)} WRU (keepalive ${itemWru + 2} WRU each)`, usd: wru * p.dynamodbWriteUnit.usd },
    { component: 'DynamoDB reads', quantity: `${millions(rru)} RRU (a refresh 1, a full list ${listRru})`, usd: rru * p.dynamodbReadUnit.usd },
    { component: 'sweeper Lambda', quantity: `${millions(sweeperInvocations)} invocations, ${millions(sweeperGbSeconds)} GB-s`, usd: sweeperInvocations * p.lambdaRequest.usd + sweeperGbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'DynamoDB Streams reads by the fan-out trigger', quantity: 'free', usd: 0 },
  ];
  return { input, lines, total: lines.reduce((sum, l) => sum + l.usd, 0) };
}

export interface Alternative {
  name: string;
  usd: number;
  /** What the figure is made of. */
  basis: string;
  crashDetection: string;
  hangDetection: string;
}

/**
 * The same workload on AWS Cloud Map: each node an HTTP-namespace instance
 * with a Route 53 health check at the fast (10 s) interval; Cloud Map has no
 * push, so each client polls `DiscoverInstancesRevision` every `pollSeconds`
 * and calls `DiscoverInstances` when the revision changed. (For instances in
 * a VPC Route 53 cannot check, a custom health checker you run calls
 * `UpdateInstanceCustomHealthStatus`, and Cloud Map applies it ~30 s later.)
 */
export function cloudMapCost(input: CostInput, pollSeconds = 10): Alternative {
  const p = PRICES;
  const clients = input.nodes + input.subscribers;
  const polls = (clients * SECONDS_PER_MONTH) / pollSeconds;
  const fetches = 2 * input.churnPerHour * HOURS_PER_MONTH * clients;
  const usd =
    input.nodes * (p.cloudMapInstanceMonth.usd + p.route53HealthCheckMonth.usd + p.route53FastIntervalMonth.usd) + (polls + fetches) * p.cloudMapDiscoveryCall.usd;
  return {
    name: 'AWS Cloud Map',
    usd,
    basis: `${input.nodes} instances and fast health checks; ${millions(polls + fetches)} discovery calls (poll every ${pollSeconds} s)`,
    crashDetection: `≈ ${30 + pollSeconds} s (3 failed 10 s checks + poll)`,
    hangDetection: `≈ ${30 + pollSeconds} s (only if the hang fails the health check)`,
  };
}

/**
 * Self-hosted etcd: three t4g.small instances (one per AZ) with 20 GB gp3
 * each, whatever the node count (one cluster handles 10,000 leases; past
 * that, size up). Cross-AZ replication traffic and the people to run it are
 * not counted.
 */
export function etcdCost(input: CostInput): Alternative {
  const p = PRICES;
  const usd = 3 * (p.ec2T4gSmallHour.usd * HOURS_PER_MONTH + 20 * p.ebsGp3GbMonth.usd);
  const lease = 3 * input.keepaliveSeconds;
  return {
    name: 'etcd, 3 × t4g.small (self-hosted)',
    usd,
    basis: '3 × (t4g.small + 20 GB gp3)',
    crashDetection: `≈ ${lease} s (lease TTL: no connection-bound liveness)`,
    hangDetection: `≈ ${lease} s (lease TTL)`,
  };
}

export function rosterDetection(input: CostInput): { crash: string; hang: string } {
  const lease = 3 * input.keepaliveSeconds;
  return { crash: '≈ 3.5 s (grace 2 s + sweep 1 s + delivery)', hang: `≈ ${lease + 1.5} s (lease ${lease} s + sweep 1 s + delivery)` };
}

const usd = (x: number): string => (x >= 100 ? `$${Math.round(x).toLocaleString('en-US')}` : `$${x.toFixed(2)}`);

export function renderCost(estimate: CostEstimate): string[] {
  const { input } = estimate;
  const lines: string[] = [];
  lines.push(
    `Roster on AWS, monthly (${HOURS_PER_MONTH} h), us-east-1 on-demand, no free tier: ${input.nodes} nodes keeping alive every ${input.keepaliveSeconds} s (lease ${3 * input.keepaliveSeconds} s), ` +
      `${input.subscribers} extra watchers, ${input.clusters} cluster${input.clusters === 1 ? '' : 's'}, ${input.churnPerHour.toFixed(1)} restarts/h, list refresh every ${input.refreshSeconds} s, ping every ${input.pingSeconds} s`,
  );
  lines.push('');
  const rows = [['COMPONENT', 'QUANTITY', 'USD/MONTH']];
  for (const line of estimate.lines) rows.push([line.component, line.quantity, usd(line.usd)]);
  rows.push(['total', '', usd(estimate.total)]);
  lines.push(...table(rows));
  lines.push('');
  const detection = rosterDetection(input);
  const alternatives = [cloudMapCost(input), etcdCost(input)];
  const compare = [['SAME WORKLOAD ON', 'USD/MONTH', 'CRASH DETECTED IN', 'HANG DETECTED IN', 'BASIS']];
  compare.push(['Roster', usd(estimate.total), detection.crash, detection.hang, 'above']);
  for (const a of alternatives) compare.push([a.name, usd(a.usd), a.crashDetection, a.hangDetection, a.basis]);
  lines.push(...table(compare));
  lines.push('');
  lines.push('Prices: bench/prices.ts (each with its source and the date checked). Assumed Lambda durations and what is not counted: bench/cost.ts.');
  return lines;
}
