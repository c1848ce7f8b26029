/**
 * The runtime's DynamoDB: the DynamoDB Local it starts (in memory, or
 * persisting to the data directory), or an endpoint the user already runs;
 * and in it the table, created from `createTableInput` as the stack creates it.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { localOverrides } from '../functions/core/aws.ts';
import { TABLE_SHAPE, createTableInput } from '../functions/core/table.ts';
import { startDynamoDbLocal } from './dynamodb-local.ts';
import { RuntimeStartError } from './errors.ts';
import type { RuntimeLog } from './log.ts';

/** How long a new table may take to become ACTIVE. */
const TABLE_ACTIVE_TIMEOUT_MS = 30_000;

export interface Engine {
  endpoint: string;
  /** Settles when the DynamoDB Local this runtime started exits; never for an endpoint the user runs. */
  exited: Promise<string>;
  stop(): Promise<void>;
}

/** Starts DynamoDB Local, or uses `endpoint` as it is. */
export async function startEngine(options: { endpoint?: string; dataDir?: string }): Promise<Engine> {
  if (options.endpoint) return { endpoint: options.endpoint, exited: new Promise(() => {}), stop: async () => {} };
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  const ddb = await startDynamoDbLocal({ dataDir: options.dataDir });
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

export interface Store {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  close(): void;
}

/** The runtime's own clients of `endpoint` (the handlers build theirs), with `tableName` ready in it. */
export async function openStore(endpoint: string, tableName: string, log: RuntimeLog): Promise<Store> {
  const dynamodb = new DynamoDBClient({ ...localOverrides(endpoint), maxAttempts: 3 });
  const streams = new DynamoDBStreamsClient({ ...localOverrides(endpoint), maxAttempts: 3 });
  const close = () => {
    dynamodb.destroy();
    streams.destroy();
  };
  try {
    await ensureTable(dynamodb, tableName, log);
  } catch (err) {
    close();
    if (err instanceof RuntimeStartError) throw err;
    throw new RuntimeStartError(`could not use DynamoDB at ${endpoint}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  return { dynamodb, streams, close };
}

async function describeTable(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

async function createTable(client: DynamoDBClient, tableName: string, log: RuntimeLog): Promise<TableDescription> {
  try {
    await client.send(new CreateTableCommand(createTableInput(tableName)));
    log.info(`created table ${tableName}`);
  } catch (err) {
    if ((err as Error).name !== 'ResourceInUseException') throw err;
  }
  const deadline = Date.now() + TABLE_ACTIVE_TIMEOUT_MS;
  let table = await describeTable(client, tableName);
  while (table?.TableStatus !== 'ACTIVE') {
    if (Date.now() > deadline) throw new RuntimeStartError(`table ${tableName} did not become ACTIVE within ${TABLE_ACTIVE_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
    table = await describeTable(client, tableName);
  }
  // TTL is garbage collection only; an engine without TTL support is fine.
  await client
    .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: TABLE_SHAPE.ttlAttribute, Enabled: true } }))
    .catch((err: unknown) => log.debug('could not enable TTL (fine for a local engine)', { error: err as Error }));
  return table;
}

/** Creates the table from `createTableInput` if it is missing, and checks an existing one has what Roster needs. */
export async function ensureTable(client: DynamoDBClient, tableName: string, log: RuntimeLog): Promise<void> {
  const table = (await describeTable(client, tableName)) ?? (await createTable(client, tableName, log));
  const problems: string[] = [];
  const stream = table.StreamSpecification;
  if (!stream?.StreamEnabled || !table.LatestStreamArn) problems.push(`a ${TABLE_SHAPE.streamViewType} stream`);
  else if (stream.StreamViewType !== TABLE_SHAPE.streamViewType) problems.push(`a ${TABLE_SHAPE.streamViewType} stream (it has ${stream.StreamViewType})`);
  const index = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === TABLE_SHAPE.expiryIndex.name);
  if (!index) problems.push(`the ${TABLE_SHAPE.expiryIndex.name} index`);
  // A table from before the index was keyed by the announced deadline (sweepAt) cannot be swept.
  else if (!index.KeySchema?.some((k) => k.KeyType === 'RANGE' && k.AttributeName === TABLE_SHAPE.expiryIndex.sortKey)) {
    problems.push(`the ${TABLE_SHAPE.expiryIndex.name} index sorted by ${TABLE_SHAPE.expiryIndex.sortKey}`);
  }
  if (problems.length > 0) {
    throw new RuntimeStartError(`table ${tableName} exists but lacks ${problems.join(' and ')}; delete it or choose another with --table`);
  }
}
