/**
 * Least privilege, written down: what each handler does with the table, traced
 * from the core functions it calls (lib-dynamodb `GetCommand` → `GetItem`,
 * `PutCommand` → `PutItem`, `UpdateCommand` → `UpdateItem`, `QueryCommand` →
 * `Query`, `DeleteCommand` → `DeleteItem`, `BatchWriteCommand` → `BatchWriteItem`,
 * `BatchGetCommand` → `BatchGetItem`).
 *
 * A handler that is missing here gets no table at all (and no `TABLE_NAME`).
 * `test/infra/synth.test.ts` checks every bundle against this map: each
 * DynamoDB operation compiled into a handler's bundle must be granted here.
 */
import { EXPIRY_INDEX } from '../functions/core/model.ts';
import type { TableAccess } from './function.ts';

/** HTTP handlers, keyed by module name under `functions/http/`. */
export const HTTP_TABLE_ACCESS: Readonly<Record<string, TableAccess>> = {
  // registry.register: getNodeItem, renewal update, the cluster entry (read, rememberCluster), nextRevision, conditional put.
  register: { actions: ['GetItem', 'PutItem', 'UpdateItem'] },
  // registry.keepalive: one conditional update, nothing else.
  keepalive: { actions: ['UpdateItem'] },
  // registry.deregister: getNodeItem, nextRevision, markDown.
  deregister: { actions: ['GetItem', 'UpdateItem'] },
  // registry.getNode.
  'get-node': { actions: ['GetItem'] },
  // registry.listNodes: clusterRevision, then the cluster's node items.
  'list-nodes': { actions: ['GetItem', 'Query'] },
  // registry.listClusters: the CLUSTERS partition, then one query per cluster.
  'list-clusters': { actions: ['Query'] },
  // sweeper.lastSweepAt: the sweeper's heartbeat item.
  health: { actions: ['GetItem'] },
};

/** WebSocket handlers, keyed by module name under `functions/ws/`. */
export const WS_TABLE_ACCESS: Readonly<Record<string, TableAccess>> = {
  // connections.connect: bindNode (update), connection record and subscription (puts).
  connect: { actions: ['PutItem', 'UpdateItem'] },
  // connections.disconnect: read the connection, batch-delete its records, cut the bound lease.
  disconnect: { actions: ['GetItem', 'BatchWriteItem', 'UpdateItem'] },
  // connections.subscribe: read the connection, add the cluster, put the subscription.
  subscribe: { actions: ['GetItem', 'PutItem', 'UpdateItem'] },
  // connections.unsubscribe: remove the cluster, delete the subscription.
  unsubscribe: { actions: ['UpdateItem', 'DeleteItem'] },
};

/**
 * The handlers that touch no table, said so: a route's handler in neither its
 * map above nor here fails test/contract/routes.unit.test.ts, so a new route
 * cannot go without table access by being forgotten.
 */
export const NO_TABLE_ACCESS: Readonly<{ http: readonly string[]; ws: readonly string[] }> = {
  // not-found answers 404; openapi and console serve documents built into the bundle.
  http: ['not-found', 'openapi', 'console'],
  // ping answers pong; $default answers the unknown action.
  ws: ['ping', 'default'],
};

/**
 * fanout.fanOut: the subscriptions version's shards (one BatchGetItem), subscribersOf (query), and for a 410 the
 * same clean-up as `$disconnect` plus the subscription record itself.
 */
export const FANOUT_TABLE_ACCESS: TableAccess = { actions: ['Query', 'GetItem', 'BatchGetItem', 'BatchWriteItem', 'UpdateItem', 'DeleteItem'] };

/**
 * sweeper.sweep: heartbeat get/put, announced deadlines from the expiry index,
 * the `CLUSTERS` partition and each due cluster's node items (Query of the
 * base table), the announced nodes alone (BatchGetItem), nextRevision / markDown / extendLease updates, and the removal
 * of an empty cluster's `CLUSTERS` entry (a conditional DeleteItem). Before
 * issue 21 this map granted the index only, and every sweep on AWS would have
 * failed with AccessDeniedException; the local runtime now evaluates each
 * call against the role, so such a gap fails the tests.
 */
export const SWEEPER_TABLE_ACCESS: TableAccess = { actions: ['GetItem', 'BatchGetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query'], queryIndexes: [EXPIRY_INDEX] };
