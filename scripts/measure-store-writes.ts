/**
 * DynamoDB Local's own time for a storm's downs, with nothing of Roster
 * around them: 1,000 conditional UpdateItems of one partition sent straight
 * from the SDK, 32 in flight (as the sweeper sent them before it used
 * transactions), then the same as ten TransactWriteItems of 100, in
 * parallel and one after another. The
 * baseline beside `scripts/measure-sweep.ts` (docs/measured/sweep.md).
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-store-writes.ts
 */
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createDocumentClient } from '../functions/core/aws.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';

const TABLE = 'store-writes';
const N = 1000;
const SINGLE_WRITES_IN_FLIGHT = 32;
const ddb = await startDynamoDbLocal({});
try {
  const db = createDocumentClient({ dynamodbEndpoint: ddb.endpoint });
  await db.send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  const ids = Array.from({ length: N }, (_, i) => `N#${String(i).padStart(5, '0')}`);
  for (let i = 0; i < N; i += 25) {
    await db.send(new BatchWriteCommand({ RequestItems: { [TABLE]: ids.slice(i, i + 25).map((sk) => ({ PutRequest: { Item: { pk: 'C#a', sk, status: 'UP', expiresAt: 1 } } })) } }));
  }
  // The DOWN write's shape: conditional on the status and on the lease being past.
  const update = (sk: string, to: 'UP' | 'DOWN') => ({
    TableName: TABLE,
    Key: { pk: 'C#a', sk },
    UpdateExpression: 'SET #s = :to',
    ConditionExpression: '#s = :from AND expiresAt < :now',
    ExpressionAttributeNames: { '#s': 'status' },
    ExpressionAttributeValues: { ':to': to, ':from': to === 'DOWN' ? 'UP' : 'DOWN', ':now': 5 },
  });
  const timed = async (what: string, fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    console.log(`${what}: ${Math.round(performance.now() - t)} ms`);
  };
  const chunks = Array.from({ length: N / 100 }, (_, i) => ids.slice(i * 100, i * 100 + 100));
  await timed(`${N} UpdateItems, ${SINGLE_WRITES_IN_FLIGHT} in flight`, () => mapLimit(ids, SINGLE_WRITES_IN_FLIGHT, (sk) => db.send(new UpdateCommand(update(sk, 'DOWN')))));
  await timed(`${chunks.length} TransactWriteItems of 100, all in flight`, () => mapLimit(chunks, chunks.length, (c) => db.send(new TransactWriteCommand({ TransactItems: c.map((sk) => ({ Update: update(sk, 'UP') })) }))));
  await timed(`${chunks.length} TransactWriteItems of 100, one after another`, async () => {
    for (const c of chunks) await db.send(new TransactWriteCommand({ TransactItems: c.map((sk) => ({ Update: update(sk, 'DOWN') })) }));
  });
} finally {
  await ddb.stop();
}
