/**
 * The single-table data model. Every item has a string `pk` and `sk`.
 *
 * | item          | pk                 | sk              | notes                                   |
 * |---------------|--------------------|-----------------|-----------------------------------------|
 * | node          | `C#{clusterId}`    | `N#{nodeId}`    | one per node key; UP nodes carry `sweepPk`/`sweepAt` |
 * | cluster meta  | `C#{clusterId}`    | `META`          | `revision` counter of the cluster        |
 * | cluster index | `CLUSTERS`         | `{clusterId}`   | clusters with a node (UP or retained DOWN); `gen` counts listings |
 * | connection    | `WS#{connectionId}`| `WS`            | subscribed clusters, bound node          |
 * | subscription  | `S#{clusterId}`    | `WS#{connectionId}` | the fan-out queries this partition   |
 * | subscriptions version | `S#{clusterId}` | `VERSION`, `VERSION#1`…`#15` | changes counted in 16 shards (subscriptions.ts) |
 * | fan-out ledger| `S#{clusterId}`    | `FANOUT#{id}#{n}` | what a failed fan-out still owes (fanout-ledger.ts) |
 * | sweeper       | `SWEEPER`          | `SWEEPER`       | time of the last completed sweep          |
 *
 * The `byExpiry` index is sparse: only UP nodes have `sweepPk` (`UP#{shard}`),
 * sorted by `sweepAt`, the deadline announced by the last write that could
 * bring it forward (a registration or a lease cut). Keepalives move
 * `expiresAt` but never `sweepAt`, so they never write the index; the sweeper
 * learns of renewed leases when it reads a cluster (functions/core/sweeper.ts).
 * `ttl` (epoch seconds) is garbage collection only; it is never the clock.
 */

import type { DownReason, EventType, MembershipEvent, Node, NodeStatus } from '@roster/contract';

// The wire shapes and names are the contract's (contract/index.ts).
export { DOWN_REASONS, EVENT_TYPES } from '@roster/contract';
export type { DownReason, EventType, MembershipEvent, Node, NodeStatus };

export const EXPIRY_INDEX = 'byExpiry';

/** A node item as stored. */
export interface NodeItem {
  pk: string;
  sk: string;
  clusterId: string;
  nodeId: string;
  status: NodeStatus;
  /** Absent when empty. */
  metadata?: Record<string, string>;
  leaseSeconds: number;
  /** Lease in milliseconds, so a keepalive can extend `expiresAt` in one update expression. */
  leaseMs: number;
  incarnation: number;
  registeredAt: string;
  lastKeepaliveAt: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  revision: number;
  /** ISO time of the last event-producing change. */
  changedAt: string;
  /** Set only by event-producing writes; the stream filter passes exactly these records. */
  ev?: EventType;
  downReason?: DownReason;
  /** Present while UP: the partition of the sparse expiry index. */
  sweepPk?: string;
  /** Present while UP: the deadline announced to the sweeper (epoch ms), the sort key of the expiry index. */
  sweepAt?: number;
  /** Set when the bound connection dropped and the lease was cut to the grace period. */
  cutReason?: 'disconnected';
  /** The WebSocket connection bound to this node, if any. */
  boundConn?: string;
  ttl: number;
}

export const clusterPk = (clusterId: string): string => `C#${clusterId}`;
export const nodeSk = (nodeId: string): string => `N#${nodeId}`;
export const NODE_SK_PREFIX = 'N#';
export const META_SK = 'META';
export const CLUSTERS_PK = 'CLUSTERS';
export const connectionPk = (connectionId: string): string => `WS#${connectionId}`;
export const CONNECTION_SK = 'WS';
export const subscriptionPk = (clusterId: string): string => `S#${clusterId}`;
export const subscriptionSk = (connectionId: string): string => `WS#${connectionId}`;
export const SUBSCRIPTION_SK_PREFIX = 'WS#';
/**
 * Shards of a cluster's subscriptions version: each change is counted in the
 * shard of its connection, so a wave of connections spreads over 16 items
 * instead of writing one past DynamoDB's 1,000 writes a second per item:
 * 10,000 subscribers dropping within one second are 625 writes a second on
 * each (`roster capacity`'s storm rows). The fan-out reads all 16 in one
 * BatchGetItem per event (16 read units, functions/core/subscriber-cache.ts).
 * Change it only with every function stopped: a reader that knows fewer
 * shards than a writer misses changes.
 */
export const SUBSCRIPTIONS_VERSION_SHARDS = 16;

/**
 * Beside a cluster's subscriptions, an item whose `version` counts their
 * changes: shard 0 is `VERSION` (the item the version always was, which also
 * carries the fan-out's ledger reference), shard n is `VERSION#{n}`.
 */
export const subscriptionsVersionKey = (clusterId: string, shard = 0) => ({ pk: subscriptionPk(clusterId), sk: shard === 0 ? 'VERSION' : `VERSION#${shard}` });

/** A stable hash of a string, for spreading keys over shards. */
function hashOf(text: string): number {
  let hash = 0;
  for (const ch of text) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return hash;
}

/** The subscriptions-version shard that counts a connection's changes. */
export const versionShardOf = (connectionId: string): number => hashOf(connectionId) % SUBSCRIPTIONS_VERSION_SHARDS;
export const SWEEPER_KEY = { pk: 'SWEEPER', sk: 'SWEEPER' } as const;

export const nodeKey = (clusterId: string, nodeId: string): string => `${clusterId}/${nodeId}`;
export const nodeItemKey = (clusterId: string, nodeId: string) => ({ pk: clusterPk(clusterId), sk: nodeSk(nodeId) });
export const metaKey = (clusterId: string) => ({ pk: clusterPk(clusterId), sk: META_SK });
/** A cluster's entry in the `CLUSTERS` partition: listed while it has a node, UP or retained DOWN. */
export const clusterIndexKey = (clusterId: string) => ({ pk: CLUSTERS_PK, sk: clusterId });

/** Which expiry-index partition a node lives in: a stable hash of its key. */
export function sweepPartition(clusterId: string, nodeId: string, shards: number): string {
  return `UP#${hashOf(nodeKey(clusterId, nodeId)) % shards}`;
}

export const sweepPartitions = (shards: number): string[] => Array.from({ length: shards }, (_, i) => `UP#${i}`);

/**
 * The status a reader sees: an UP node past its lease is DOWN even before the
 * sweeper marks it — but without a `downReason` until it is declared: the
 * sweeper decides within a sweep, and after an outage of the information
 * center it grants such a node one more lease instead (self-preservation).
 * The reason is what tells a reader that the information center has decided
 * (a NODE_DOWN was sent), which a cache must not anticipate.
 */
export function effectiveStatus(item: NodeItem, now: number): { status: NodeStatus; downReason?: DownReason } {
  if (item.status === 'DOWN') return { status: 'DOWN', downReason: item.downReason };
  if (item.expiresAt <= now) return { status: 'DOWN' };
  return { status: 'UP' };
}

export function toNode(item: NodeItem, now: number = Date.now()): Node {
  const { status, downReason } = effectiveStatus(item, now);
  const node: Node = {
    key: nodeKey(item.clusterId, item.nodeId),
    clusterId: item.clusterId,
    nodeId: item.nodeId,
    status,
    metadata: item.metadata ?? {},
    leaseSeconds: item.leaseSeconds,
    incarnation: item.incarnation,
    registeredAt: item.registeredAt,
    lastKeepaliveAt: item.lastKeepaliveAt,
    expiresAt: new Date(item.expiresAt).toISOString(),
    revision: item.revision,
  };
  if (downReason) node.downReason = downReason;
  return node;
}

/** The event a stream record of a node item stands for, or undefined when it stands for none. */
export function toEvent(item: NodeItem): MembershipEvent | undefined {
  if (!item.ev) return undefined;
  // The node as it was at the moment of the event: an event is about that instant.
  const node = toNode(item, Date.parse(item.changedAt));
  const event: MembershipEvent = {
    type: item.ev,
    clusterId: item.clusterId,
    revision: item.revision,
    node,
    at: item.changedAt,
  };
  if (item.ev === 'NODE_DOWN' && item.downReason) event.reason = item.downReason;
  return event;
}
