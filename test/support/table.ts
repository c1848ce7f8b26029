/**
 * A fresh table per test file in the shared DynamoDB Local, and the
 * environment the handlers read their configuration from.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ScanCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { createDocumentClient, localOverrides } from '../../functions/core/aws.ts';
import { readConfig, type Config } from '../../functions/core/config.ts';
import type { Deps } from '../../functions/core/deps.ts';
import { createTableInput } from '../../functions/core/table.ts';

export interface TestTable {
  tableName: string;
  endpoint: string;
  config: Config;
  deps: Deps;
  db: DynamoDBDocumentClient;
  /** Every item in the table, sorted, for "nothing changed" assertions. */
  snapshot(): Promise<Record<string, unknown>[]>;
}

export async function createTestTable(env: Record<string, string> = {}): Promise<TestTable> {
  const endpoint = inject('dynamodbEndpoint');
  const tableName = `roster-test-${randomUUID().slice(0, 8)}`;
  const raw = new DynamoDBClient(localOverrides(endpoint));
  await raw.send(new CreateTableCommand(createTableInput(tableName)));
  raw.destroy();
  // Auth off unless a test asks for it: these tests are about the handlers' behaviour; test/auth covers access.
  const fullEnv = { TABLE_NAME: tableName, DYNAMODB_ENDPOINT: endpoint, ROSTER_AUTH: 'off', ...env };
  // Handlers read their configuration from the environment at first use, as on Lambda.
  Object.assign(process.env, fullEnv);
  const config = readConfig(fullEnv);
  const db = createDocumentClient(config);
  return {
    tableName,
    endpoint,
    config,
    db,
    deps: { db, config, now: Date.now },
    snapshot: () => scanTable(db, tableName),
  };
}

/** Every item of a table (a consistent scan), sorted by key: for "nothing changed" assertions. */
export async function scanTable(db: DynamoDBDocumentClient, tableName: string): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await db.send(new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: startKey }));
    items.push(...(out.Items ?? []));
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return items.sort((a, b) => `${String(a.pk)}|${String(a.sk)}`.localeCompare(`${String(b.pk)}|${String(b.sk)}`));
}
