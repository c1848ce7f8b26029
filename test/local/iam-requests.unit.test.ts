/**
 * What the local runtime's IAM gate asks IAM for each DynamoDB request
 * (local/iam/requests.ts), read from the request the real SDK builds: a
 * transaction is authorized as its actions' item operations
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html),
 * not as a `dynamodb:TransactWriteItems` action IAM does not have.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { HttpRequest } from '@smithy/types';
import { expect, test } from 'vitest';
import { awsCallOf } from '../../local/iam/requests.ts';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const TABLE_ARN = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/roster`;

/** The signed HTTP request the SDK would send for `command` (captured, never sent). */
async function requestOf(command: UpdateCommand | TransactWriteCommand): Promise<HttpRequest> {
  let captured: HttpRequest | undefined;
  const client = new DynamoDBClient({
    region: REGION,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestHandler: {
      handle: async (request: HttpRequest) => {
        captured = request;
        throw new Error('captured');
      },
    },
    maxAttempts: 1,
  });
  await expect(DynamoDBDocumentClient.from(client).send(command as never)).rejects.toThrow('captured');
  client.destroy();
  if (!captured) throw new Error('no request was built');
  return captured;
}

const update = (sk: string) => ({
  TableName: 'roster',
  Key: { pk: 'C#a', sk },
  UpdateExpression: 'SET #s = :down',
  ConditionExpression: '#s = :up',
  ExpressionAttributeNames: { '#s': 'status' },
  ExpressionAttributeValues: { ':down': 'DOWN', ':up': 'UP' },
});

test('an UpdateItem is dynamodb:UpdateItem on its table', async () => {
  const call = awsCallOf(await requestOf(new UpdateCommand(update('N#1'))), REGION, ACCOUNT);
  expect(call).toEqual({ service: 'dynamodb', checks: [{ action: 'dynamodb:UpdateItem', resource: TABLE_ARN }] });
});

test('a TransactWriteItems is each action as its item operation, with the enclosing operation as a condition key', async () => {
  const command = new TransactWriteCommand({
    TransactItems: [{ Update: update('N#1') }, { Update: update('N#2') }, { ConditionCheck: { TableName: 'roster', Key: { pk: 'C#a', sk: 'META' }, ConditionExpression: 'attribute_exists(pk)' } }],
  });
  const call = awsCallOf(await requestOf(command), REGION, ACCOUNT);
  const context = { 'dynamodb:EnclosingOperation': 'TransactWriteItems' };
  expect(call?.checks).toEqual([
    { action: 'dynamodb:UpdateItem', resource: TABLE_ARN, context },
    { action: 'dynamodb:UpdateItem', resource: TABLE_ARN, context },
    { action: 'dynamodb:ConditionCheckItem', resource: TABLE_ARN, context },
  ]);
  expect(call?.checks.map((c) => c.action)).not.toContain('dynamodb:TransactWriteItems');
});
