/**
 * The workload model `roster cost` and `roster capacity` share: one
 * description of a fleet (nodes, watchers, clusters, the SDK's intervals) and
 * what the code does per operation, as rates per second. The cost model
 * (bench/cost.ts) multiplies the rates by a month and prices them; the
 * capacity planner (bench/planner.ts) holds them against AWS's limits.
 *
 * What the code does, per operation (functions/core, client/):
 * - keepalive: 1 HTTP API request, 1 Lambda invocation, 1 conditional
 *   UpdateItem of the node item — measured 1 write unit: it changes no key
 *   or projected attribute of the expiry index. The stream filter drops it:
 *   no fan-out.
 * - list (each client's anti-entropy refresh, SDK default every 300 s, and
 *   one sync after each (re)connection): 1 HTTP request, 1 Lambda, a
 *   consistent GetItem of the cluster's revision (the `META` item; 304); the
 *   whole cluster (a consistent Query) only for a new process (a restart) and
 *   for a reconnection during which an event of its cluster happened (the SDK
 *   asks with If-None-Match: `RECONNECT_GAP_SECONDS`).
 * - event (a node registering or going down): its measured writes (the
 *   cluster's revision first, then the node item; the sweeper takes one
 *   block of revisions per cluster and sweep for all its downs), 1 fan-out
 *   invocation (plus one per page of 500 subscribers when there is more
 *   than one page), 1 consistent BatchGetItem of the cluster's
 *   subscriptions version (its SUBSCRIPTIONS_VERSION_SHARDS items, one read
 *   unit each) and — when the list changed since the fan-out last read it,
 *   which at these reconnect rates is nearly every event, so the model
 *   always counts it — 1 consistent Query of the subscriptions; 1 message
 *   per subscriber (the steady state: events come one at a time; a storm's
 *   are batched for connections that ask, `stormPosts`).
 * - each WebSocket connection: `{"action":"ping"}` every 300 s (SDK default)
 *   = 2 messages (ping and PONG) and 1 Lambda invocation; a reconnect every
 *   ~107 min ahead of API Gateway's 2-hour limit = `$connect` +
 *   `$disconnect` (2 invocations and their measured writes: for a bound node
 *   the lease cut and the bind).
 * - the sweeper: one invocation a minute sweeping every `sweepIntervalSeconds`
 *   (docs/how-it-works/sweep-cost.md); it reads each cluster about once per
 *   (lease − keepalive interval) and once a minute in a full sweep, each
 *   read costing the measured read units per node; an announced deadline (a
 *   registration, a lease cut) reads its node alone, half a read unit; each
 *   sweep queries the announcements, one small query per expiry-index shard.
 */
import { DEFAULT_LEASE_SECONDS, DEFAULT_PING_INTERVAL_SECONDS, DEFAULT_REFRESH_INTERVAL_SECONDS } from '@roster/contract';
import { CONFIG_DEFAULTS } from '../functions/core/config.ts';
import { BATCH_MESSAGE_LIMIT_BYTES } from '../functions/core/fanout.ts';
import { FANOUT_MEMORY_MB, pageCount } from '../functions/core/fanout-sizing.ts';
import { SUBSCRIPTIONS_VERSION_SHARDS, toEvent, type NodeItem } from '../functions/core/model.ts';
import { CLUSTER_READS_IN_FLIGHT, FULL_SWEEP_EVERY_MS, HEARTBEAT_EVERY_MS } from '../functions/core/sweeper.ts';
import { MEASURED_UNITS, type Units } from './units.ts';

export interface Workload {
  /** Nodes (each runs the SDK: keeps alive, holds a bound connection, refreshes its list). */
  nodes: number;
  /**
   * Of the nodes, those that hold a bound connection; the others keep alive
   * and refresh their list over HTTP only (no pings, no events; a crash is
   * seen when the lease runs out). @default every node
   */
  boundNodes?: number;
  /** Seconds between keepalives (the lease is three times this). */
  keepaliveSeconds: number;
  /** WebSocket watchers besides the nodes' own bound connections. */
  subscribers: number;
  /** Node restarts per hour; each is a NODE_DOWN and a NODE_REGISTERED. @default nodes / 24 (each node restarts once a day) */
  churnPerHour: number;
  /** Clusters the nodes and watchers are spread over evenly. @default 1 */
  clusters: number;
  /** Seconds between each client's list refresh (SDK `refreshIntervalMs`). @default 300 (contract DEFAULT_REFRESH_INTERVAL_SECONDS) */
  refreshSeconds: number;
  /** Seconds between each connection's ping (SDK `pingIntervalMs`). @default 300 (contract DEFAULT_PING_INTERVAL_SECONDS) */
  pingSeconds: number;
  /** Billed duration of a keepalive invocation (one UpdateItem). @default 10 */
  keepaliveLambdaMs: number;
  /** Size of a node item in KB (1 write unit per KB; reads by the 4 KB). @default the bench's, about 0.3 KB (no metadata) */
  itemKb: number;
}

/** What the deployment gives the workload: the settings the rates depend on. */
export interface Deployment {
  sweepIntervalSeconds: number;
  sweepShards: number;
  /** Memory of the HTTP and WebSocket functions. */
  functionMemoryMb: number;
  /** Memory of the fan-out and its page function. */
  fanoutMemoryMb: number;
  sweeperMemoryMb: number;
  /** The fan-out's post rate (`fanoutPostsPerSecond`). */
  fanoutPostsPerSecond: number;
}

/**
 * The stack's defaults as `roster cost` takes them without synthesizing the
 * stack: functions/core/config.ts and fanout-sizing.ts, and the memory sizes
 * of infra/function.ts (256 MB) and infra/sweeper.ts (128 MB). The planner
 * reads them from the synthesized template instead.
 */
export const DEFAULT_DEPLOYMENT: Deployment = {
  sweepIntervalSeconds: CONFIG_DEFAULTS.sweepIntervalSeconds,
  sweepShards: CONFIG_DEFAULTS.sweepShards,
  functionMemoryMb: 256,
  fanoutMemoryMb: FANOUT_MEMORY_MB,
  sweeperMemoryMb: 128,
  fanoutPostsPerSecond: CONFIG_DEFAULTS.fanoutPostsPerSecond,
};

/** Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion below that. */
export const FULL_VCPU_MB = 1769;
/** Assumed billed durations (ms) of the invocations other than the keepalive, warm, arm64. */
export const DURATION_MS = {
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
/** Connections are replaced every 100–115 minutes (SDK `maxConnectionAgeMs` plus jitter), ahead of API Gateway's 2-hour limit. */
export const RECONNECT_EVERY_SECONDS = 107.5 * 60;
/** A subscription item (`S#{clusterId}` / `WS#{connectionId}`), in KB. */
export const SUBSCRIPTION_ITEM_KB = 0.1;
/** Cluster queries one sweep keeps in flight (functions/core/sweeper.ts). */
export { CLUSTER_READS_IN_FLIGHT };
/**
 * How long a client's event stream is away during a proactive reconnection:
 * the old connection closes, the new one opens ($connect, its authorizer and
 * function) and the sync's request reads the revision. Assumed, not measured
 * on AWS: a warm handshake and two Lambda calls take well under a second; 2 s
 * leaves room for a cold start. A reconnection's sync reads the whole list
 * only when an event of its cluster happened in that window (client/src/sync.ts
 * asks with If-None-Match); otherwise the server answers 304.
 */
export const RECONNECT_GAP_SECONDS = 2;

/** The node item size the measured sweep reads imply (an eventually consistent read is half a unit per 4 KB). */
export const measuredItemKb = (units: Units): number => Number((units.sweepReadPerNode * 2 * 4).toFixed(2));

/** The SDK's defaults (the contract's): a keepalive every third of the default lease, a refresh and a ping every 300 s; each node restarts once a day. */
export function workloadDefaults(nodes: number, units: Units = MEASURED_UNITS): Workload {
  return {
    nodes,
    keepaliveSeconds: DEFAULT_LEASE_SECONDS / 3,
    subscribers: 0,
    churnPerHour: nodes / 24,
    clusters: 1,
    refreshSeconds: DEFAULT_REFRESH_INTERVAL_SECONDS,
    pingSeconds: DEFAULT_PING_INTERVAL_SECONDS,
    keepaliveLambdaMs: 10,
    itemKb: measuredItemKb(units),
  };
}

export interface FanoutPerEvent {
  /** Invocations: the fan-out, plus one page function per page when there is more than one page. */
  invocations: number;
  gbSeconds: number;
  /** The event's delivery time: the fan-out's own work and the slowest page. */
  ms: number;
  pages: number;
  /** One page's posting time (the page function's duration). */
  pageMs: number;
  /** Execution time summed over the invocations (what concurrency is made of). */
  busyMs: number;
}

/**
 * The fan-out per event to `recipients` subscribers: invocations, GB-s and
 * time, from the measured CPU per post and the post rate
 * (`fanoutPostsPerSecond`, a token bucket with half a second's burst): an
 * event takes at least the pacing time, (recipients − burst) / rate, and its
 * page workers (functions/core/fanout-sizing.ts `pageCount`) are billed for it.
 */
export function fanoutPerEvent(
  recipients: number,
  units: Units,
  postsPerSecond: number = CONFIG_DEFAULTS.fanoutPostsPerSecond,
  memoryMb: number = FANOUT_MEMORY_MB,
): FanoutPerEvent {
  const pages = pageCount(recipients, postsPerSecond);
  const share = Math.min(1, memoryMb / FULL_VCPU_MB);
  const gb = memoryMb / 1024;
  const cpuMs = (posts: number) => (posts * units.postCpuUs) / 1000 / share;
  const pacedMs = (Math.max(0, recipients - postsPerSecond / 2) / postsPerSecond) * 1000;
  if (pages <= 1) {
    const ms = DURATION_MS.fanoutBase + Math.max(cpuMs(recipients), pacedMs);
    return { invocations: 1, gbSeconds: (gb * ms) / 1000, ms, pages, pageMs: 0, busyMs: ms };
  }
  // Pages in parallel, each at its share of the rate: the fan-out waits for the slowest.
  const pageMs = Math.max(cpuMs(Math.ceil(recipients / pages)), pacedMs) + 10;
  const ms = DURATION_MS.fanoutBase + pageMs;
  return { invocations: 1 + pages, gbSeconds: (gb * (ms + pages * pageMs)) / 1000, ms, pages, pageMs, busyMs: ms + pages * pageMs };
}

/**
 * Where each operation's write units land, read from the code (functions/core
 * registry.ts, lease.ts, subscriptions.ts, sweeper.ts): the node item and the
 * cluster's `META` revision item share the partition `C#{clusterId}`; a
 * subscription and the subscriptions-version item share `S#{clusterId}`; a
 * connection item is its own partition; index entries go to the expiry
 * index's `UP#{shard}` partitions; `CLUSTERS` holds one item per cluster.
 * Node-item writes scale with the item size (1 unit per KB); the others are
 * small items. Their sums are the measured units of bench/units.ts (a test
 * holds them to it).
 */
export const WRITE_LOCATIONS = {
  keepalive: { node: 1 },
  /** A new node: the revision, the item, its cluster remembered, its index entry. */
  registerNew: { meta: 1, node: 1, clusters: 1, index: 1 },
  /** A restart's new incarnation: the revision, the item, its index entry moved (delete and put). */
  reRegister: { meta: 1, node: 1, index: 2 },
  /** The sweeper's DOWN write: the revision, the item, its index entry removed. */
  markDown: { meta: 1, node: 1, index: 1 },
  /** A bound `$connect`: the lease renewal, the connection and subscription items, the version. */
  connectBound: { node: 1, connection: 1, subscription: 1, version: 1 },
  /** A bound `$disconnect`: the connection and subscription deleted, the version, the lease cut (index entry moved). */
  disconnectBound: { connection: 1, subscription: 1, version: 1, node: 1, index: 2 },
  /** A watcher's reconnect: its connection and subscription written and deleted, the version bumped twice. */
  watcherReconnect: { connection: 2, subscription: 2, version: 2 },
} as const satisfies Record<string, Partial<Record<WriteLocation, number>>>;

export type WriteLocation = 'node' | 'meta' | 'subscription' | 'version' | 'connection' | 'index' | 'clusters';

/** Write units per second by where they land (whole deployment; divide the cluster-keyed ones by the cluster count). */
export type WritesByLocation = Record<WriteLocation, number>;

export interface Rates {
  nodesPerCluster: number;
  /** WebSocket connections: every node's bound one and the watchers. */
  connections: number;
  /** Subscribers of one cluster: who gets each of its events. */
  recipients: number;
  /** Share of the connections that bind a node. */
  boundShare: number;
  /** Per second, the whole deployment: */
  restarts: number;
  events: number;
  keepalives: number;
  refreshes: number;
  /** Syncs after a (re)connection answered 304 (nothing happened while away). */
  notModifiedSyncs: number;
  /** Syncs that read the whole cluster: a restarted process's first, and a reconnection's that missed an event. */
  fullLists: number;
  registrations: number;
  pings: number;
  periodicReconnects: number;
  /** `$connect` (and `$disconnect`) per second: periodic reconnects and restarts. */
  reconnects: number;
  httpRequests: number;
  /** Invocations of the HTTP, WebSocket and fan-out functions (the sweeper's are its own). */
  invocations: number;
  /** GB-s per second of the same. */
  gbSeconds: number;
  /** Concurrent executions of the same (rate × duration), the sweeper's one aside. */
  concurrency: number;
  eventMessages: number;
  /** Every WebSocket message: events to subscribers, pings and PONGs. */
  messages: number;
  fanout: FanoutPerEvent;
  /** Duration of a full list of one cluster. */
  listMs: number;
  /** Write units of a node-item write (1 per KB). */
  itemWru: number;
  /** Read units of a full list: the revision and the cluster's items, consistent. */
  listRru: number;
  /** Write units per second, measured per operation (table and index), the sweeper's heartbeat included. */
  writeUnits: number;
  /** Read units per second of everything but the sweeper's cluster reads. */
  readUnits: number;
  /** Read units per second of the sweeper (cluster reads, announced nodes and announcement queries). */
  sweeperReadUnits: number;
  /** Whole-cluster reads per second by the sweeper: scheduled and full sweeps (an announced node is read alone). */
  sweeperClusterReads: number;
  /** Deadlines announced per second (registrations and lease cuts). */
  announcements: number;
  /** Write units per second by location, from `WRITE_LOCATIONS`. */
  writesAt: WritesByLocation;
}

/** The sweeper's read units per second (docs/how-it-works/sweep-cost.md). */
export function sweeperReadsPerSecond(w: Workload, announcementsPerSecond: number, deployment: Deployment = DEFAULT_DEPLOYMENT): { units: number; clusterReads: number } {
  const lease = 3 * w.keepaliveSeconds;
  const nodesPerCluster = w.nodes / w.clusters;
  const perClusterRead = 0.5 * Math.ceil((nodesPerCluster * w.itemKb) / 4);
  const scheduled = 1 / Math.max(1, lease - w.keepaliveSeconds);
  const clusterReads = w.clusters * (scheduled + 1000 / FULL_SWEEP_EVERY_MS);
  // An announced node is read alone (BatchGetItem, eventually consistent): half a unit per 4 KB.
  const announcedReads = announcementsPerSecond * 0.5 * Math.ceil(w.itemKb / 4);
  const announcementQueries = (deployment.sweepShards * 0.5) / deployment.sweepIntervalSeconds;
  return { units: clusterReads * perClusterRead + announcedReads + announcementQueries, clusterReads };
}

/** Where the write units of a second land (`WRITE_LOCATIONS` at these rates); `boundRestarts` of the restarts drop and make a bound connection. */
function writesByLocation(itemWru: number, keepalives: number, restarts: number, boundRestarts: number, periodicReconnects: number, boundShare: number): WritesByLocation {
  const writesAt: WritesByLocation = { node: 0, meta: 0, subscription: 0, version: 0, connection: 0, index: 0, clusters: 0 };
  const add = (locations: Partial<Record<WriteLocation, number>>, perSecond: number) => {
    for (const [where, n] of Object.entries(locations) as [WriteLocation, number][]) writesAt[where] += perSecond * n * (where === 'node' ? itemWru : 1);
  };
  add(WRITE_LOCATIONS.keepalive, keepalives);
  add(WRITE_LOCATIONS.disconnectBound, boundRestarts + periodicReconnects * boundShare);
  add(WRITE_LOCATIONS.markDown, restarts);
  add(WRITE_LOCATIONS.reRegister, restarts);
  add(WRITE_LOCATIONS.connectBound, boundRestarts + periodicReconnects * boundShare);
  add(WRITE_LOCATIONS.watcherReconnect, periodicReconnects * (1 - boundShare));
  return writesAt;
}

/** Milliseconds of handler time per second of the HTTP and WebSocket functions (the fan-out's is its own). */
function handlerBusyMs(
  keepaliveMs: number,
  listMs: number,
  r: Pick<Rates, 'keepalives' | 'refreshes' | 'notModifiedSyncs' | 'fullLists' | 'registrations' | 'pings' | 'reconnects'>,
): number {
  return (
    r.keepalives * keepaliveMs +
    (r.refreshes + r.notModifiedSyncs) * DURATION_MS.notModified +
    r.fullLists * listMs +
    r.registrations * DURATION_MS.register +
    r.pings * DURATION_MS.ping +
    r.reconnects * (DURATION_MS.connect + DURATION_MS.disconnect)
  );
}

/** What the workload does per second. */
export function operationRates(w: Workload, units: Units = MEASURED_UNITS, deployment: Deployment = DEFAULT_DEPLOYMENT): Rates {
  const wu = units.writes;
  const itemWru = Math.max(1, Math.ceil(w.itemKb));
  const nodesPerCluster = w.nodes / w.clusters;
  const bound = Math.min(w.nodes, w.boundNodes ?? w.nodes);
  const connections = bound + w.subscribers;
  const recipients = connections / w.clusters;
  const restarts = w.churnPerHour / 3600;
  // A restarted node that holds a connection drops it and makes a new one.
  const boundRestarts = w.nodes === 0 ? 0 : restarts * (bound / w.nodes);
  const events = 2 * restarts;

  const keepalives = w.nodes / w.keepaliveSeconds;
  // A periodic refresh of an up-to-date cache is answered 304 from the revision counter alone
  // (If-None-Match); the whole list is read after each (re)connection, when the cache may be behind.
  // Every client refreshes, with a connection or without.
  const refreshes = (w.nodes + w.subscribers) / w.refreshSeconds;
  const registrations = restarts;
  const pings = connections / w.pingSeconds;
  const periodicReconnects = connections / RECONNECT_EVERY_SECONDS;
  const reconnects = periodicReconnects + boundRestarts;
  // Every (re)connection syncs once, and every restarted process. A restarted process has no list yet and reads it
  // whole; a proactive reconnection reads it whole only if an event of its cluster happened while it was away.
  const missedAnEvent = Math.min(1, (events / w.clusters) * RECONNECT_GAP_SECONDS);
  const fullLists = restarts + periodicReconnects * missedAnEvent;
  const notModifiedSyncs = periodicReconnects * (1 - missedAnEvent);
  const httpRequests = keepalives + refreshes + periodicReconnects + restarts + registrations;
  const listMs = DURATION_MS.listBase + DURATION_MS.listPerNode * nodesPerCluster;
  const fanout = fanoutPerEvent(recipients, units, deployment.fanoutPostsPerSecond, deployment.fanoutMemoryMb);
  const invocations = httpRequests + pings + 2 * reconnects + events * fanout.invocations;
  const busyMs = handlerBusyMs(w.keepaliveLambdaMs, listMs, { keepalives, refreshes, notModifiedSyncs, fullLists, registrations, pings, reconnects });
  const gbSeconds = ((deployment.functionMemoryMb / 1024) * busyMs) / 1000 + events * fanout.gbSeconds;
  const concurrency = busyMs / 1000 + (events * fanout.busyMs) / 1000;

  const eventMessages = events * recipients;
  const messages = eventMessages + 2 * pings;

  // Writes, as measured: a keepalive; a restart = its connection's lease cut, the sweeper's DOWN write,
  // the new incarnation's registration and its bind; a periodic reconnect of a node = the cut and the bind,
  // of a watcher = its connection and subscription items, written and deleted, and its subscriptions version bumped twice.
  const boundShare = connections === 0 ? 0 : bound / connections;
  const watcherReconnectUnits = Object.values(WRITE_LOCATIONS.watcherReconnect).reduce((a, b) => a + b, 0);
  const heartbeats = 1000 / Math.max(HEARTBEAT_EVERY_MS, deployment.sweepIntervalSeconds * 1000);
  const writeUnits =
    keepalives * wu.keepalive * itemWru +
    restarts * (wu.markDown + wu.reRegister) +
    boundRestarts * (wu.disconnectBound + wu.connectBound) +
    periodicReconnects * (boundShare * (wu.disconnectBound + wu.connectBound) + (1 - boundShare) * watcherReconnectUnits) +
    heartbeats;
  // Each restart announces its registration's deadline, a bound one also its lease cut; each periodic reconnect of a node one.
  const announcements = restarts + boundRestarts + periodicReconnects * boundShare;
  const sweeper = sweeperReadsPerSecond(w, announcements, deployment);
  const listRru = 1 + Math.ceil((nodesPerCluster * w.itemKb) / 4);
  const readUnits =
    (refreshes + notModifiedSyncs) * 1 +
    fullLists * listRru +
    registrations * Math.ceil(w.itemKb / 4) +
    events * (SUBSCRIPTIONS_VERSION_SHARDS + Math.ceil((recipients * SUBSCRIPTION_ITEM_KB) / 4)) +
    // The sweeper's heartbeat read, once per invocation (a minute).
    1 / 60;

  const writesAt = writesByLocation(itemWru, keepalives, restarts, boundRestarts, periodicReconnects, boundShare);

  return {
    nodesPerCluster,
    connections,
    recipients,
    boundShare,
    restarts,
    events,
    keepalives,
    refreshes,
    notModifiedSyncs,
    fullLists,
    registrations,
    pings,
    periodicReconnects,
    reconnects,
    httpRequests,
    invocations,
    gbSeconds,
    concurrency,
    eventMessages,
    messages,
    fanout,
    listMs,
    itemWru,
    listRru,
    writeUnits,
    readUnits,
    sweeperReadUnits: sweeper.units,
    sweeperClusterReads: sweeper.clusterReads,
    announcements,
    writesAt,
  };
}

/** A node item as the bench writes them, with `metadataKb` of metadata: what the size figures below measure. */
export function sampleNodeItem(metadataKb: number, now: number = Date.parse('2026-12-01T00:00:00.000Z')): NodeItem {
  const metadata = metadataKb > 0 ? { m: 'x'.repeat(Math.max(1, Math.round(metadataKb * 1024) - 8)) } : undefined;
  return {
    pk: 'C#cluster-0001',
    sk: 'N#node-000042',
    clusterId: 'cluster-0001',
    nodeId: 'node-000042',
    status: 'UP',
    metadata,
    leaseSeconds: 15,
    leaseMs: 15_000,
    incarnation: now,
    registeredAt: new Date(now).toISOString(),
    lastKeepaliveAt: new Date(now).toISOString(),
    expiresAt: now + 15_000,
    revision: 123_456,
    changedAt: new Date(now).toISOString(),
    ev: 'NODE_REGISTERED',
    ttl: 0,
  };
}

/** The bytes of one event's single-event message (a `NODE_REGISTERED` of a node with `metadataKb` of metadata). */
export const eventMessageBytes = (metadataKb: number): number => Buffer.byteLength(JSON.stringify(toEvent(sampleNodeItem(metadataKb))));

/** A storm of events of one cluster, as the fan-out receives it. */
export interface StormDelivery {
  /** Events of the cluster (a restart is a NODE_DOWN and a NODE_REGISTERED). */
  events: number;
  /** Bytes of each event's single-event message (`eventMessageBytes`). */
  eventBytes: number;
  /** Records per stream batch (the event source mapping's `BatchSize`): the fan-out batches events within one. */
  batchSize: number;
  /** Subscribers with one event per message. */
  plain: number;
  /** Subscribers that asked for batched messages (`batch=true`; the SDK does). */
  batched: number;
  /** When the events reach the stream and who subscribes meanwhile; without it they are all there at once (full batches). */
  timeline?: StormTimeline;
}

/** When a storm's events reach the stream, in slots of `slotMs` from its first. */
export interface StormTimeline {
  slotMs: number;
  /** Events written in each slot (`events` is their sum). */
  eventsPerSlot: readonly number[];
  /** Batched subscribers that subscribe (or, negative, leave) in each slot: restarted nodes reconnecting get the batches delivered later. */
  joinsPerSlot?: readonly number[];
  /** How often the fan-out's event source polls an idle stream (Lambda's: four times a second). */
  pollMs: number;
  /** The fan-out's post rate (`fanoutPostsPerSecond`): while it delivers a batch, the next one fills. */
  postsPerSecond: number;
  /**
   * The batches as the fan-out delivered them (a run's, measured: when, from
   * the first slot, and how many events each), instead of the ones the polls
   * and the post rate would make.
   */
  deliveries?: readonly { atMs: number; events: number }[];
}

export interface StormPosts {
  /** Messages each plain subscriber gets: one per event. */
  perPlain: number;
  /** Messages a batched subscriber gets over the whole storm: the `EVENTS` messages of each stream batch, each at most one 32 KB frame. */
  perBatched: number;
  /** Stream batches that carried the storm's events. */
  batches: number;
  /** Every post of the storm. */
  posts: number;
}

/**
 * The posts a storm costs (functions/core/fanout.ts): the stream hands the
 * fan-out the storm's records in batches of at most `batchSize`; a plain
 * subscriber gets one message per event, a batched one the batch's events
 * packed into `EVENTS` messages of at most BATCH_MESSAGE_LIMIT_BYTES (API
 * Gateway's 32 KB frame, with room to spare), a batch of one event as the
 * plain message. Every event of a storm carries its node in full, metadata
 * included, so the bytes are the events' own.
 *
 * How many batches: without a timeline, every event is in the stream at
 * once and the batches are full. With one, the records come as they were
 * written: the event source takes what is there at each poll (at most
 * `batchSize`), and while the fan-out posts that batch — its subscribers'
 * messages at its post rate — the next one fills. A storm posted to many
 * subscribers therefore still comes in full batches; one with few
 * subscribers, written over seconds, comes in a batch a poll, and each costs
 * every subscriber at least a message.
 */
export function stormPosts(storm: StormDelivery): StormPosts {
  // The `EVENTS` envelope (batchRuns in fanout.ts): its head and closing, and a comma per event.
  const frame = Buffer.byteLength(`{"type":"EVENTS","clusterId":${JSON.stringify('cluster-0001')},"events":[`) + 2;
  const perMessage = Math.max(1, Math.floor((BATCH_MESSAGE_LIMIT_BYTES - frame) / (storm.eventBytes + 1)));
  const messages = (events: number): number => (events === 1 ? 1 : Math.ceil(events / perMessage));
  let perBatched = 0;
  let posts = 0;
  let batches = 0;
  let batched = storm.batched;
  const deliver = (events: number): number => {
    const sent = events * storm.plain + messages(events) * batched;
    perBatched += messages(events);
    posts += sent;
    batches++;
    return sent;
  };
  const { timeline } = storm;
  if (!timeline) {
    for (let left = storm.events; left > 0; left -= storm.batchSize) deliver(Math.min(left, storm.batchSize));
  } else {
    const { slotMs, eventsPerSlot, joinsPerSlot = [], pollMs, postsPerSecond } = timeline;
    let joinSlot = 0;
    /** Counts the subscriptions made (less those removed) by `now`. */
    const joinBy = (now: number): void => {
      for (; joinSlot < joinsPerSlot.length && joinSlot * slotMs <= now; joinSlot++) batched += joinsPerSlot[joinSlot] ?? 0;
    };
    if (timeline.deliveries) {
      for (const d of timeline.deliveries) {
        joinBy(d.atMs);
        deliver(d.events);
      }
    } else {
      let slot = 0;
      let waiting = 0;
      let now = 0;
      for (;;) {
        // The records and subscriptions written by `now`.
        for (; slot < eventsPerSlot.length && slot * slotMs <= now; slot++) waiting += eventsPerSlot[slot] ?? 0;
        joinBy(now);
        if (waiting === 0) {
          if (slot >= eventsPerSlot.length) break;
          now += pollMs;
          continue;
        }
        const events = Math.min(waiting, storm.batchSize);
        waiting -= events;
        now += DURATION_MS.fanoutBase + (deliver(events) / postsPerSecond) * 1000;
      }
    }
  }
  return { perPlain: storm.events, perBatched, batches, posts };
}
