/**
 * The options of a RosterClient, each with its default, and their check at
 * construction: a mistake is a `VALIDATION_FAILED` error then, not a
 * surprise later.
 */
import { DEFAULT_PING_INTERVAL_SECONDS, DEFAULT_REFRESH_INTERVAL_SECONDS, ID_RULE, isValidId, isValidLease, LEASE_MAX_SECONDS, LEASE_MIN_SECONDS } from '@roster/contract';
import type { BackoffOption } from './backoff.ts';
import { RosterClientError } from './errors.ts';

/** The ping's default period (the contract's DEFAULT_PING_INTERVAL_SECONDS says why 5 minutes). */
export const DEFAULT_PING_INTERVAL_MS = DEFAULT_PING_INTERVAL_SECONDS * 1000;
/** The periodic sync's default period (the contract's DEFAULT_REFRESH_INTERVAL_SECONDS says why 5 minutes). */
export const DEFAULT_REFRESH_INTERVAL_MS = DEFAULT_REFRESH_INTERVAL_SECONDS * 1000;

export interface RosterClientOptions {
  /** Base URL of the HTTP API: the `HttpApiUrl` stack output, or `http://127.0.0.1:4000` locally. */
  httpUrl: string;
  /** URL of the WebSocket API: the `WebSocketUrl` stack output, or `ws://127.0.0.1:4000/ws` locally. */
  wsUrl: string;
  /** The cluster to watch (and to register in). */
  clusterId: string;
  /**
   * Registers this process as node `nodeId`, keeps it alive and binds it to
   * the WebSocket connection. Without it the client only watches.
   * @default undefined (a watcher)
   */
  nodeId?: string;
  /** Flat string metadata sent with the registration (at most 32 keys, 4 KiB). @default {} */
  metadata?: Record<string, string>;
  /**
   * Lease in seconds (2–3600). A shorter lease sees a hung node sooner (lease
   * + ~1.5 s) for more keepalives: more requests, cost and throttle headroom
   * used (a crash is seen within ~3.5 s whatever the lease, by the bound
   * connection). @default the information center's default, 60
   */
  leaseSeconds?: number;
  /** Time between keepalives. @default a third of the lease */
  keepaliveIntervalMs?: number;
  /**
   * Time between periodic syncs that reconcile the cache with the server
   * (±10% jitter); 0 turns them off. Events are pushed, and a gap or a
   * reconnection syncs at once: this only bounds how long a lost event can go
   * unnoticed. @default 300000
   */
  refreshIntervalMs?: number;
  /**
   * How long a revision skipped by an event may be late before the client
   * resyncs. Events of different nodes can arrive out of revision order (in a
   * storm, a fan-out batch or two apart); a late one within this fills its
   * place and no list is read. 0 resyncs at every skipped revision.
   * @default 5000 (`GAP_WAIT_MS`, docs/measured/resync.md)
   */
  gapWaitMs?: number;
  /** Sent as `Authorization: Bearer` and as `token=` on the WebSocket URL. @default undefined */
  token?: string;
  /**
   * A file that keeps the last confirmed list. When the information center
   * cannot be reached at start, the list from this file is served (marked
   * `stale`) while the client keeps trying in the background.
   * @default undefined (no file)
   */
  cacheFile?: string;
  /** Delays between retries (reconnecting, keepalive retries, failed syncs). @default exponentialBackoff(): 200 ms doubling to 1.5 s, jittered */
  backoff?: BackoffOption;
  /**
   * Time between `{"action":"ping"}` messages. API Gateway drops connections
   * idle for 10 minutes; the ping also finds a connection that died silently
   * (within this + `pongTimeoutMs`; events missed meanwhile come back with the
   * next periodic sync). Each ping is two WebSocket messages and one Lambda
   * invocation on AWS. @default 300000
   */
  pingIntervalMs?: number;
  /** A PONG not received within this marks the connection dead. @default 10000 */
  pongTimeoutMs?: number;
  /** Timeout of each HTTP request and of the WebSocket handshake. @default 10000 */
  requestTimeoutMs?: number;
  /**
   * Age at which the connection is replaced, ahead of API Gateway's 2-hour
   * limit; 0–15% jitter is added, so by default it happens 100–115 minutes in.
   * @default 6000000
   */
  maxConnectionAgeMs?: number;
  /**
   * Identifies this run of the node. A restarted process registers a higher
   * one, which makes a still-running predecessor's keepalives fail with 409.
   * @default Date.now() when the client is constructed
   */
  incarnation?: number;
  /**
   * On SIGINT or SIGTERM, stop the client (a node deregisters, so peers see
   * it `down` with reason `deregistered` at once instead of after its lease),
   * then let the signal end the process as it would have — unless the
   * application listens for that signal itself, which then decides. Without
   * it, Ctrl-C ends the process before `stop()` (or `await using`) runs, and
   * peers learn of it only when the lease or the connection's grace runs out.
   * @default false
   */
  stopOnSignals?: boolean;
}

function invalid(message: string): RosterClientError {
  return new RosterClientError('VALIDATION_FAILED', message);
}

function checkUrl(value: string, name: string, schemes: string[]): void {
  let protocol: string | undefined;
  try {
    protocol = new URL(value).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol === undefined || !schemes.includes(protocol.slice(0, -1))) {
    throw invalid(`${name} must be ${/^h/.test(schemes[0] ?? '') ? 'an' : 'a'} ${schemes.map((s) => `${s}://`).join(' or ')} URL, not "${value}"`);
  }
}

/** The options a node's lease alone needs (RosterLease), checked as a RosterClient's are. */
export function checkLeaseOptions(options: { httpUrl: string; clusterId: string; nodeId: string; leaseSeconds?: number; metadata?: Record<string, string> }): void {
  if (!isValidId(options.clusterId)) throw invalid(`invalid clusterId "${options.clusterId}": ${ID_RULE}`);
  if (!isValidId(options.nodeId)) throw invalid(`invalid nodeId "${options.nodeId}": ${ID_RULE}`);
  checkCommon(options);
}

/** What a RosterClient's options and a RosterLease's share, after the ids. */
function checkCommon(options: { httpUrl: string; leaseSeconds?: number; metadata?: Record<string, string> }): void {
  const { leaseSeconds, metadata = {} } = options;
  if (leaseSeconds !== undefined && !isValidLease(leaseSeconds)) {
    throw invalid(`leaseSeconds must be a whole number from ${LEASE_MIN_SECONDS} to ${LEASE_MAX_SECONDS}, not ${leaseSeconds}`);
  }
  if (!Object.values(metadata).every((v) => typeof v === 'string')) throw invalid('metadata values must be strings');
  checkUrl(options.httpUrl, 'httpUrl', ['http', 'https']);
}

export function checkOptions(options: RosterClientOptions): void {
  const { clusterId, nodeId } = options;
  if (!isValidId(clusterId)) throw invalid(`invalid clusterId "${clusterId}": ${ID_RULE}`);
  if (nodeId !== undefined && !isValidId(nodeId)) throw invalid(`invalid nodeId "${nodeId}": ${ID_RULE}`);
  checkCommon(options);
  const { gapWaitMs } = options;
  if (gapWaitMs !== undefined && !(Number.isFinite(gapWaitMs) && gapWaitMs >= 0)) throw invalid(`gapWaitMs must be a number of milliseconds ≥ 0, not ${gapWaitMs}`);
  checkUrl(options.wsUrl, 'wsUrl', ['ws', 'wss']);
}
