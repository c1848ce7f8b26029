/**
 * `roster cost`: the monthly AWS bill of a Roster deployment, by component,
 * following what the code does per operation, beside the same workload on
 * AWS Cloud Map and on a self-hosted three-node etcd. Prices: bench/prices.ts
 * (with their volume tiers). DynamoDB units and the fan-out's CPU per post
 * are measured, not assumed: bench/units.ts (`roster bench --scenarios
 * capacity,fanout`), or `--units bench.json` from a run of your own.
 *
 * What the code does, per operation (functions/core, client/):
 * - keepalive: 1 HTTP API request, 1 Lambda invocation, 1 conditional
 *   UpdateItem — measured 1 write unit: it changes no key or projected
 *   attribute of the expiry index, so DynamoDB writes no index entry. The
 *   stream filter drops it: no fan-out.
 * - list (each client's anti-entropy refresh, SDK default every 30 s): 1 HTTP
 *   request, 1 Lambda, a consistent GetItem of the cluster revision (304); the
 *   whole cluster (a consistent Query) only after a (re)connection.
 * - event (a node registering or going down): its measured writes, 1 fan-out
 *   invocation (plus one per page of 500 subscribers when there is more than
 *   one page), 1 consistent GetItem of the cluster's subscriptions version and
 *   — when the list changed since the fan-out last read it, which at these
 *   reconnect rates is nearly every event, so the model always counts it — 1
 *   consistent Query of the subscriptions; 1 message per subscriber.
 * - each WebSocket connection: connection minutes; `{"action":"ping"}` every
 *   60 s (SDK default) = 2 messages (ping and PONG) and 1 Lambda invocation;
 *   a reconnect every ~107 min ahead of API Gateway's 2-hour limit =
 *   `$connect` + `$disconnect` (2 invocations and their measured writes: for
 *   a bound node the lease cut and the bind).
 * - the sweeper: EventBridge every minute, sweeping every second (README:
 *   "What the sweeper costs when nothing happens"); it reads each cluster
 *   about once per (lease − keepalive interval), once a minute in a full
 *   sweep, and once per announced deadline (a registration, a lease cut);
 *   each read costs the measured read units per node (docs/how-it-works/sweep-cost.md).
 * Not counted: data transfer out (nodes outside AWS pay $0.09/GB for
 * responses), CloudWatch Logs, storage (a few MB, inside DynamoDB's free 25 GB).
 */
import { CONFIG_DEFAULTS } from '../functions/core/config.ts';
import { FANOUT_MEMORY_MB, pageCount } from '../functions/core/fanout-sizing.ts';
import { HOURS_PER_MONTH, PRICES, SECONDS_PER_MONTH, tieredUsd } from './prices.ts';
import { table } from './table.ts';
import { MEASURED_UNITS, type Units } from './units.ts';

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
  /** Seconds between each connection's ping (SDK `pingIntervalMs`). @default 60 */
  pingSeconds: number;
  /** Billed duration of a keepalive invocation (one UpdateItem). @default 10 */
  keepaliveLambdaMs: number;
  /** Size of a node item in KB (1 write unit per KB; reads by the 4 KB). @default the bench's, about 0.36 KB (no metadata) */
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
  /** Where the DynamoDB units and the CPU per post come from. */
  units: string;
}

/** Lambda memory of the HTTP and WebSocket functions (infra/function.ts default). */
const FUNCTION_GB = 0.25;
/** Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion below that. */
const FULL_VCPU_MB = 1769;
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
  /** The fan-out's own work per event: the subscriptions version read (and the list's Query when it changed), and the wait for its pages. */
  fanoutBase: 30,
};
/** Connections are replaced every 100–115 minutes, ahead of API Gateway's 2-hour limit. */
export const RECONNECTS_PER_CONNECTION = (HOURS_PER_MONTH * 60) / 107.5;
const SUBSCRIPTION_ITEM_KB = 0.1;
const SWEEPS_PER_MONTH = SECONDS_PER_MONTH; // one per second
const SWEEP_SHARDS = 4;
/** Every cluster is read in a full sweep once a minute (functions/core/sweeper.ts FULL_SWEEP_EVERY_MS). */
const FULL_SWEEPS_PER_SECOND = 1 / 60;

const millions = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));

/** The node item size the measured sweep reads imply (an eventually consistent read is half a unit per 4 KB). */
export const measuredItemKb = (units: Units): number => Number((units.sweepReadPerNode * 2 * 4).toFixed(2));

export function defaults(nodes: number, units: Units = MEASURED_UNITS): CostInput {
  return { nodes, keepaliveSeconds: 5, subscribers: 0, churnPerHour: nodes / 24, clusters: 1, refreshSeconds: 30, pingSeconds: 60, keepaliveLambdaMs: 10, itemKb: measuredItemKb(units) };
}

/**
 * The fan-out per event: invocations, GB-s and how long it takes, from the
 * measured CPU per post and the post rate (`fanoutPostsPerSecond`, a token
 * bucket with half a second's burst): an event takes at least the pacing
 * time, (recipients − burst) / rate, and its page workers are billed for it.
 */
export function fanoutPerEvent(recipients: number, units: Units, postsPerSecond: number = CONFIG_DEFAULTS.fanoutPostsPerSecond): { invocations: number; gbSeconds: number; ms: number } {
  const pages = pageCount(recipients, postsPerSecond);
  const share = Math.min(1, FANOUT_MEMORY_MB / FULL_VCPU_MB);
  const gb = FANOUT_MEMORY_MB / 1024;
  const cpuMs = (posts: number) => (posts * units.postCpuUs) / 1000 / share;
  const pacedMs = (Math.max(0, recipients - postsPerSecond / 2) / postsPerSecond) * 1000;
  if (pages <= 1) {
    const ms = DURATION_MS.fanoutBase + Math.max(cpuMs(recipients), pacedMs);
    return { invocations: 1, gbSeconds: (gb * ms) / 1000, ms };
  }
  // Pages in parallel, each at its share of the rate: the fan-out waits for the slowest.
  const pageMs = Math.max(cpuMs(Math.ceil(recipients / pages)), pacedMs) + 10;
  const ms = DURATION_MS.fanoutBase + pageMs;
  return { invocations: 1 + pages, gbSeconds: (gb * (ms + pages * pageMs)) / 1000, ms };
}

/** The sweeper's DynamoDB reads per month (docs/how-it-works/sweep-cost.md). */
export function sweeperReads(input: CostInput, units: Units, announcementsPerSecond: number): number {
  const lease = 3 * input.keepaliveSeconds;
  const nodesPerCluster = input.nodes / input.clusters;
  const perClusterRead = 0.5 * Math.ceil((nodesPerCluster * input.itemKb) / 4);
  const scheduled = 1 / Math.max(1, lease - input.keepaliveSeconds);
  const clusterReadsPerSecond = input.clusters * (scheduled + FULL_SWEEPS_PER_SECOND) + announcementsPerSecond;
  const announcementQueries = SWEEPS_PER_MONTH * SWEEP_SHARDS * 0.5;
  return clusterReadsPerSecond * SECONDS_PER_MONTH * perClusterRead + announcementQueries;
}

/** The Roster bill for one month, by component. */
export function rosterCost(input: CostInput, units: Units = MEASURED_UNITS): CostEstimate {
  const { nodes, keepaliveSeconds, subscribers, churnPerHour, clusters, refreshSeconds, pingSeconds, keepaliveLambdaMs, itemKb } = input;
  const p = PRICES;
  const w = units.writes;
  const itemWru = Math.max(1, Math.ceil(itemKb));
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
  const periodicReconnects = connections * RECONNECTS_PER_CONNECTION;
  const reconnects = periodicReconnects + restarts;

  const fullLists = reconnects;
  const httpRequests = keepalives + refreshes + fullLists + registrations;
  const listMs = DURATION_MS.listBase + DURATION_MS.listPerNode * nodesPerCluster;
  const fanout = fanoutPerEvent(recipients, units);
  const invocations = httpRequests + pings + 2 * reconnects + events * fanout.invocations;
  const gbSeconds =
    (FUNCTION_GB *
      (keepalives * keepaliveLambdaMs +
        refreshes * DURATION_MS.notModified +
        fullLists * listMs +
        registrations * DURATION_MS.register +
        pings * DURATION_MS.ping +
        reconnects * (DURATION_MS.connect + DURATION_MS.disconnect))) /
      1000 +
    events * fanout.gbSeconds;

  const eventMessages = events * recipients;
  const messages = eventMessages + 2 * pings;
  const connectionMinutes = (connections * SECONDS_PER_MONTH) / 60;

  // Writes, as measured: a keepalive; a restart = its connection's lease cut, the sweeper's DOWN write,
  // the new incarnation's registration and its bind; a periodic reconnect of a node = the cut and the bind,
  // of a watcher = its connection and subscription items, written and deleted, and its subscriptions version bumped twice.
  const boundShare = nodes / connections;
  const wru =
    keepalives * w.keepalive * itemWru +
    restarts * (w.disconnectBound + w.markDown + w.reRegister + w.connectBound) +
    periodicReconnects * (boundShare * (w.disconnectBound + w.connectBound) + (1 - boundShare) * 6) +
    SWEEPS_PER_MONTH / 10; // the sweeper's heartbeat, at most every 10 s
  // Each restart announces two deadlines (the cut, the registration), each periodic reconnect of a node one.
  const announcementsPerSecond = (2 * restarts + periodicReconnects * boundShare) / SECONDS_PER_MONTH;
  const sweepRru = sweeperReads(input, units, announcementsPerSecond);
  const listRru = 1 + Math.ceil((nodesPerCluster * itemKb) / 4);
  const rru =
    refreshes * 1 +
    fullLists * listRru +
    registrations * Math.ceil(itemKb / 4) +
    events * (1 + Math.ceil((recipients * SUBSCRIPTION_ITEM_KB) / 4)) +
    HOURS_PER_MONTH * 60;
  const sweeperGbSeconds = HOURS_PER_MONTH * 60 * 60 * SWEEPER_GB;
  const sweeperInvocations = HOURS_PER_MONTH * 60;

  const lines: CostLine[] = [
    { component: 'HTTP API requests', quantity: `${millions(keepalives)} keepalives + ${millions(refreshes)} refreshes (304) + ${millions(fullLists)} full lists + ${millions(registrations)} registrations`, usd: tieredUsd(p.httpApiRequest, httpRequests) },
    { component: 'WebSocket messages', quantity: `${millions(eventMessages)} event messages + ${millions(2 * pings)} ping/PONG`, usd: tieredUsd(p.websocketMessage, messages) },
    { component: 'WebSocket connection minutes', quantity: `${connections} connections × ${millions(SECONDS_PER_MONTH / 60)} min`, usd: connectionMinutes * p.websocketConnectionMinute.usd },
    { component: 'Lambda requests', quantity: `${millions(invocations)} invocations (HTTP, ping, $connect/$disconnect, fan-out)`, usd: invocations * p.lambdaRequest.usd },
    { component: `Lambda duration (arm64; 256 MB, fan-out ${FANOUT_MEMORY_MB.toLocaleString('en-US')} MB)`, quantity: `${millions(gbSeconds)} GB-s`, usd: gbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'DynamoDB writes', quantity: `${millions(wru)} WRU (keepalive ${w.keepalive * itemWru} WRU, measured)`, usd: wru * p.dynamodbWriteUnit.usd },
    { component: 'DynamoDB reads', quantity: `${millions(rru)} RRU (a refresh 1, a full list ${listRru})`, usd: rru * p.dynamodbReadUnit.usd },
    { component: 'sweeper Lambda', quantity: `${millions(sweeperInvocations)} invocations, ${millions(sweeperGbSeconds)} GB-s`, usd: sweeperInvocations * p.lambdaRequest.usd + sweeperGbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'sweeper DynamoDB reads', quantity: `${millions(sweepRru)} RRU (cluster reads when due, full sweeps, announcements)`, usd: sweepRru * p.dynamodbReadUnit.usd },
    { component: 'DynamoDB Streams reads by the fan-out trigger', quantity: 'free', usd: 0 },
  ];
  return { input, lines, total: lines.reduce((sum, l) => sum + l.usd, 0), units: units.source };
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
  lines.push(`DynamoDB units and CPU per post measured: ${estimate.units}.`);
  return lines;
}
