/**
 * Spawns the local runtime (`roster serve`) as a real child process, waits
 * until it prints its two ready lines, and stops it again. The tests
 * (test/support/runtime.ts) and `roster bench` share it.
 *
 * With `dynamodbEndpoint` (e.g. `inject('dynamodbEndpoint')`, the DynamoDB
 * Local the vitest global setup shares) the runtime skips starting its own and
 * gets a table of its own (unless `--table` is in `extraArgs`), which saves
 * the JVM start-up. Every runtime still alive when the test process exits is
 * killed, so a failed test or bench never leaves one behind; still, call
 * `stop()` (in `afterAll`, or a `finally`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export interface SpawnRuntimeOptions {
  /** @default 0 (a free port) */
  port?: number;
  dataDir?: string;
  dynamodbEndpoint?: string;
  /** Seconds. */
  sweepInterval?: number;
  /** Seconds. */
  disconnectGrace?: number;
  /** Seconds. */
  defaultLease?: number;
  /** More flags for `roster serve`, e.g. `['--verbose']` or `['--table', 'mine']`. */
  extraArgs?: string[];
  /** How long to wait for the ready lines. @default 60000 */
  readyTimeoutMs?: number;
  /** Extra environment for the child. */
  env?: Record<string, string | undefined>;
}

export interface SpawnedRuntime {
  httpUrl: string;
  /** Time from spawning the process to its ready lines. */
  readyMs: number;
  wsUrl: string;
  port: number;
  process: ChildProcess;
  /** Everything the runtime wrote to stdout and stderr so far. */
  output(): string;
  /** Sends `signal` (default SIGTERM), waits for the exit (SIGKILL after 20 s) and returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** `roster serve`: the runtime as `npm start` runs it (from the bundle when there is one, bin/bundle.js). */
const SERVE = ['bin/roster.js', 'serve'];
const STOP_TIMEOUT_MS = 20_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // SIGTERM, not SIGKILL: the runtime then still stops the DynamoDB Local it started.
  process.once('exit', () => {
    for (const child of live) child.kill('SIGTERM');
  });
}

/** The argument list `spawnRuntime` passes to `roster serve`. */
export function runtimeArgs(options: SpawnRuntimeOptions): string[] {
  const args = ['--port', String(options.port ?? 0)];
  if (options.dataDir !== undefined) args.push('--data-dir', options.dataDir);
  if (options.dynamodbEndpoint !== undefined) {
    args.push('--dynamodb-endpoint', options.dynamodbEndpoint);
    if (!options.extraArgs?.includes('--table')) args.push('--table', `roster-rt-${randomUUID().slice(0, 8)}`);
  }
  if (options.sweepInterval !== undefined) args.push('--sweep-interval', String(options.sweepInterval));
  if (options.disconnectGrace !== undefined) args.push('--disconnect-grace', String(options.disconnectGrace));
  if (options.defaultLease !== undefined) args.push('--default-lease', String(options.defaultLease));
  args.push(...(options.extraArgs ?? []));
  return args;
}

function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function spawnRuntime(options: SpawnRuntimeOptions = {}): Promise<SpawnedRuntime> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...SERVE, ...runtimeArgs(options)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  killAllOnExit();
  child.once('exit', () => live.delete(child));

  let out = '';
  let stdout = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (out += d));

  const exited = waitForExit(child);
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const force = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      return await exited;
    } finally {
      clearTimeout(force);
    }
  };

  const timeoutMs = options.readyTimeoutMs ?? 60_000;
  try {
    const urls = await new Promise<{ httpUrl: string; wsUrl: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the runtime was not ready within ${timeoutMs} ms`)), timeoutMs);
      child.stdout?.on('data', (d: string) => {
        out += d;
        stdout += d;
        const http = /^HTTP API {2}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
        const ws = /^WebSocket (ws:\/\/127\.0\.0\.1:\d+\/ws)$/m.exec(stdout);
        if (http?.[1] && ws?.[1]) {
          clearTimeout(timer);
          resolve({ httpUrl: http[1], wsUrl: ws[1] });
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the runtime exited with code ${code} before it was ready`));
      });
    });
    return {
      ...urls,
      readyMs: performance.now() - spawnedAt,
      port: Number(new URL(urls.httpUrl).port),
      process: child,
      output: () => out,
      stop,
    };
  } catch (err) {
    await stop('SIGTERM');
    throw new Error(`${(err as Error).message}\n--- runtime output ---\n${out}`, { cause: err });
  }
}
