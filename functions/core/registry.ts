/**
 * Node membership: register, keepalive, deregister, reads.
 *
 * Revisions. Each cluster has a counter (`META.revision`). A write that
 * produces an event first takes the next revision with an atomic `ADD`, then
 * writes the node item carrying that revision and `ev`, conditional on the
 * node's revision being the one it read. If the condition fails (a concurrent
 * change won), the attempt starts over; the revision it took is left unused,
 * which subscribers see as a gap and answer with a resync. Per node, revisions
 * therefore only grow, and a node's stream records arrive in revision order.
 *
 * Writes that produce no event (keepalive, lease renewal, binding, the
 * disconnect lease cut) never touch the revision and always `REMOVE ev`, so
 * the stream filter never passes them to the fan-out.
 */
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { LIST_PAGE_DEFAULT, type ClusterSummary } from '@roster/contract';
import { queryAll } from './query.ts';
import type { Deps } from './deps.ts';
import { metrics } from './metrics.ts';
import { CursorExpiredError, NodeNotFoundError, StaleIncarnationError, ThrottledError } from './errors.ts';
import { encodeCursor, readPage, type Cursor } from './list-page.ts';
import { isConditionFailure } from './conditions.ts';
import type { ItemUpdate } from './transactions.ts';
import { announcement, renewLease, renewRegistration, ttlAt } from './lease.ts';
import {
  CLUSTERS_PK,
  META_SK,
  clusterIndexKey,
  clusterPk,
  effectiveStatus,
  metaKey,
  nodeItemKey,
  nodeKey,
  toNode,
  type DownReason,
  type EventType,
  type Node,
  type NodeItem,
} from './model.ts';
import type { RegisterBody } from './validation.ts';

/** Attempts of an optimistic write before the caller is told to back off. */
const MAX_ATTEMPTS = 8;

const iso = (ms: number): string => new Date(ms).toISOString();

export async function getNodeItem(deps: Deps, clusterId: string, nodeId: string): Promise<NodeItem | undefined> {
  const out = await deps.db.send(
    new GetCommand({ TableName: deps.config.tableName, Key: nodeItemKey(clusterId, nodeId), ConsistentRead: true }),
  );
  return out.Item as NodeItem | undefined;
}

/** Takes the cluster's next revision. */
export async function nextRevision(deps: Deps, clusterId: string, nowIso: string): Promise<number> {
  return reserveRevisions(deps, clusterId, 1, nowIso);
}

/**
 * Takes the cluster's next `count` revisions with one write of its `META`
 * item, and returns the first; the caller owns `first … first + count − 1`.
 * The sweeper takes one block per cluster and sweep for all the nodes it
 * settles there, so a sweep that declares 1,000 nodes down writes the counter
 * once, not 1,000 times: the counter is one item, and one item takes at most
 * 1,000 writes a second (docs/how-it-works/architecture.md#revisions).
 */
export async function reserveRevisions(deps: Deps, clusterId: string, count: number, nowIso: string): Promise<number> {
  const out = await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: metaKey(clusterId),
      UpdateExpression: 'ADD revision :count SET updatedAt = :now',
      ExpressionAttributeValues: { ':count': count, ':now': nowIso },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  return Number(out.Attributes?.revision) - count + 1;
}

function sameMetadata(a: Record<string, string>, b: Record<string, string>): boolean {
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

export interface RegisterResult {
  node: Node;
  /**
   * True when the node was not UP before — never registered, DOWN, or past
   * its lease — and this registration brought it UP (HTTP 201). It is then
   * always a `NODE_REGISTERED`; so is a new incarnation of an UP node, which
   * is not `created` (200): etcd and Consul users read "created" as "it was
   * not there, now it is".
   */
  created: boolean;
  /** The event this registration produced, if any (a renewal with nothing changed produces none). */
  event?: EventType;
}

/**
 * Registers a node: an idempotent upsert with PUT semantics (absent fields
 * take their defaults) that starts a new lease.
 *
 * - no live record (201), or a new incarnation (200) → `NODE_REGISTERED`
 * - same incarnation, different metadata or lease → `NODE_UPDATED`
 * - same incarnation, nothing changed → lease renewed, no event
 * - an incarnation lower than the stored one → 409 `STALE_INCARNATION`
 */
export async function register(deps: Deps, clusterId: string, nodeId: string, body: RegisterBody): Promise<RegisterResult> {
  const { tableName, defaultLeaseSeconds } = deps.config;
  const key = nodeItemKey(clusterId, nodeId);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const old = await getNodeItem(deps, clusterId, nodeId);
    const now = deps.now();
    if (old && body.incarnation !== undefined && body.incarnation < old.incarnation) {
      throw new StaleIncarnationError(nodeKey(clusterId, nodeId), old.incarnation, body.incarnation);
    }
    const live = old !== undefined && effectiveStatus(old, now).status === 'UP';
    const incarnation = body.incarnation ?? (live ? old.incarnation : (old?.incarnation ?? 0) + 1);
    const leaseSeconds = body.leaseSeconds ?? defaultLeaseSeconds;
    const metadata = body.metadata ?? {};
    const expiresAt = now + leaseSeconds * 1000;
    const nowIso = iso(now);

    let ev: EventType | undefined;
    if (!live || incarnation !== old.incarnation) ev = 'NODE_REGISTERED';
    else if (leaseSeconds !== old.leaseSeconds || !sameMetadata(old.metadata ?? {}, metadata)) ev = 'NODE_UPDATED';

    try {
      if (ev === undefined && old) {
        const renewed = await renewRegistration(deps, clusterId, nodeId, old.revision, now);
        // The same registration again is what a client sends after an error: if that error came between
        // an earlier attempt's node write and its cluster write, this is where the cluster is listed.
        await keepClusterListed(deps, clusterId, nowIso, holdsCluster(old, now));
        metrics.count('Registrations', { event: 'none' });
        return { node: toNode(renewed, now), created: false };
      }

      const revision = await nextRevision(deps, clusterId, nowIso);
      const sameIncarnation = old !== undefined && old.incarnation === incarnation;
      const item: NodeItem = {
        ...key,
        clusterId,
        nodeId,
        status: 'UP',
        // Empty metadata is not stored: DynamoDB Local's stream renders an empty map as `{}`
        // instead of `{"M":{}}`, which no unmarshaller accepts. Readers default it to `{}`.
        metadata: Object.keys(metadata).length > 0 ? metadata : undefined,
        leaseSeconds,
        leaseMs: leaseSeconds * 1000,
        incarnation,
        registeredAt: ev === 'NODE_UPDATED' && old ? old.registeredAt : nowIso,
        lastKeepaliveAt: nowIso,
        expiresAt,
        revision,
        changedAt: nowIso,
        ev,
        // A new lease: announce its deadline to the sweeper.
        ...announcement(deps, clusterId, nodeId, expiresAt),
        // A new incarnation's lease must not be cut when the previous process's connection drops.
        boundConn: sameIncarnation ? old.boundConn : undefined,
        ttl: ttlAt(deps, expiresAt),
      };
      await deps.db.send(
        new PutCommand({
          TableName: tableName,
          Item: item,
          ConditionExpression: old ? 'revision = :rev' : 'attribute_not_exists(pk)',
          ExpressionAttributeValues: old ? { ':rev': old.revision } : undefined,
        }),
      );
      // A node that was not live may be the first of a cluster the sweeper is removing (or has removed) as
      // empty: listing it after the node is written is what makes that removal lose the race (keepClusterListed).
      // A live node's own item keeps its cluster from being empty.
      if (!live) await keepClusterListed(deps, clusterId, nowIso, old !== undefined && holdsCluster(old, now));
      metrics.count('Registrations', { event: ev ?? 'none' });
      return { node: toNode(item, now), created: !live, event: ev };
    } catch (err) {
      if (isConditionFailure(err)) continue; // a concurrent change won; read again
      throw err;
    }
  }
  throw new ThrottledError(`too many concurrent changes to ${nodeKey(clusterId, nodeId)}; retry`);
}

/**
 * A DOWN item whose retention ends within this margin is not counted as
 * holding its cluster: time enough for the registration's node write and
 * its read of the entry, however slow, to land while it still does.
 */
const HOLD_MARGIN_MS = 60_000;

/**
 * Whether a node item keeps its cluster from being empty in the sweeper's
 * eyes (sweeper.ts, `HOLDS_CLUSTER`): UP, or DOWN within its retention.
 */
function holdsCluster(item: NodeItem, now: number): boolean {
  return item.status === 'UP' || item.ttl === undefined || item.ttl * 1000 > now + HOLD_MARGIN_MS;
}

/**
 * Sees that the cluster is listed after a registration wrote its node. When
 * the node's old item held the cluster (`heldBefore`), no removal of it can
 * be under way — the sweeper removes only a cluster its consistent read
 * found empty, and the item held it until the registration replaced it — so
 * an eventually consistent read of the entry decides (half a read unit): a
 * storm of restarts reads the one `CLUSTERS` item instead of writing it a
 * thousand times a second. Otherwise, or when the entry is missing (an
 * earlier attempt failed between its node write and its cluster write), the
 * entry is written and its `gen` counted (`rememberCluster`).
 */
async function keepClusterListed(deps: Deps, clusterId: string, nowIso: string, heldBefore: boolean): Promise<void> {
  if (heldBefore) {
    const out = await deps.db.send(new GetCommand({ TableName: deps.config.tableName, Key: clusterIndexKey(clusterId), ProjectionExpression: 'gen' }));
    if (out.Item) return;
  }
  await rememberCluster(deps, clusterId, nowIso);
}

/**
 * Lists the cluster in the `CLUSTERS` partition (behind `GET /v1/clusters`
 * and the sweeper's full sweep), or keeps it listed, and counts the listing
 * in `gen`. It comes after the node write, and the sweeper removes an empty
 * cluster only if `gen` has not moved since before it found the cluster
 * empty (sweeper.ts, `removeIfEmpty`): a registration whose node the
 * sweeper's read missed lists the cluster after that read, so the removal
 * either fails on `gen` or comes first and is undone by this upsert.
 */
async function rememberCluster(deps: Deps, clusterId: string, nowIso: string): Promise<void> {
  await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: clusterIndexKey(clusterId),
      UpdateExpression: 'SET clusterId = :c, createdAt = if_not_exists(createdAt, :now) ADD gen :one',
      ExpressionAttributeValues: { ':c': clusterId, ':now': nowIso, ':one': 1 },
    }),
  );
}

/**
 * Keepalive: one conditional update (`renewLease`), no read and no event.
 * Fails with 404 when the node is unknown, DOWN, or already past its lease
 * (the client then re-registers), and with 409 when `incarnation` is not the current one.
 */
export async function keepalive(deps: Deps, clusterId: string, nodeId: string, incarnation?: number): Promise<Node> {
  try {
    const item = await renewLease(deps, clusterId, nodeId, { incarnation });
    metrics.count('Keepalives');
    return toNode(item, deps.now());
  } catch (err) {
    if (err instanceof NodeNotFoundError || err instanceof StaleIncarnationError) metrics.count('KeepaliveFailures', { code: err.code });
    throw err;
  }
}

/**
 * Deregister: marks the node DOWN with reason `deregistered` (the record stays
 * readable with `?status=all` until retention ends). Deregistering a node that
 * is unknown or already DOWN succeeds and changes nothing.
 */
export async function deregister(deps: Deps, clusterId: string, nodeId: string, incarnation?: number): Promise<void> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const old = await getNodeItem(deps, clusterId, nodeId);
    if (!old || old.status === 'DOWN') return;
    if (incarnation !== undefined && incarnation !== old.incarnation) {
      throw new StaleIncarnationError(nodeKey(clusterId, nodeId), old.incarnation, incarnation);
    }
    const now = deps.now();
    const revision = await nextRevision(deps, clusterId, iso(now));
    try {
      await markDown(deps, { clusterId, nodeId, revision: old.revision }, revision, now, 'deregistered');
      metrics.count('NodesDown', { reason: 'deregistered' });
      return;
    } catch (err) {
      if (isConditionFailure(err)) continue;
      throw err;
    }
  }
  throw new ThrottledError(`too many concurrent changes to ${nodeKey(clusterId, nodeId)}; retry`);
}

/**
 * The UP → DOWN write shared by deregister and the sweeper. Conditional on
 * the revision the caller saw, and for the sweeper also on the lease being
 * past, so a keepalive racing the sweeper either wins (node stays UP) or
 * loses (404) — never both. `cause` is who decided: the client
 * (`deregistered`, the reason stored) or the lease's end, seen by the sweeper
 * (`lapsed`: the reason stored comes from the item, `disconnected` when the
 * lease was cut by a dropped connection, else `expired`).
 */
export async function markDown(
  deps: Deps,
  node: { clusterId: string; nodeId: string; revision: number },
  revision: number,
  now: number,
  cause: 'deregistered' | 'lapsed',
): Promise<DownReason> {
  const out = await deps.db.send(new UpdateCommand({ ...downUpdate(deps, node, revision, now, cause), ReturnValues: 'UPDATED_NEW' }));
  return (out.Attributes?.downReason as DownReason | undefined) ?? 'expired';
}

/** `markDown`'s update, unsent: the sweeper sends a storm's in transactions (transactions.ts). */
export function downUpdate(
  deps: Deps,
  node: { clusterId: string; nodeId: string; revision: number },
  revision: number,
  now: number,
  cause: 'deregistered' | 'lapsed',
): ItemUpdate {
  const values: Record<string, unknown> = {
    ':down': 'DOWN',
    ':up': 'UP',
    ':ev': 'NODE_DOWN',
    ':revision': revision,
    ':oldRevision': node.revision,
    ':changedAt': iso(now),
    ':ttl': ttlAt(deps, now),
  };
  let condition = 'revision = :oldRevision AND #status = :up';
  let reasonExpression = ':reason';
  if (cause === 'lapsed') {
    condition += ' AND expiresAt <= :now';
    values[':now'] = now;
    values[':expired'] = 'expired';
    reasonExpression = 'if_not_exists(cutReason, :expired)';
  } else {
    values[':reason'] = cause;
  }
  return {
    TableName: deps.config.tableName,
    Key: nodeItemKey(node.clusterId, node.nodeId),
    UpdateExpression: `SET #status = :down, downReason = ${reasonExpression}, revision = :revision, ev = :ev, changedAt = :changedAt, #ttl = :ttl REMOVE sweepPk, sweepAt`,
    ConditionExpression: condition,
    ExpressionAttributeNames: { '#status': 'status', '#ttl': 'ttl' },
    ExpressionAttributeValues: values,
  };
}

export async function clusterRevision(deps: Deps, clusterId: string): Promise<{ revision: number; updatedAt?: string }> {
  const out = await deps.db.send(
    new GetCommand({ TableName: deps.config.tableName, Key: metaKey(clusterId), ConsistentRead: true }),
  );
  return { revision: Number(out.Item?.revision ?? 0), updatedAt: out.Item?.updatedAt as string | undefined };
}

export interface NodeList {
  clusterId: string;
  /**
   * The cluster revision read before the nodes of the walk's first page: the
   * list reflects every change up to it, and may already reflect later ones
   * (whose node revisions say so).
   */
  revision: number;
  /** This page's nodes, by node id. */
  nodes: Node[];
  /** The cursor of the next page, if one follows. */
  next?: string;
}

export interface ListOptions {
  /** Every retained node with its effective status, not only the UP ones. */
  all?: boolean;
  /** Answer `{ notModified }` if the cluster is at this revision (a first page only). */
  unlessRevision?: number;
  /** Nodes on the page at most. @default LIST_PAGE_DEFAULT */
  limit?: number;
  /** Continue a walk (list-page.ts): its revision, and the nodes after its last one. */
  cursor?: Cursor;
}

/**
 * One page of the healthy list (UP and within lease), or with `all` of every
 * retained node with its effective status; list-page.ts says how the pages
 * of one walk make one list at one revision.
 *
 * With `unlessRevision`, a caller that already holds the cluster at that
 * revision gets `{ notModified: true }` for the price of one read of the
 * revision counter instead of the whole cluster: the periodic refresh of every
 * client is then O(1) instead of O(cluster size). Keepalives never change the
 * revision, so a list that only differs in lease times counts as unchanged.
 */
export async function listNodes(deps: Deps, clusterId: string, options: ListOptions = {}): Promise<NodeList | { notModified: true; revision: number }> {
  const { cursor } = options;
  const all = options.all ?? false;
  const { revision: current } = await clusterRevision(deps, clusterId);
  if (cursor && current < cursor.revision) throw new CursorExpiredError(clusterId, cursor.revision, current);
  if (!cursor && options.unlessRevision === current) return { notModified: true, revision: current };
  const revision = cursor?.revision ?? current;
  const { nodes, more } = await readPage(deps, clusterId, { all, after: cursor?.after, limit: options.limit ?? LIST_PAGE_DEFAULT });
  const last = nodes.at(-1);
  if (!more || last === undefined) return { clusterId, revision, nodes };
  return { clusterId, revision, nodes, next: encodeCursor({ clusterId, revision, all, after: last.nodeId }) };
}

export async function getNode(deps: Deps, clusterId: string, nodeId: string): Promise<Node> {
  const item = await getNodeItem(deps, clusterId, nodeId);
  if (!item) throw new NodeNotFoundError(nodeKey(clusterId, nodeId));
  return toNode(item, deps.now());
}

/** One row of `GET /v1/clusters`, as the contract shapes it. */
export type { ClusterSummary };

/** Every cluster with its UP/DOWN counts. An admin read: one query per cluster, never a scan. */
export async function listClusters(deps: Deps): Promise<ClusterSummary[]> {
  const index = await queryAll(deps, {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': CLUSTERS_PK },
  });
  const summaries: ClusterSummary[] = [];
  for (const entry of index) {
    const clusterId = String(entry.clusterId);
    const items = await queryAll(deps, {
      TableName: deps.config.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': clusterPk(clusterId) },
      ProjectionExpression: 'sk, #status, expiresAt, revision, updatedAt',
      ExpressionAttributeNames: { '#status': 'status' },
    });
    const now = deps.now();
    let up = 0;
    let down = 0;
    let revision = 0;
    let lastEventAt: string | undefined;
    for (const item of items) {
      if (item.sk === META_SK) {
        revision = Number(item.revision ?? 0);
        lastEventAt = item.updatedAt as string | undefined;
      } else if (item.status === 'UP' && Number(item.expiresAt) > now) up++;
      else down++;
    }
    summaries.push({ clusterId, up, down, revision, ...(lastEventAt ? { lastEventAt } : {}) });
  }
  return summaries;
}
