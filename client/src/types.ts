/**
 * The events the client emits, and the wire types it reads. Those come from
 * the contract module (@roster/contract), which the build bundles in.
 */
import type { DownReason, Node } from '@roster/contract';
import type { RosterClientError } from './errors.ts';

export type { DownReason, EventType, MembershipEvent, Node, NodeList, NodeStatus } from '@roster/contract';

/**
 * Where a membership change was learnt:
 * - `event`: a live event, as it happened;
 * - `sync`: the difference a sync found while the client ran (an event it
 *   missed, e.g. during a disconnection);
 * - `resync`: the difference between the list of the cache file this client
 *   started from and the server's list: changes that happened while this
 *   process was not running, possibly long ago.
 */
export type ChangeSource = 'event' | 'sync' | 'resync';

/** Why the client fetched the list. */
export type SyncReason = 'start' | 'reconnect' | 'gap' | 'refresh' | 'retry';

interface NodeChangeBase {
  /** The node as it is now (for `down`: its DOWN record, or the last UP state known if the record is gone). */
  node: Node;
  /** The revision of that state. */
  revision: number;
  source: ChangeSource;
}

/** A node joined the healthy list, or came back as a new incarnation (then `previous` is the one it replaced). */
export interface RegisteredEvent extends NodeChangeBase {
  type: 'registered';
  previous?: Node;
}

/** A healthy node re-registered with different metadata or lease. */
export interface UpdatedEvent extends NodeChangeBase {
  type: 'updated';
  previous: Node;
}

/** A node left the healthy list. */
export interface DownEvent extends NodeChangeBase {
  type: 'down';
  /**
   * `expired`, `deregistered` or `disconnected`. Undefined only when a sync
   * found the node missing from the server's list altogether: its DOWN record
   * is gone (kept a day by default, then deleted) or the server lost its
   * state, so nobody knows why any more. A live event always has a reason.
   */
  reason: DownReason | undefined;
}

/** The healthy list changed; `nodes` is the whole new list, sorted by node id. */
export interface ChangeEvent {
  type: 'change';
  nodes: readonly Node[];
  revision: number;
}

/** The WebSocket connection opened (a resync follows at once). */
export interface ConnectedEvent {
  type: 'connected';
  /** Whether the connection binds this client's node (connection-bound liveness). */
  bound: boolean;
  /** False for the first connection, true for every later one. */
  reconnect: boolean;
}

/** An open WebSocket connection closed; the client reconnects with backoff. Recoverable. */
export interface DisconnectedEvent {
  type: 'disconnected';
  reason: string;
}

/** The cache was replaced by the server's list (snapshot plus the events received meanwhile). */
export interface ResyncedEvent {
  type: 'resynced';
  reason: SyncReason;
  revision: number;
  /** Healthy nodes after the sync. */
  nodes: number;
  /** True when the server's revision went backwards: it lost its state, so nothing cached was kept. */
  reset: boolean;
}

/** A keepalive (or the re-registration that replaces one) failed. Recoverable unless a `lost` event follows. */
export interface KeepaliveFailedEvent {
  type: 'keepaliveFailed';
  error: RosterClientError;
  /** Failures in a row. */
  consecutive: number;
}

/**
 * A keepalive (or the registration that replaced one) succeeded after
 * `failures` failed in a row: the end of what `keepaliveFailed` reported.
 */
export interface KeepaliveRecoveredEvent {
  type: 'keepaliveRecovered';
  /** Failures in a row before this success. */
  failures: number;
}

/**
 * The lease is gone. Whether the client recovers depends on the reason:
 * - `expired` (recoverable): by the client's own clock, no keepalive
 *   succeeded for a whole lease, so the server has certainly let it lapse
 *   (peers see the node `down`). The client keeps trying and registers anew
 *   (a new lease, a `registered` event for peers) once the server answers.
 * - `superseded` (terminal for the node): a newer incarnation of this node
 *   registered (409 `STALE_INCARNATION`). The client stops keepalives for
 *   good and never re-registers; it keeps watching the cluster.
 * - `unauthorized` (terminal): the information center refused the token (401
 *   `UNAUTHORIZED`: missing, expired, wrongly signed; 403 `FORBIDDEN`: not
 *   for this cluster or role). Retrying cannot help, so the client stops
 *   (`closed` with the same error follows).
 */
export interface LostEvent {
  type: 'lost';
  reason: 'expired' | 'superseded' | 'unauthorized';
  error?: RosterClientError;
}

/**
 * The client stopped. Terminal: the last event, after which iterators end.
 * `error` is set when it stopped by itself because the token was refused.
 */
export interface ClosedEvent {
  type: 'closed';
  /**
   * Whether stopping deregistered this client's node. False for a watcher,
   * a node that never registered, one a newer incarnation superseded, one
   * whose token was refused, and when the deregistration failed (a
   * `warning` said so; the node then expires with its lease).
   */
  deregistered: boolean;
  error?: RosterClientError;
}

/** Something went wrong that the client works around (an unreadable cache file, an odd server message). */
export interface WarningEvent {
  type: 'warning';
  message: string;
  error?: unknown;
}

/** Every event a client emits, as a tagged union (`for await (const e of client.events())`). */
export type ClientEvent =
  | RegisteredEvent
  | UpdatedEvent
  | DownEvent
  | ChangeEvent
  | ConnectedEvent
  | DisconnectedEvent
  | ResyncedEvent
  | KeepaliveFailedEvent
  | KeepaliveRecoveredEvent
  | LostEvent
  | ClosedEvent
  | WarningEvent;

export type ClientEventType = ClientEvent['type'];
export type ClientEventOf<T extends ClientEventType> = Extract<ClientEvent, { type: T }>;
