/**
 * Fault: the fan-out cannot reach some subscribers. End to end through the
 * real parts — DynamoDB Local's stream, the local poller (Lambda's event
 * source mapping), the fan-out core with its real signed `@connections` poster,
 * and the local `@connections` endpoint over HTTP — with the fault injected
 * where a real one happens: the endpoint answers 500 for chosen connections.
 *
 * The unit tests cover each half with a stand-in for the other
 * (test/handlers/fanout-failures.test.ts: the fan-out's batch item failures;
 * test/local/stream-poller.test.ts: the poller's retries with a scripted
 * handler); this checks that they fit: the sequence number the fan-out
 * reports is where the poller resumes, the failed records are delivered once
 * the fault clears (in order, at least once), and a record that never gets
 * through goes to the failure destination (its batch, discarded whole after
 * the retries, as Lambda does) without holding up the stream.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createManagementClient, localOverrides } from '../../functions/core/aws.ts';
import { connect } from '../../functions/core/subscriptions.ts';
import { posterFor } from '../../functions/core/poster.ts';
import { fanOut, type FanoutDeps } from '../../functions/core/fanout.ts';
import { register } from '../../functions/core/registry.ts';
import { FANOUT_FILTER_PATTERNS } from '../../functions/core/stream-filter.ts';
import { startManagementApi, type ManagementApi } from '../../local/management-api.ts';
import { StreamPoller, sdkStreamsApi, type StreamFailure } from '../../local/stream-poller.ts';
import { createTestTable, type TestTable } from '../support/table.ts';
import { eventually } from '../support/wait.ts';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let table: TestTable;
let management: ManagementApi;
let poller: StreamPoller | undefined;
let dynamodb: DynamoDBClient;
let streams: DynamoDBStreamsClient;
/** Connections the endpoint answers 500 for. */
const failing = new Set<string>();
/** Posts the endpoint failed, per connection. */
const refused = new Map<string, number>();
/** What each connection received, in order: `${nodeId}@${revision}`. */
const received = new Map<string, string[]>();
const failures: StreamFailure[] = [];

beforeAll(async () => {
  table = await createTestTable();
  management = await startManagementApi(
    {
      post: (connectionId, data) => {
        if (failing.has(connectionId)) {
          refused.set(connectionId, (refused.get(connectionId) ?? 0) + 1);
          return Promise.reject(new Error('injected fault'));
        }
        const event = JSON.parse(data.toString()) as { node: { nodeId: string }; revision: number };
        received.set(connectionId, [...(received.get(connectionId) ?? []), `${event.node.nodeId}@${event.revision}`]);
        return Promise.resolve('delivered');
      },
      info: () => undefined,
      disconnect: () => false,
    },
    quiet,
  );
  const deps: FanoutDeps = { ...table.deps, poster: posterFor(createManagementClient(management.url, true), management.url) };
  dynamodb = new DynamoDBClient(localOverrides(table.endpoint));
  streams = new DynamoDBStreamsClient(localOverrides(table.endpoint));
  poller = new StreamPoller({
    tableName: table.tableName,
    api: sdkStreamsApi(dynamodb, streams),
    handler: async (event): Promise<DynamoDBBatchResponse> => ({ batchItemFailures: (await fanOut(deps, event.Records)).batchItemFailures }),
    filterPatterns: FANOUT_FILTER_PATTERNS,
    pollIntervalMs: 50,
    maxRetryAttempts: 3,
    retryBaseDelayMs: 200,
    onFailure: (failure) => void failures.push(failure),
    log: quiet,
  });
  await poller.start();
});

afterAll(async () => {
  await poller?.stop();
  await management?.close();
  dynamodb?.destroy();
  streams?.destroy();
});

const seen = (connectionId: string): string[] => received.get(connectionId) ?? [];

test('records that failed for some subscribers are retried and delivered once the fault clears; a poison record goes to the failure destination and the stream moves on', { timeout: 60_000 }, async () => {
  const deps = table.deps;
  await connect(deps, 'ok-1', { clusterId: 'a' });
  await connect(deps, 'flaky-1', { clusterId: 'a' });
  await connect(deps, 'dead-1', { clusterId: 'b' });

  // Part 1: a transient fault on one of two subscribers of cluster a.
  failing.add('flaky-1');
  const n1 = (await register(deps, 'a', 'n1', {})).node;
  const n2 = (await register(deps, 'a', 'n2', {})).node;
  const want = [`n1@${n1.revision}`, `n2@${n2.revision}`];
  // The healthy subscriber gets n1 while the batch fails at n1 for the other (n2 waits behind it, in order).
  await eventually(() => seen('ok-1').includes(want[0] as string), 10_000, () => `ok-1 saw ${seen('ok-1').join(', ')}`);
  expect(seen('flaky-1')).toEqual([]);
  // The fault clears after the first delivery and one retry failed, well within the retries (200, 400, 800 ms apart).
  await eventually(() => (refused.get('flaky-1') ?? 0) >= 2, 10_000, () => `${refused.get('flaky-1') ?? 0} refused posts to flaky-1`);
  failing.delete('flaky-1');
  await eventually(() => want.every((w) => seen('flaky-1').includes(w)), 10_000, () => `flaky-1 saw ${seen('flaky-1').join(', ')}`);
  await eventually(() => want.every((w) => seen('ok-1').includes(w)), 10_000, () => `ok-1 saw ${seen('ok-1').join(', ')}`);
  // In order, and at least once: a retried record may reach the healthy subscriber again, never out of order.
  expect([...new Set(seen('flaky-1'))]).toEqual(want);
  expect([...new Set(seen('ok-1'))]).toEqual(want);
  expect(failures).toEqual([]);

  // Part 2: a poison record — cluster b's only subscriber never answers — then more events behind it.
  failing.add('dead-1');
  const poison = await register(deps, 'b', 'm1', {});
  // n3 is written once the poison record's batch was formed (its first delivery failed), so it is not in that batch:
  // Lambda discards a batch that exhausts its retries whole, with every record after the failed one in it.
  await eventually(() => (refused.get('dead-1') ?? 0) >= 1, 10_000, () => 'no post to dead-1 yet');
  const n3 = (await register(deps, 'a', 'n3', {})).node;
  await eventually(() => failures.length === 1, 15_000, () => `${failures.length} batches in the failure destination`);
  const [failure] = failures;
  expect(failure?.requestContext).toMatchObject({ condition: 'RetryAttemptsExhausted', approximateInvokeCount: 4 });
  expect(failure?.DDBStreamBatchInfo.batchSize).toBe(1);
  expect(failure?.records.map((r) => r.dynamodb?.NewImage?.nodeId)).toEqual([{ S: 'm1' }]);
  expect(failure?.records[0]?.dynamodb?.NewImage?.revision).toEqual({ N: String(poison.node.revision) });
  // The stream did not stop at the poison record: the next event reaches cluster a.
  await eventually(() => seen('ok-1').includes(`n3@${n3.revision}`) && seen('flaky-1').includes(`n3@${n3.revision}`), 10_000, () => `ok-1 saw ${seen('ok-1').join(', ')}`);
  expect(seen('dead-1')).toEqual([]);
  expect(failures).toHaveLength(1);
});
