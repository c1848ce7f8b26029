/**
 * The Roster client SDK: register a node, keep it alive, and keep a cached,
 * event-driven view of its cluster's healthy nodes.
 *
 * ```ts
 * import { RosterClient } from '@roster/client';
 *
 * await using client = new RosterClient({
 *   httpUrl: 'http://127.0.0.1:4000',
 *   wsUrl: 'ws://127.0.0.1:4000/ws',
 *   clusterId: 'backup',
 *   nodeId: 'node-1',
 *   metadata: { zone: 'a' },
 *   stopOnSignals: true, // Ctrl-C deregisters the node before the process ends
 * });
 * client.on('down', (e) => console.log(`${e.node.nodeId} is down (${e.reason})`));
 * await client.start();
 * console.log(client.nodes().map((n) => n.nodeId));
 * ```
 */
export { RosterClient, type RosterClientOptions } from './client.ts';
export { exponentialBackoff, type Backoff, type BackoffOption, type ExponentialBackoffOptions } from './backoff.ts';
export { RosterClientError, type ClientErrorCode } from './errors.ts';
export { listNodes, listNodesIfChanged, type ListNodesOptions } from './http-client.ts';
export { RosterLease, type RosterLeaseEvents, type RosterLeaseOptions } from './roster-lease.ts';
export type { ConnectionState } from './connection.ts';
export type {
  ChangeEvent,
  ChangeSource,
  ClientEvent,
  ClientEventOf,
  ClientEventType,
  ClosedEvent,
  ConnectedEvent,
  DisconnectedEvent,
  DownEvent,
  DownReason,
  EventType,
  KeepaliveFailedEvent,
  KeepaliveRecoveredEvent,
  LostEvent,
  MembershipEvent,
  Node,
  NodeList,
  NodeStatus,
  RegisteredEvent,
  ResyncedEvent,
  SyncReason,
  UpdatedEvent,
  WarningEvent,
} from './types.ts';
