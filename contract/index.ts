/**
 * Roster's wire contract (v1), written once: the rules, names and shapes that
 * the functions, the SDK and the console share. A rule changes here and
 * everywhere at once.
 *
 * No dependencies, no Node or browser APIs: the functions bundle it into
 * their Lambda code, the console into its page, and the SDK's build into the
 * published package (`@roster/contract` itself is never published).
 *
 * The same contract, for other languages: `openapi.json` (HTTP, OpenAPI 3.1,
 * also served at `GET /v1/openapi.json`) and `asyncapi.json` (WebSocket,
 * AsyncAPI 3) next to this file. The conformance suite checks the running
 * server against both, and test/contract checks they agree with this module.
 */

// ─── Ids ──────────────────────────────────────────────────────────────────

/**
 * `clusterId` and `nodeId`: 1–64 characters of `A-Z a-z 0-9 . _ -`, except
 * `.` and `..`, which no ordinary HTTP client can put in a path (URL
 * normalisation turns `/v1/clusters/../nodes` into `/v1/nodes`).
 */
export const ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,64}$/;

/** The rule in words, for error messages. */
export const ID_RULE = '1-64 characters of A-Z a-z 0-9 . _ - (not "." or "..")';

export const isValidId = (value: unknown): value is string => typeof value === 'string' && ID_PATTERN.test(value);

// ─── Lease and metadata ───────────────────────────────────────────────────

export const LEASE_MIN_SECONDS = 2;
export const LEASE_MAX_SECONDS = 3600;
/**
 * The lease of a registration that names none (a deployment may configure
 * another); the SDK keeps alive every third of it.
 *
 * Why 60 s, the longest the contract allows. Keepalives are the fleet's
 * largest load: 3 × nodes / lease requests a second, each an HTTP request, a
 * Lambda invocation and a write. `roster capacity --nodes 100000 --clusters
 * 1000` at a 60 s lease: 5,000 keepalives a second, the account's API
 * Gateway quota (10,000 a second, shared with every other request and post)
 * at 59%, Lambda's request rate at 57%; at 45 s, 76% and 74%; at 30 s both
 * past 100%. Under about 51 s the quota passes the 70% the design aims under
 * at 100,000 nodes. Crash detection does not depend on it (the bound
 * connection: grace 2 s + a sweep); a hang is seen after lease + ~1.5 s.
 */
export const DEFAULT_LEASE_SECONDS = 60;

/**
 * Time between an SDK client's periodic syncs (anti-entropy: the list's
 * revision, answered 304 when nothing changed). Events are pushed and a gap or
 * a reconnection syncs at once, so the periodic sync only bounds how long a
 * lost event could go unnoticed. `roster capacity --nodes 100000 --clusters
 * 1000`: 333 requests a second at 300 s; at 30 s, 3,350, and the account's
 * API Gateway quota at 89% instead of 59%. 1,000 nodes make 8.8 million of
 * them a month (88 million at 30 s, $1 a million on the HTTP API alone).
 */
export const DEFAULT_REFRESH_INTERVAL_SECONDS = 300;

/**
 * Time between an SDK client's `{"action":"ping"}` messages: half of API
 * Gateway's 10-minute idle timeout
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html),
 * and the time within which a client notices a connection that died without
 * a close. Each ping is two WebSocket messages and a Lambda invocation.
 * `roster capacity --nodes 100000 --clusters 1000`: 333 pings a second at
 * 300 s; at 60 s, 1,667, and the account's API Gateway quota at 73%.
 */
export const DEFAULT_PING_INTERVAL_SECONDS = 300;

export const isValidLease = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= LEASE_MIN_SECONDS && value <= LEASE_MAX_SECONDS;

export const METADATA_MAX_KEYS = 32;
/** The UTF-8 bytes of every key and value together. */
export const METADATA_MAX_BYTES = 4096;
export const METADATA_KEY_MAX_CHARS = 128;

// ─── Nodes and events ─────────────────────────────────────────────────────

export const NODE_STATUSES = ['UP', 'DOWN'] as const;
export type NodeStatus = (typeof NODE_STATUSES)[number];

export const EVENT_TYPES = ['NODE_REGISTERED', 'NODE_DOWN', 'NODE_UPDATED'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Why a node is DOWN: its lease ran out, it deregistered, or its bound connection dropped and it did not come back in the grace period. */
export const DOWN_REASONS = ['expired', 'deregistered', 'disconnected'] as const;
export type DownReason = (typeof DOWN_REASONS)[number];

/** A node: one record per node key `{clusterId}/{nodeId}`. */
export interface Node {
  key: string;
  clusterId: string;
  nodeId: string;
  status: NodeStatus;
  /** Flat string values; at most METADATA_MAX_KEYS keys and METADATA_MAX_BYTES bytes. */
  metadata: Record<string, string>;
  leaseSeconds: number;
  /** The run of the node that registered; a higher one replaces a lower one. */
  incarnation: number;
  registeredAt: string;
  lastKeepaliveAt: string;
  expiresAt: string;
  /** The cluster revision of the node's last event-producing change. */
  revision: number;
  /**
   * Set on DOWN nodes the information center has declared down (the reason its
   * NODE_DOWN carried). A node read as DOWN only because its lease ran out has
   * none until the sweeper decides: within a sweep, or one more lease after an
   * outage of the information center.
   */
  downReason?: DownReason;
}

/** A membership event, as a subscriber receives it (one per WebSocket message, or several in an `EVENTS` batch). */
export interface MembershipEvent {
  type: EventType;
  clusterId: string;
  /** The cluster revision this change produced; the node's `revision` afterwards. */
  revision: number;
  /** The node at the moment of the event. */
  node: Node;
  /** On `NODE_DOWN`. */
  reason?: DownReason;
  at: string;
}

/**
 * `GET /v1/clusters/{clusterId}/nodes`: one page of the list. Follow `next`
 * (as `?cursor=`) until a page has none; the pages together are the list at
 * `revision`, which every page of one walk carries.
 */
export interface NodeList {
  clusterId: string;
  /** The cluster revision read before the first page's nodes: the list reflects at least every change up to it. */
  revision: number;
  /** This page's nodes, in node id order, continuing the previous page's. */
  nodes: Node[];
  /** The cursor of the next page; absent on the last page. Opaque. */
  next?: string;
}

// ─── The list's pages ─────────────────────────────────────────────────────

/** Nodes a list page holds at most when the request names no `limit`. */
export const LIST_PAGE_DEFAULT = 1000;
/** The largest `limit` a list request may ask for. A page may hold fewer nodes (it also ends before it would outgrow the server's response limits). */
export const LIST_PAGE_MAX = 5000;

/** One row of `GET /v1/clusters`. */
export interface ClusterSummary {
  clusterId: string;
  up: number;
  down: number;
  revision: number;
  lastEventAt?: string;
}

/** `GET /v1/clusters` */
export interface ClusterList {
  clusters: ClusterSummary[];
}

// ─── Errors ───────────────────────────────────────────────────────────────

/** Every error code of the HTTP and WebSocket APIs, with its HTTP status. */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NODE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  STALE_INCARNATION: 409,
  CURSOR_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  THROTTLED: 429,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;
export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** Every error answer: `{"error":{"code","message"}}` (never a stack trace). */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

// ─── The list's entity tag ────────────────────────────────────────────────

/**
 * The ETag of a node list: weak, because two lists of one revision are the
 * same membership even when keepalives have moved their lease times since.
 * `all` is the `?status=all` variant.
 */
export const listEtag = (revision: number, all: boolean): string => `W/"r${revision}-${all ? 'all' : 'up'}"`;

/** The revision an `If-None-Match` header names for this variant (weak comparison), if any. */
export function revisionInIfNoneMatch(header: string | undefined, all: boolean): number | undefined {
  const variant = all ? 'all' : 'up';
  for (const tag of (header ?? '').split(',')) {
    const match = /^\s*(?:W\/)?"r(\d{1,15})-(all|up)"\s*$/.exec(tag);
    if (match && match[2] === variant) return Number(match[1]);
  }
  return undefined;
}

// ─── WebSocket API ────────────────────────────────────────────────────────

/**
 * Query parameters of the WebSocket connect URL: `clusterId` subscribes,
 * `nodeId` (with `incarnation`) also binds the node to the connection,
 * `token` carries the bearer token when auth is on, and `batch=true` lets
 * the server put several events of one cluster into one `EVENTS` message.
 */
export const WS_CONNECT_PARAMETERS = ['clusterId', 'nodeId', 'incarnation', 'token', 'batch'] as const;

/** Client messages: `{"action":"subscribe","clusterId"}`, `{"action":"unsubscribe","clusterId"}`, `{"action":"ping"}`. */
export const WS_ACTIONS = ['subscribe', 'unsubscribe', 'ping'] as const;
export type WsAction = (typeof WS_ACTIONS)[number];

export type ClientMessage = { action: 'subscribe' | 'unsubscribe'; clusterId: string } | { action: 'ping' };

/** Several events of one cluster in one message (connections opened with `batch=true`), each in revision order per node. */
export interface EventsBatch {
  type: 'EVENTS';
  clusterId: string;
  events: MembershipEvent[];
}

/** Replies to client messages. */
export type ReplyMessage =
  | { type: 'SUBSCRIBED' | 'UNSUBSCRIBED'; clusterId: string }
  | { type: 'PONG'; at: string }
  | ({ type: 'ERROR' } & ErrorBody);

/** Everything the server sends on a WebSocket connection. */
export type ServerMessage = MembershipEvent | EventsBatch | ReplyMessage;

export const SERVER_MESSAGE_TYPES = [...EVENT_TYPES, 'EVENTS', 'SUBSCRIBED', 'UNSUBSCRIBED', 'PONG', 'ERROR'] as const;

// ─── Shape checks ─────────────────────────────────────────────────────────
// For what arrives over the network: a client trusts the contract but not the
// path (a proxy's HTML error page, a truncated body). Anything that fails
// these is a bad answer, never cast and used.

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isOneOf =
  <T extends string>(values: readonly T[]) =>
  (value: unknown): value is T =>
    typeof value === 'string' && (values as readonly string[]).includes(value);

export const isEventType = isOneOf(EVENT_TYPES);
export const isDownReason = isOneOf(DOWN_REASONS);

export function isNode(value: unknown): value is Node {
  return (
    isObject(value) &&
    typeof value.nodeId === 'string' &&
    typeof value.clusterId === 'string' &&
    (value.status === 'UP' || value.status === 'DOWN') &&
    Number.isSafeInteger(value.revision) &&
    typeof value.incarnation === 'number' &&
    typeof value.leaseSeconds === 'number' &&
    isObject(value.metadata)
  );
}

export function isNodeList(value: unknown): value is NodeList {
  return (
    isObject(value) &&
    typeof value.clusterId === 'string' &&
    Number.isSafeInteger(value.revision) &&
    Array.isArray(value.nodes) &&
    value.nodes.every(isNode) &&
    (value.next === undefined || typeof value.next === 'string')
  );
}

export function isMembershipEvent(value: unknown): value is MembershipEvent {
  return (
    isObject(value) &&
    isEventType(value.type) &&
    typeof value.clusterId === 'string' &&
    Number.isSafeInteger(value.revision) &&
    isNode(value.node)
  );
}

export function isEventsBatch(value: unknown): value is EventsBatch {
  return (
    isObject(value) &&
    value.type === 'EVENTS' &&
    typeof value.clusterId === 'string' &&
    Array.isArray(value.events) &&
    value.events.every(isMembershipEvent)
  );
}

/**
 * The membership events a server message carries, in order: one for a
 * single event, each of an `EVENTS` batch, none (undefined) for anything
 * else. A client that connects with `batch=true` reads every message
 * through this, and so handles both kinds alike.
 */
export function eventsIn(message: unknown): MembershipEvent[] | undefined {
  if (isMembershipEvent(message)) return [message];
  if (isEventsBatch(message)) return message.events;
  return undefined;
}

export function isClusterSummary(value: unknown): value is ClusterSummary {
  return (
    isObject(value) &&
    typeof value.clusterId === 'string' &&
    Number.isSafeInteger(value.up) &&
    Number.isSafeInteger(value.down) &&
    Number.isSafeInteger(value.revision) &&
    (value.lastEventAt === undefined || typeof value.lastEventAt === 'string')
  );
}

export function isClusterList(value: unknown): value is ClusterList {
  return isObject(value) && Array.isArray(value.clusters) && value.clusters.every(isClusterSummary);
}

/** The contract's error body; `code` is any string, so a newer server's codes still read as errors. */
export function isErrorBody(value: unknown): value is { error: { code: string; message: string } } {
  return isObject(value) && isObject(value.error) && typeof value.error.code === 'string' && typeof value.error.message === 'string';
}

export { GAP_WAIT_MS, RevisionedMap, type RecordChange, type EventOutcome, type RevisionedMapOptions, type SnapshotOutcome } from './revisioned-map.ts';
