/**
 * `roster cost`: the monthly AWS bill of a Roster deployment, by component,
 * following what the code does per operation, beside the same workload on
 * AWS Cloud Map and on a self-hosted three-node etcd. Prices: bench/prices.ts
 * (with their volume tiers). DynamoDB units and the fan-out's CPU per post
 * are measured, not assumed: bench/units.ts (`roster bench --scenarios
 * capacity,fanout`), or `--units bench.json` from a run of your own; the
 * bytes each operation writes to CloudWatch Logs are measured too:
 * bench/log-bytes.ts.
 *
 * The workload and what the code does per operation are bench/workload.ts,
 * which `roster capacity` shares; this module prices a month of it.
 * Not counted: data transfer out (nodes outside AWS pay $0.09/GB for
 * responses), storage (a few MB, inside DynamoDB's free 25 GB), the
 * authorizers (one invocation per token per 5 minutes with the cache).
 */
import { FANOUT_MEMORY_MB } from '../functions/core/fanout-sizing.ts';
import { MEASURED_LOG_BYTES, meteredBytes, STACK_LOG_RETENTION_DAYS, type LogBytes } from './log-bytes.ts';
import { HOURS_PER_MONTH, PRICES, SECONDS_PER_MONTH, tieredUsd } from './prices.ts';
import { table } from './table.ts';
import { MEASURED_UNITS, type Units } from './units.ts';
import {
  DEFAULT_DEPLOYMENT,
  eventMessageBytes,
  measuredItemKb,
  DURATION_MS,
  operationRates,
  stormPosts,
  RECONNECT_EVERY_SECONDS,
  sweeperReadsPerSecond,
  workloadDefaults,
  type Rates,
  type Workload,
} from './workload.ts';

export { fanoutPerEvent, measuredItemKb } from './workload.ts';

/** What a storm costs in posts: a tenth of one cluster's nodes restarting at once. */
export interface StormCost {
  restarts: number;
  /** Posts with every subscriber batching (the SDK and the console ask for it), and with none. */
  batchedPosts: number;
  plainPosts: number;
  batchedUsd: number;
  plainUsd: number;
}

/**
 * A storm's posts (bench/workload.ts `stormPosts`, checked against the
 * fan-out by test/handlers/batching.test.ts) and what they cost as WebSocket
 * messages: each restart is a NODE_DOWN and a NODE_REGISTERED to every
 * subscriber of its cluster, in stream batches of the fan-out's 100 records.
 */
export function stormCost(input: CostInput, units: Units = MEASURED_UNITS): StormCost {
  const r = operationRates(input, units);
  const restarts = Math.round(r.nodesPerCluster / 10);
  const eventBytes = eventMessageBytes(Math.max(0, input.itemKb - measuredItemKb(units)));
  const delivery = { events: 2 * restarts, eventBytes, batchSize: 100 };
  const batchedPosts = stormPosts({ ...delivery, plain: 0, batched: r.recipients }).posts;
  const plainPosts = stormPosts({ ...delivery, plain: r.recipients, batched: 0 }).posts;
  // Each EVENTS message is under 32 KB: one metered message. Priced at the first tier, on top of the month's.
  const price = PRICES.websocketMessage.usd;
  return { restarts, batchedPosts, plainPosts, batchedUsd: batchedPosts * price, plainUsd: plainPosts * price };
}

/** What goes to CloudWatch Logs and how long it stays. */
export interface LogSettings {
  /** Bytes and log events per operation (bench/log-bytes.ts). */
  bytes: LogBytes;
  /** Retention of the functions' log groups, in days. */
  retentionDays: number;
  /** Retention of the HTTP access log group, in days. */
  accessRetentionDays: number;
}

export interface CostInput extends Workload {
  logs: LogSettings;
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

const SWEEPER_GB = DEFAULT_DEPLOYMENT.sweeperMemoryMb / 1024;
/** Connections are replaced every 100–115 minutes, ahead of API Gateway's 2-hour limit. */
export const RECONNECTS_PER_CONNECTION = SECONDS_PER_MONTH / RECONNECT_EVERY_SECONDS;
/** Bytes in a GB as AWS bills data (2^30). */
const GB = 1024 ** 3;
const DAYS_PER_MONTH = HOURS_PER_MONTH / 24;

const millions = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));
const gigabytes = (n: number): string => (n >= 100 ? `${Math.round(n).toLocaleString('en-US')} GB` : `${n.toFixed(n >= 1 ? 1 : 2)} GB`);

/** The stack's log settings: the measured bytes, the stack's retention (infra/roster-stack.ts). */
export const DEFAULT_LOGS: LogSettings = { bytes: MEASURED_LOG_BYTES, retentionDays: STACK_LOG_RETENTION_DAYS, accessRetentionDays: STACK_LOG_RETENTION_DAYS };

export function defaults(nodes: number, units: Units = MEASURED_UNITS): CostInput {
  return { ...workloadDefaults(nodes, units), logs: DEFAULT_LOGS };
}

/** The sweeper's DynamoDB reads per month (docs/how-it-works/sweep-cost.md). */
export function sweeperReads(input: Workload, _units: Units, announcementsPerSecond: number): number {
  return sweeperReadsPerSecond(input, announcementsPerSecond).units * SECONDS_PER_MONTH;
}

/**
 * Warm environments of a function answering `perSecond` requests of `ms` each: twice its mean concurrency,
 * plus one (arrivals bunch, and Lambda keeps an idle environment a while). An overestimate on purpose: each
 * writes the routine counts it held once a minute (`LogBytes.handler.routinePublish`), under 1% of the logs
 * at every size `roster cost` is asked about in test/bench/cost.test.ts.
 */
export const warmEnvironments = (perSecond: number, ms: number): number => (perSecond > 0 ? (2 * perSecond * ms) / 1000 + 1 : 0);

/** Bytes per second written to the functions' log groups and to the HTTP access log group. */
export function logBytesPerSecond(
  rates: Rates,
  logs: LogBytes,
  keepaliveLambdaMs: number,
  sweepIntervalSeconds = DEFAULT_DEPLOYMENT.sweepIntervalSeconds,
): { functions: number; access: number; keepalive: number } {
  const m = meteredBytes;
  const h = logs.handler;
  // Routine successes write nothing of their own; each warm environment of their functions publishes what it
  // held once a minute (functions/core/metrics.ts ROUTINE_PUBLISH_EVERY_MS), never more often than they come.
  const routine: [number, number][] = [
    [rates.keepalives, keepaliveLambdaMs],
    [rates.refreshes + rates.notModifiedSyncs, DURATION_MS.notModified],
    [rates.pings, DURATION_MS.ping],
  ];
  const routinePublishes = routine.reduce((sum, [perSecond, ms]) => sum + Math.min(perSecond, warmEnvironments(perSecond, ms) / 60), 0);
  // The sweeper: one invocation a minute, one metric document per sweep.
  const sweeperInvocations = 1 / 60;
  const functions =
    (rates.invocations + sweeperInvocations) * m(logs.platform) +
    rates.keepalives * m(h.keepalive) +
    routinePublishes * m(h.routinePublish) +
    (rates.refreshes + rates.notModifiedSyncs) * m(h.listNotModified) +
    rates.fullLists * m(h.listFull) +
    rates.registrations * m(h.register) +
    rates.pings * m(h.ping) +
    rates.reconnects * (m(h.connect) + m(h.disconnect)) +
    // One batch per event at worst (a batch may carry several); the page functions write only Lambda's lines,
    // counted with every invocation above.
    rates.events * m(h.fanoutBatch) +
    m(h.sweepIdle) / sweepIntervalSeconds +
    // Each restart's DOWN is declared by a sweep, which writes its line instead of the idle document.
    rates.restarts * (m(h.sweepDown) - m(h.sweepIdle));
  const access = rates.keepalives * m(logs.httpAccess.keepalive) + (rates.refreshes + rates.notModifiedSyncs + rates.fullLists) * m(logs.httpAccess.list) + rates.registrations * m(logs.httpAccess.register);
  return { functions, access, keepalive: m(logs.httpAccess.keepalive) + m(logs.platform) + m(h.keepalive) };
}

/** The Roster bill for one month, by component. */
export function rosterCost(input: CostInput, units: Units = MEASURED_UNITS): CostEstimate {
  const p = PRICES;
  const r = operationRates(input, units);
  const month = (perSecond: number): number => perSecond * SECONDS_PER_MONTH;
  const keepalives = month(r.keepalives);
  const refreshes = month(r.refreshes + r.notModifiedSyncs);
  const fullLists = month(r.fullLists);
  const registrations = month(r.registrations);
  const httpRequests = month(r.httpRequests);
  const invocations = month(r.invocations);
  const gbSeconds = month(r.gbSeconds);
  const eventMessages = month(r.eventMessages);
  const pingMessages = month(2 * r.pings);
  const messages = month(r.messages);
  const connectionMinutes = (r.connections * SECONDS_PER_MONTH) / 60;
  const wru = month(r.writeUnits);
  const rru = month(r.readUnits);
  const sweepRru = month(r.sweeperReadUnits);
  const sweeperGbSeconds = HOURS_PER_MONTH * 60 * 60 * SWEEPER_GB;
  const sweeperInvocations = HOURS_PER_MONTH * 60;

  const logBytes = logBytesPerSecond(r, input.logs.bytes, input.keepaliveLambdaMs);
  const functionLogGb = month(logBytes.functions) / GB;
  const accessLogGb = month(logBytes.access) / GB;
  const ingestedGb = functionLogGb + accessLogGb;
  // Stored once the retention has filled: each log group holds its retention's worth of its ingestion.
  const storedGb = (functionLogGb * input.logs.retentionDays + accessLogGb * input.logs.accessRetentionDays) / DAYS_PER_MONTH;

  const lines: CostLine[] = [
    { component: 'HTTP API requests', quantity: `${millions(keepalives)} keepalives + ${millions(refreshes)} refreshes and syncs (304) + ${millions(fullLists)} full lists + ${millions(registrations)} registrations`, usd: tieredUsd(p.httpApiRequest, httpRequests) },
    { component: 'WebSocket messages', quantity: `${millions(eventMessages)} event messages + ${millions(pingMessages)} ping/PONG`, usd: tieredUsd(p.websocketMessage, messages) },
    { component: 'WebSocket connection minutes', quantity: `${r.connections} connections × ${millions(SECONDS_PER_MONTH / 60)} min`, usd: connectionMinutes * p.websocketConnectionMinute.usd },
    { component: 'Lambda requests', quantity: `${millions(invocations)} invocations (HTTP, ping, $connect/$disconnect, fan-out)`, usd: invocations * p.lambdaRequest.usd },
    { component: `Lambda duration (arm64; 256 MB, fan-out ${FANOUT_MEMORY_MB.toLocaleString('en-US')} MB)`, quantity: `${millions(gbSeconds)} GB-s`, usd: gbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'DynamoDB writes', quantity: `${millions(wru)} WRU (keepalive ${units.writes.keepalive * r.itemWru} WRU, measured)`, usd: wru * p.dynamodbWriteUnit.usd },
    { component: 'DynamoDB reads', quantity: `${millions(rru)} RRU (a refresh 1, a full list ${r.listRru})`, usd: rru * p.dynamodbReadUnit.usd },
    { component: 'sweeper Lambda', quantity: `${millions(sweeperInvocations)} invocations, ${millions(sweeperGbSeconds)} GB-s`, usd: sweeperInvocations * p.lambdaRequest.usd + sweeperGbSeconds * p.lambdaArmGbSecond.usd },
    { component: 'sweeper DynamoDB reads', quantity: `${millions(sweepRru)} RRU (cluster reads when due, full sweeps, announcements)`, usd: sweepRru * p.dynamodbReadUnit.usd },
    { component: 'DynamoDB Streams reads by the fan-out trigger', quantity: 'free', usd: 0 },
    {
      component: 'CloudWatch Logs ingestion',
      quantity: `${gigabytes(ingestedGb)} (access log ${gigabytes(accessLogGb)}; a keepalive ${Math.round(logBytes.keepalive).toLocaleString('en-US')} B: access line, Lambda's lines, request line and metrics, as configured)`,
      usd: ingestedGb * p.cloudwatchLogsIngestGb.usd,
    },
    {
      component: 'CloudWatch Logs storage',
      quantity: `${gigabytes(storedGb)} kept (${input.logs.retentionDays} days; access log ${input.logs.accessRetentionDays} days), once the retention has filled`,
      usd: storedGb * p.cloudwatchLogsStorageGbMonth.usd,
    },
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
  const storm = stormCost(input);
  if (storm.restarts > 0) {
    lines.push(
      `A storm — ${storm.restarts.toLocaleString('en-US')} nodes of one cluster restarting at once: ${millions(storm.batchedPosts)} posts with every subscriber batching (${usd(storm.batchedUsd)}), ` +
        `${millions(storm.plainPosts)} with none (${usd(storm.plainUsd)}), on top of the month's (\`roster capacity\` has its peaks).`,
    );
    lines.push('');
  }
  lines.push('Prices: bench/prices.ts (each with its source and the date checked). Assumed Lambda durations: bench/workload.ts; what is not counted: bench/cost.ts.');
  lines.push(`DynamoDB units and CPU per post measured: ${estimate.units}. Log bytes per operation measured: ${input.logs.bytes.source}.`);
  return lines;
}
