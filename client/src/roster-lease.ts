/**
 * A node's registration and keepalives alone, without a WebSocket and
 * without a cache of the cluster: etcd3's `client.lease(ttl)`, Eureka's
 * register-and-renew. For a process that must be listed but does not need
 * the list (a batch worker announcing itself), or a host running thousands
 * of nodes that shares one list among them.
 *
 * ```ts
 * import { RosterLease } from '@roster/client';
 *
 * await using lease = new RosterLease({ httpUrl: 'http://127.0.0.1:4000', clusterId: 'backup', nodeId: 'node-1' });
 * lease.on('lost', (e) => console.error(`lease lost: ${e.reason}`));
 * await lease.start(); // registered; keepalives every lease/3 from now on
 * ```
 *
 * The keepalive loop, its retries and re-registration are the RosterClient's
 * own (`Lease`). What it gives up: a node without a bound connection is seen
 * down only when its lease runs out (lease + ~1.5 s), a crash included; a
 * RosterClient's node is seen down within ~3.5 s of a crash, by its
 * connection (docs/how-it-works/detection.md).
 */
import { EventEmitter } from 'node:events';
import { toBackoff, type BackoffOption } from './backoff.ts';
import { closedError, toClientError, type RosterClientError } from './errors.ts';
import { HttpClient } from './http-client.ts';
import { Lease } from './lease.ts';
import { checkLeaseOptions } from './options.ts';
import type { KeepaliveFailedEvent, KeepaliveRecoveredEvent, LostEvent } from './types.ts';

/** How long `stop()` waits for its deregistration. */
const DEREGISTER_TIMEOUT_MS = 5000;

export interface RosterLeaseOptions {
  /** Base URL of the HTTP API: the `HttpApiUrl` stack output, or `http://127.0.0.1:4000` locally. */
  httpUrl: string;
  clusterId: string;
  nodeId: string;
  /** Flat string metadata sent with the registration (at most 32 keys, 4 KiB). @default {} */
  metadata?: Record<string, string>;
  /** Lease in seconds (2–3600). @default the information center's default, 60 */
  leaseSeconds?: number;
  /** Time between keepalives. @default a third of the lease */
  keepaliveIntervalMs?: number;
  /** Sent as `Authorization: Bearer`. @default undefined */
  token?: string;
  /** Delays between keepalive retries. @default exponentialBackoff() */
  backoff?: BackoffOption;
  /** Timeout of each HTTP request. @default 10000 */
  requestTimeoutMs?: number;
  /** Identifies this run of the node (see RosterClientOptions.incarnation). @default Date.now() */
  incarnation?: number;
}

export interface RosterLeaseEvents {
  /** Recoverable: a keepalive (or the registration that replaces one) failed. */
  keepaliveFailed: [KeepaliveFailedEvent];
  /** A keepalive succeeded after failures. */
  keepaliveRecovered: [KeepaliveRecoveredEvent];
  /** The lease is gone: `expired` (recovers by itself), `superseded` or `unauthorized` (terminal). */
  lost: [LostEvent];
  /** `stop()` could not deregister the node (it will expire with its lease), and why. */
  warning: [RosterClientError];
  /**
   * The node was registered: `count` 1 at start; above 1, registered again
   * because the server no longer had it UP (a keepalive answered 404).
   */
  registered: [count: number];
}

export class RosterLease extends EventEmitter<RosterLeaseEvents> {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly incarnation: number;
  private readonly http: HttpClient;
  private readonly lease: Lease;
  private started: Promise<void> | undefined;
  private stopping: Promise<boolean> | undefined;

  constructor(options: RosterLeaseOptions) {
    super();
    checkLeaseOptions(options);
    const { clusterId, nodeId, leaseSeconds, metadata = {} } = options;
    this.clusterId = clusterId;
    this.nodeId = nodeId;
    this.incarnation = options.incarnation ?? Date.now();
    const http = (this.http = new HttpClient({ baseUrl: options.httpUrl, token: options.token, timeoutMs: options.requestTimeoutMs ?? 10_000 }));
    const incarnation = this.incarnation;
    this.lease = new Lease({
      transport: {
        register: () => http.register(clusterId, nodeId, { metadata, incarnation, ...(leaseSeconds === undefined ? {} : { leaseSeconds }) }),
        keepalive: (signal) => http.keepalive(clusterId, nodeId, incarnation, { signal }),
      },
      leaseSeconds,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      backoff: toBackoff(options.backoff),
    });
    this.lease.on('keepaliveFailed', (event) => this.emit('keepaliveFailed', event));
    this.lease.on('keepaliveRecovered', (event) => this.emit('keepaliveRecovered', event));
    this.lease.on('lost', (event) => this.emit('lost', event));
    this.lease.on('registered', (count) => this.emit('registered', count));
  }

  /**
   * Registers the node and starts its keepalives. Rejects, and keeps nothing
   * running, when the registration fails (`STALE_INCARNATION` when a newer
   * incarnation is registered). Calling it again returns the same promise.
   */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(closedError());
    this.started ??= this.lease.ensureRegistered().then(
      () => this.lease.start(),
      async (err: unknown) => {
        await this.lease.stop();
        throw toClientError(err);
      },
    );
    return this.started;
  }

  /** Whether the server holds this node's lease, as far as this client knows. */
  get registered(): boolean {
    return this.lease.registered && this.lease.state === 'running';
  }

  /**
   * Stops the keepalives and deregisters the node (peers see it `down`,
   * `deregistered`, at once), if it was registered. Resolves with whether it
   * deregistered; a failed one (`warning`) leaves the node to its lease.
   * With `deregister: false` the node is left UP until its lease runs out:
   * for handing it over to another client of the same incarnation (a
   * RosterClient that binds it), as etcd's keepalive can end without a revoke.
   */
  stop(options: { deregister?: boolean } = {}): Promise<boolean> {
    this.stopping ??= (async () => {
      // Waits for a registration in flight (a stop during start), so that one is deregistered too.
      await this.lease.stop();
      if (!this.lease.registered || options.deregister === false) return false;
      try {
        await this.http.deregister(this.clusterId, this.nodeId, this.incarnation, { timeoutMs: DEREGISTER_TIMEOUT_MS });
        return true;
      } catch (err) {
        // 409: a newer incarnation owns the node. Anything else (no answer, 5xx): the lease will run out.
        this.emit('warning', toClientError(err));
        return false;
      }
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    // Disposal never throws: a failed deregistration is the `warning` event.
    await this.stop();
  }
}

