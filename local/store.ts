/**
 * The runtime's DynamoDB: the DynamoDB Local it starts (in memory, or
 * persisting to the data directory), or an endpoint the user already runs;
 * and in it the table, created as the template's `AWS::DynamoDB::Table` says
 * (`tableInputOf`): keys, indexes, stream and TTL attribute.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CreateTableCommandInput,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  type TableDescription,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { localOverrides } from '../functions/core/aws.ts';
import type { TableSpec } from './template/deployment.ts';
import { RuntimeStartError } from './errors.ts';
import type { RuntimeLog } from './log.ts';

/** How long a new table may take to become ACTIVE. */
const TABLE_ACTIVE_TIMEOUT_MS = 30_000;

export interface Store {
  dynamodb: DynamoDBClient;
  streams: DynamoDBStreamsClient;
  close(): void;
}

/** What the table is made of: the creation input and the TTL attribute. */
export interface TableShape {
  input: CreateTableCommandInput;
  ttlAttribute: string | undefined;
}

/**
 * The table of the template, as `CreateTable` takes it: the properties
 * CloudFormation passes on (keys, attribute definitions, global secondary
 * indexes, billing mode, stream), under the runtime's table name.
 */
export function tableShapeOf(spec: TableSpec): TableShape {
  const p = spec.properties as Record<string, unknown>;
  const stream = p.StreamSpecification as { StreamViewType?: string } | undefined;
  const ttl = p.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  const indexes = (p.GlobalSecondaryIndexes as Record<string, unknown>[] | undefined)?.map((i) => ({
    IndexName: i.IndexName,
    KeySchema: i.KeySchema,
    Projection: i.Projection,
  }));
  const input = {
    TableName: spec.name,
    KeySchema: p.KeySchema,
    AttributeDefinitions: p.AttributeDefinitions,
    BillingMode: (p.BillingMode as string | undefined) ?? 'PROVISIONED',
    ...(indexes ? { GlobalSecondaryIndexes: indexes } : {}),
    ...(stream?.StreamViewType ? { StreamSpecification: { StreamEnabled: true, StreamViewType: stream.StreamViewType } } : {}),
  } as CreateTableCommandInput;
  return { input, ttlAttribute: ttl?.Enabled ? ttl.AttributeName : undefined };
}

/** The runtime's own clients of `endpoint` (the handlers build theirs), with the table ready in it. */
export async function openStore(endpoint: string, shape: TableShape, log: RuntimeLog): Promise<Store> {
  const dynamodb = new DynamoDBClient({ ...localOverrides(endpoint), maxAttempts: 3 });
  const streams = new DynamoDBStreamsClient({ ...localOverrides(endpoint), maxAttempts: 3 });
  const close = () => {
    dynamodb.destroy();
    streams.destroy();
  };
  try {
    await ensureTable(dynamodb, shape, log);
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

async function createTable(client: DynamoDBClient, shape: TableShape, log: RuntimeLog): Promise<TableDescription> {
  const tableName = shape.input.TableName as string;
  try {
    await client.send(new CreateTableCommand(shape.input));
    log.info(`created table ${tableName}`);
  } catch (err) {
    if ((err as Error).name !== 'ResourceInUseException') throw err;
  }
  const deadline = Date.now() + TABLE_ACTIVE_TIMEOUT_MS;
  let table = await describeTable(client, tableName);
  while (table?.TableStatus !== 'ACTIVE') {
    if (Date.now() > deadline) throw new RuntimeStartError(`table ${tableName} did not become ACTIVE within ${TABLE_ACTIVE_TIMEOUT_MS / 1000} s`);
    await sleep(100);
    table = await describeTable(client, tableName);
  }
  // TTL is garbage collection only; an engine without TTL support is fine.
  if (shape.ttlAttribute) {
    await client
      .send(new UpdateTimeToLiveCommand({ TableName: tableName, TimeToLiveSpecification: { AttributeName: shape.ttlAttribute, Enabled: true } }))
      .catch((err: unknown) => log.debug('could not enable TTL (fine for a local engine)', { error: err as Error }));
  }
  return table;
}

/** Creates the table if it is missing, and checks an existing one has the template's stream and indexes. */
export async function ensureTable(client: DynamoDBClient, shape: TableShape, log: RuntimeLog): Promise<void> {
  const tableName = shape.input.TableName as string;
  const table = (await describeTable(client, tableName)) ?? (await createTable(client, shape, log));
  const problems: string[] = [];
  const wantStream = shape.input.StreamSpecification?.StreamViewType;
  const stream = table.StreamSpecification;
  if (wantStream && (!stream?.StreamEnabled || !table.LatestStreamArn)) problems.push(`a ${wantStream} stream`);
  else if (wantStream && stream?.StreamViewType !== wantStream) problems.push(`a ${wantStream} stream (it has ${stream?.StreamViewType})`);
  for (const want of shape.input.GlobalSecondaryIndexes ?? []) {
    const index = table.GlobalSecondaryIndexes?.find((i) => i.IndexName === want.IndexName);
    const keys = (k: { AttributeName?: string; KeyType?: string }[] | undefined) => JSON.stringify(k?.map((x) => [x.AttributeName, x.KeyType]));
    if (!index) problems.push(`the ${want.IndexName} index`);
    else if (keys(index.KeySchema) !== keys(want.KeySchema)) problems.push(`the ${want.IndexName} index keyed as the template says`);
  }
  if (problems.length > 0) {
    throw new RuntimeStartError(`table ${tableName} exists but lacks ${problems.join(' and ')}; delete it or choose another with --table`);
  }
}
