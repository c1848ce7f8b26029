/**
 * The runtime's DynamoDB engine: the DynamoDB Local it starts (in memory, or
 * persisting to the data directory), or an endpoint the user already runs.
 * Light to import: `roster serve` starts it before the runtime's modules load.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startDynamoDbLocal } from './dynamodb-local.ts';

export interface Engine {
  endpoint: string;
  /** Settles when the DynamoDB Local this runtime started exits; never for an endpoint the user runs. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** Starts DynamoDB Local, or uses `endpoint` as it is. */
export async function startEngine(options: { endpoint?: string; dataDir?: string }): Promise<Engine> {
  if (options.endpoint) return { endpoint: options.endpoint, exited: new Promise(() => {}), stop: async () => {} };
  // DynamoDB Local runs in its package's folder: a relative data directory would land there.
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const ddb = await startDynamoDbLocal({ dataDir });
  const child: ChildProcess = ddb.process;
  // A process that exits without stop() (an uncaught error, process.exit) must not leave Java behind.
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? `code ${code}`)));
  return {
    endpoint: ddb.endpoint,
    exited,
    async stop() {
      await ddb.stop();
      process.off('exit', killOnExit);
    },
  };
}

