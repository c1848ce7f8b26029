/**
 * The information center of a robustness run, and its faults: DynamoDB Local
 * persisting to a data directory on a fixed port (paused with SIGSTOP,
 * killed and restarted on the same data), and the local runtime as a real
 * process on a fixed port using it (killed and restarted), started with
 * `--fault-injection` so its sweeper and stream poller can be stalled and
 * its `@connections` endpoint made to fail (local/faults.ts).
 *
 * The runtime is given the store with `--dynamodb-endpoint` rather than
 * `--data-dir`: a runtime that started DynamoDB Local itself stops when its
 * store dies (by design: it cannot work without it), and here the store must
 * die and come back under a running runtime.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { freePort, startDynamoDbLocal, type DynamoDbLocal } from '../local/dynamodb-local.ts';
import { spawnRuntime, type SpawnedRuntime } from '../local/spawn.ts';
import type { FaultPart } from '../local/faults.ts';
import { track } from './processes.ts';

export interface CenterSettings {
  dataDir: string;
  sweepIntervalSeconds: number;
  disconnectGraceSeconds: number;
  pollIntervalMs: number;
}

const TABLE = 'roster-robustness';
const RETRY_MS = 500;
const START_ATTEMPTS = 20;

export class Center {
  private store: DynamoDbLocal | undefined;
  private runtime: SpawnedRuntime | undefined;
  private faultsUrl: string | undefined;
  private storePaused = false;

  private constructor(
    private readonly settings: CenterSettings,
    readonly storePort: number,
    /** The runtime's port, the same across restarts (clients keep their URLs). */
    public port: number,
  ) {}

  static async start(settings: CenterSettings): Promise<Center> {
    await mkdir(settings.dataDir, { recursive: true });
    const center = new Center(settings, await freePort(), 0);
    await center.startStore();
    await center.startRuntime();
    return center;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** The store's endpoint: the same across restarts. */
  get storeEndpoint(): string {
    return `http://127.0.0.1:${this.storePort}`;
  }

  get tableName(): string {
    return TABLE;
  }

  get runtimeUp(): boolean {
    return this.runtime !== undefined;
  }

  get storeUp(): boolean {
    return this.store !== undefined && !this.storePaused;
  }

  /** The runtime's output so far (for diagnostics). */
  runtimeOutput(): string {
    return this.runtime?.output() ?? '';
  }

  async startStore(): Promise<void> {
    if (this.store) return;
    this.store = await retry(() => startDynamoDbLocal({ dataDir: this.settings.dataDir, port: this.storePort }));
    track(this.store.process as ChildProcess);
  }

  pauseStore(): boolean {
    if (!this.store || this.storePaused) return false;
    this.store.process.kill('SIGSTOP');
    this.storePaused = true;
    return true;
  }

  resumeStore(): boolean {
    if (!this.store || !this.storePaused) return false;
    this.store.process.kill('SIGCONT');
    this.storePaused = false;
    return true;
  }

  async killStore(): Promise<boolean> {
    const store = this.store;
    if (!store) return false;
    this.store = undefined;
    this.storePaused = false;
    const exited = new Promise((resolve) => store.process.once('exit', resolve));
    store.process.kill('SIGKILL');
    await exited;
    return true;
  }

  async startRuntime(): Promise<void> {
    if (this.runtime || !this.store) return;
    const runtime = await retry(() =>
      spawnRuntime({
        port: this.port,
        dynamodbEndpoint: this.store?.endpoint ?? `http://127.0.0.1:${this.storePort}`,
        sweepInterval: this.settings.sweepIntervalSeconds,
        disconnectGrace: this.settings.disconnectGraceSeconds,
        extraArgs: ['--table', TABLE, '--fault-injection', '--poll-interval-ms', String(this.settings.pollIntervalMs)],
      }),
    );
    track(runtime.process);
    this.runtime = runtime;
    this.port = runtime.port;
    const match = /^Faults {4}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(runtime.output());
    this.faultsUrl = match?.[1];
  }

  async killRuntime(): Promise<boolean> {
    const runtime = this.runtime;
    if (!runtime) return false;
    this.runtime = undefined;
    this.faultsUrl = undefined;
    await runtime.stop('SIGKILL');
    return true;
  }

  /** Starts (`forMs` > 0) or ends a fault of the runtime's parts; false when the runtime is down. */
  async fault(part: FaultPart, forMs: number): Promise<boolean> {
    if (!this.faultsUrl) return false;
    try {
      const res = await fetch(`${this.faultsUrl}/faults/${part}`, {
        method: forMs > 0 ? 'PUT' : 'DELETE',
        body: forMs > 0 ? JSON.stringify({ forMs }) : undefined,
        signal: AbortSignal.timeout(5000),
      });
      return res.status === 204;
    } catch {
      return false;
    }
  }

  /** Everything back up: the store resumed or restarted, the runtime restarted, no fault left. */
  async heal(): Promise<void> {
    this.resumeStore();
    await this.startStore();
    await this.startRuntime();
    for (const part of ['sweeper', 'poller', 'posts'] as const) await this.fault(part, 0);
  }

  async stop(): Promise<void> {
    this.resumeStore();
    await this.runtime?.stop('SIGTERM');
    this.runtime = undefined;
    await this.store?.stop();
    this.store = undefined;
  }
}

/** Retries a start-up that can fail while another part is down or a port is still held. */
async function retry<T>(start: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    try {
      return await start();
    } catch (err) {
      last = err;
      await sleep(RETRY_MS);
    }
  }
  throw new Error(`could not start after ${START_ATTEMPTS} attempts: ${last instanceof Error ? last.message : String(last)}`, { cause: last });
}
