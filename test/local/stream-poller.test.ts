/**
 * The stream poller against DynamoDB Local's real DynamoDB Streams API:
 * each setting of Lambda's event source mapping it applies (starting
 * position, filter criteria, batch size and window, partial batch failures
 * and their switch, retries with whole-batch discards to the on-failure
 * destination, bisect on error, maximum record age), iterator expiry and a
 * recreated table. Faults DynamoDB Local cannot produce on demand are injected at the
 * `StreamsApi` seam around the real client (an expired iterator), and a shard
 * rollover, which DynamoDB Local never does, uses a scripted stream.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient, type _Record } from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from 'vitest';
import { localOverrides } from '../../functions/core/aws.ts';
import { FANOUT_FILTER_PATTERNS } from '../../functions/core/stream-filter.ts';
import { createTableInput } from '../../functions/core/table.ts';
import { StreamPoller, sdkStreamsApi, type StreamFailure, type StreamPollerOptions, type StreamsApi } from '../../local/stream-poller.ts';
import { eventually } from '../support/wait.ts';

let dynamodb: DynamoDBClient;
let streams: DynamoDBStreamsClient;
let doc: DynamoDBDocumentClient;
const pollers: StreamPoller[] = [];

beforeAll(() => {
  const overrides = localOverrides(inject('dynamodbEndpoint'));
  dynamodb = new DynamoDBClient(overrides);
  streams = new DynamoDBStreamsClient(overrides);
  doc = DynamoDBDocumentClient.from(dynamodb);
});

afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
  logged.length = 0;
});

afterAll(() => {
  doc.destroy();
  streams.destroy();
});

async function newTable(): Promise<string> {
  const name = `poller-${randomUUID().slice(0, 8)}`;
  await dynamodb.send(new CreateTableCommand(createTableInput(name)));
  return name;
}

/** A write the fan-out filter passes (`ev` set), or, with `event: false`, one it filters out (like a keepalive). */
async function put(table: string, n: number, event = true): Promise<void> {
  await doc.send(new PutCommand({ TableName: table, Item: { pk: `C#x`, sk: `N#${n}`, n, ...(event ? { ev: 'NODE_REGISTERED' } : {}) } }));
}

const nOf = (r: DynamoDBRecord): number => Number(r.dynamodb?.NewImage?.n?.N);
const seqOf = (r: DynamoDBRecord): string => r.dynamodb?.SequenceNumber ?? '';

/** The poller's log lines, shown when a wait times out. */
const logged: string[] = [];
const log = {
  debug: () => {},
  info: (m: string) => void logged.push(`info: ${m}`),
  warn: (m: string, d?: Record<string, unknown>) => void logged.push(`warn: ${m} ${d?.error instanceof Error ? d.error.message : ''}`),
  error: (m: string, d?: Record<string, unknown>) => void logged.push(`error: ${m} ${d?.error instanceof Error ? d.error.message : ''}`),
};

/** What `until` shows when a wait times out: the pollers' stats and log. */
const diagnostics = (what: string) => () => `${what}; poller stats: ${pollers.map((p) => JSON.stringify(p.stats())).join('; ')}; log:\n${logged.join('\n')}`;

/** Waits for `condition`; a timeout shows the pollers' state. */
const until = (condition: () => boolean, timeoutMs: number, what: string): Promise<boolean> => eventually(condition, timeoutMs, diagnostics(what));

async function startPoller(options: Partial<StreamPollerOptions> & Pick<StreamPollerOptions, 'tableName' | 'handler'>): Promise<StreamPoller> {
  const poller = new StreamPoller({
    api: sdkStreamsApi(dynamodb, streams),
    filterPatterns: FANOUT_FILTER_PATTERNS,
    pollIntervalMs: 20,
    retryBaseDelayMs: 20,
    log,
    ...options,
  });
  await poller.start();
  pollers.push(poller);
  return poller;
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

/**
 * The real Streams API with GetRecords held until `release()`: the records
 * written before then arrive in one read, so they form one batch. `alter`
 * changes a record as read (a fault DynamoDB Local cannot produce, such as an old record).
 */
function heldReads(alter?: (record: _Record) => void) {
  const real = sdkStreamsApi(dynamodb, streams);
  const held = gate();
  const api: StreamsApi = {
    ...real,
    async getRecords(iterator, limit) {
      await held.opened;
      const out = await real.getRecords(iterator, limit);
      if (alter) out.records.forEach(alter);
      return out;
    },
  };
  return { api, release: held.open };
}

describe('stream poller', () => {
  test('starts at LATEST and delivers matching records in order, as Lambda-shaped batches of at most 100', async () => {
    const table = await newTable();
    await put(table, -1); // before start: not delivered (LATEST)
    const batches: DynamoDBStreamEvent[] = [];
    const hold = gate();
    const poller = await startPoller({
      tableName: table,
      handler: async (event) => {
        batches.push(event);
        await hold.opened; // the first batch waits, so later records pile up into full batches
      },
    });

    await put(table, 0);
    await until(() => batches.length === 1, 10_000, 'the first batch');
    for (let n = 1; n <= 250; n++) await put(table, n, true);
    for (let n = 251; n <= 260; n++) await put(table, n, false); // filtered out
    await put(table, 261);
    await doc.send(new UpdateCommand({ TableName: table, Key: { pk: 'C#x', sk: 'N#261' }, UpdateExpression: 'SET ev = :u, bin = :b', ExpressionAttributeValues: { ':u': 'NODE_UPDATED', ':b': Uint8Array.from([1, 2, 3]) } }));
    await doc.send(new UpdateCommand({ TableName: table, Key: { pk: 'C#x', sk: 'N#261' }, UpdateExpression: 'REMOVE ev' })); // like a keepalive: filtered
    await put(table, 262); // the last record: once it is delivered, every record before it was either delivered or filtered
    hold.open();
    await until(() => batches.flatMap((b) => b.Records).some((r) => nOf(r) === 262), 20_000, 'all records');

    const records = batches.flatMap((b) => b.Records);
    expect(records.map((r) => `${r.eventName}:${nOf(r)}`)).toEqual([
      'INSERT:0',
      ...Array.from({ length: 250 }, (_, i) => `INSERT:${i + 1}`),
      'INSERT:261',
      'MODIFY:261',
      'INSERT:262',
    ]);
    expect(Math.max(...batches.map((b) => b.Records.length))).toBe(100);
    expect(batches.every((b) => b.Records.length >= 1 && b.Records.length <= 100)).toBe(true);
    const seqs = records.map((r) => BigInt(seqOf(r)));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);

    const streamArn = poller.stats().streamArn;
    expect(streamArn).toMatch(/stream/);
    const modify = records.at(-2)!;
    expect(modify).toMatchObject({ eventName: 'MODIFY', eventSource: 'aws:dynamodb', eventSourceARN: streamArn });
    expect(typeof modify.eventID).toBe('string');
    expect(typeof modify.eventVersion).toBe('string');
    expect(typeof modify.awsRegion).toBe('string');
    expect(modify.dynamodb).toMatchObject({
      Keys: { pk: { S: 'C#x' }, sk: { S: 'N#261' } },
      StreamViewType: 'NEW_AND_OLD_IMAGES',
      OldImage: { ev: { S: 'NODE_REGISTERED' } },
      NewImage: { ev: { S: 'NODE_UPDATED' }, bin: { B: Buffer.from([1, 2, 3]).toString('base64') } },
    });
    expect(Number.isInteger(modify.dynamodb?.ApproximateCreationDateTime)).toBe(true);
    expect(Math.abs((modify.dynamodb?.ApproximateCreationDateTime as number) - Date.now() / 1000)).toBeLessThan(300);
    expect(modify.dynamodb?.SizeBytes).toBeGreaterThan(0);
  }, 60_000);

  test('a shard that was empty at start is read in full, even when other tables wrote first (DynamoDB Local numbers records globally)', async () => {
    const table = await newTable();
    const other = await newTable();
    // No GetRecords until both tables have written: the poller then reads the empty-at-start shard
    // with an iterator whose position other records took (DynamoDB Local answers TrimmedDataAccessException).
    const real = sdkStreamsApi(dynamodb, streams);
    const written = gate();
    const api: StreamsApi = {
      ...real,
      async getRecords(iterator, limit) {
        await written.opened;
        return real.getRecords(iterator, limit);
      },
    };
    const delivered: number[] = [];
    await startPoller({
      tableName: table,
      api,
      handler: async (event) => {
        delivered.push(...event.Records.map(nOf));
      },
    });
    // The LATEST iterator was taken while the shard was empty; these take the sequence numbers it points at.
    for (let n = 0; n < 3; n++) await put(other, 100 + n);
    for (let n = 0; n < 3; n++) await put(table, n);
    written.open();
    await until(() => delivered.length >= 3, 10_000, 'three records');
    // A fourth record after them: once it arrives, a record lost or delivered twice before it would show.
    await put(table, 3);
    await until(() => delivered.includes(3), 10_000, 'the fourth record');
    expect(delivered).toEqual([0, 1, 2, 3]);
  });

  test('a partial batch failure is retried from the first failed record: earlier records are not redelivered', async () => {
    const table = await newTable();
    const processed: number[] = [];
    const attempts = new Map<number, number>();
    const failures: StreamFailure[] = [];
    await startPoller({
      tableName: table,
      maxRetryAttempts: 5,
      onFailure: (f) => {
        failures.push(f);
      },
      handler: async (event): Promise<DynamoDBBatchResponse> => {
        for (const record of event.Records) {
          const n = nOf(record);
          attempts.set(n, (attempts.get(n) ?? 0) + 1);
          // Record 5 fails on its first two attempts; the fan-out stops at the first failure too.
          if (n === 5 && (attempts.get(n) ?? 0) <= 2) return { batchItemFailures: [{ itemIdentifier: seqOf(record) }] };
          processed.push(n);
        }
        return { batchItemFailures: [] };
      },
    });
    for (let n = 0; n < 10; n++) await put(table, n);
    await until(() => processed.length === 10, 15_000, 'ten records');
    expect(processed).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(attempts.get(5)).toBe(3); // two failed attempts, then success
    expect(failures).toEqual([]);
  });

  test('without bisect, a batch that keeps failing goes whole to the on-failure destination after the retries, and the stream moves on', async () => {
    const table = await newTable();
    const reads = heldReads();
    const seen: number[][] = [];
    const failures: StreamFailure[] = [];
    const poller = await startPoller({
      tableName: table,
      api: reads.api,
      maxRetryAttempts: 2,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => {
        const ns = event.Records.map(nOf);
        seen.push(ns);
        if (ns.includes(2)) throw new Error('poison'); // record 2 fails its whole batch
      },
    });
    for (let n = 0; n < 5; n++) await put(table, n);
    reads.release(); // the five records arrive in one read, so they form one batch
    await until(() => failures.length === 1, 15_000, 'the discarded batch');
    await put(table, 5);
    await until(() => seen.flat().includes(5), 10_000, 'the record after the discarded batch');

    // The first attempt and two retries of the same batch, then the next record on its own.
    expect(seen).toEqual([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [5]]);
    const [failure] = failures as [StreamFailure];
    expect(failure.records.map(nOf)).toEqual([0, 1, 2, 3, 4]);
    expect(failure).toMatchObject({
      version: '1.0',
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      DDBStreamBatchInfo: {
        batchSize: 5,
        startSequenceNumber: seqOf(failure.records[0]!),
        endSequenceNumber: seqOf(failure.records[4]!),
        streamArn: poller.stats().streamArn,
      },
    });
    expect(Date.parse(failure.DDBStreamBatchInfo.approximateArrivalOfFirstRecord ?? '')).not.toBeNaN();
  });

  test('a partial batch failure that keeps failing discards the rest of the batch from the failed record, not only that record', async () => {
    const table = await newTable();
    const reads = heldReads();
    const processed: number[] = [];
    const failures: StreamFailure[] = [];
    let poisonAttempts = 0;
    await startPoller({
      tableName: table,
      api: reads.api,
      maxRetryAttempts: 2,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => {
        for (const record of event.Records) {
          if (nOf(record) === 3) {
            poisonAttempts++;
            return { batchItemFailures: [{ itemIdentifier: seqOf(record) }] };
          }
          processed.push(nOf(record));
        }
        return undefined;
      },
    });
    for (let n = 0; n < 6; n++) await put(table, n);
    reads.release();
    await until(() => failures.length === 1, 15_000, 'the discarded rest of the batch');
    await put(table, 6);
    await until(() => processed.includes(6), 10_000, 'the record after the discarded batch');
    expect(processed).toEqual([0, 1, 2, 6]);
    expect(poisonAttempts).toBe(3); // the first attempt and two retries
    const [failure] = failures as [StreamFailure];
    expect(failure.records.map(nOf)).toEqual([3, 4, 5]);
    expect(failure.requestContext).toMatchObject({ condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 });
    expect(failure.responseContext).toEqual({ statusCode: 200, executedVersion: '$LATEST' }); // a partial response is no function error
    expect(failure.DDBStreamBatchInfo).toMatchObject({ batchSize: 3, startSequenceNumber: seqOf(failure.records[0]!), endSequenceNumber: seqOf(failure.records[2]!) });
  });

  test('bisect on error isolates a poison record: the rest of its batch is delivered and only its one-record batch is discarded', async () => {
    const table = await newTable();
    const reads = heldReads();
    const seen: number[][] = [];
    const failures: StreamFailure[] = [];
    await startPoller({
      tableName: table,
      api: reads.api,
      bisectOnError: true,
      maxRetryAttempts: 1,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => {
        const ns = event.Records.map(nOf);
        seen.push(ns);
        if (ns.includes(5)) throw new Error('poison');
      },
    });
    for (let n = 0; n < 8; n++) await put(table, n);
    reads.release();
    await until(() => seen.some((ns) => ns.includes(7) && !ns.includes(5)), 15_000, 'the records after the poison one');

    // Halves in order, first half first; splits cost no retry, so only [5] is retried (once) before it is discarded.
    expect(seen).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [5], [6, 7]]);
    expect(failures).toHaveLength(1);
    const [failure] = failures as [StreamFailure];
    expect(failure.records.map(nOf)).toEqual([5]);
    expect(failure.requestContext).toMatchObject({ condition: 'RetryAttemptsExhausted', approximateInvokeCount: 5 }); // every invocation that carried record 5
    expect(failure.DDBStreamBatchInfo).toMatchObject({ batchSize: 1, startSequenceNumber: seqOf(failure.records[0]!), endSequenceNumber: seqOf(failure.records[0]!) });
  });

  test('maxRetryAttempts -1 retries a failing batch until it succeeds', async () => {
    const table = await newTable();
    let attempts = 0;
    const delivered: number[] = [];
    const failures: StreamFailure[] = [];
    await startPoller({
      tableName: table,
      maxRetryAttempts: -1,
      retryMaxDelayMs: 40,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => {
        attempts++;
        if (attempts <= 8) throw new Error('not yet');
        delivered.push(...event.Records.map(nOf));
      },
    });
    await put(table, 0);
    await until(() => delivered.length > 0, 15_000, 'the record, once the function recovers');
    expect(delivered).toEqual([0]);
    expect(attempts).toBe(9); // well past the default 3 retries
    expect(failures).toEqual([]);
  });

  test('records older than maxRecordAgeSeconds go to the on-failure destination without invoking the function for them', async () => {
    const table = await newTable();
    // DynamoDB Local cannot write an old record: the read makes record 0 an hour old.
    const reads = heldReads((record) => {
      if (record.dynamodb?.NewImage?.n?.N === '0' && record.dynamodb) record.dynamodb.ApproximateCreationDateTime = new Date(Date.now() - 3_600_000);
    });
    let skewMs = 0;
    const seen: number[][] = [];
    const failures: StreamFailure[] = [];
    await startPoller({
      tableName: table,
      api: reads.api,
      maxRecordAgeSeconds: 60,
      now: () => Date.now() + skewMs,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => void seen.push(event.Records.map(nOf)),
    });
    for (let n = 0; n < 3; n++) await put(table, n);
    reads.release();
    await until(() => seen.length === 1, 10_000, 'the batch without its old record');
    expect(seen).toEqual([[1, 2]]);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.records.map(nOf)).toEqual([0]);
    expect(failures[0]!.requestContext).toMatchObject({ condition: 'RecordAgeExceeded', approximateInvokeCount: 0 });
    expect(failures[0]!.responseContext).toBeUndefined(); // never invoked
    expect(failures[0]!.DDBStreamBatchInfo).toMatchObject({ batchSize: 1, startSequenceNumber: seqOf(failures[0]!.records[0]!) });

    // The clock says two hours later: a record written now is already too old.
    skewMs = 7_200_000;
    await put(table, 3);
    await until(() => failures.length === 2, 10_000, 'the aged record in the destination');
    skewMs = 0;
    await put(table, 4);
    await until(() => seen.length === 2, 10_000, 'the next fresh record');
    expect(seen).toEqual([[1, 2], [4]]);
    expect(failures[1]!.records.map(nOf)).toEqual([3]);
  });

  test('with reportBatchItemFailures off, batchItemFailures in the response are ignored and the batch counts as a success', async () => {
    const table = await newTable();
    const seen: number[] = [];
    const failures: StreamFailure[] = [];
    await startPoller({
      tableName: table,
      reportBatchItemFailures: false,
      onFailure: (f) => void failures.push(f),
      handler: async (event) => {
        seen.push(...event.Records.map(nOf));
        return { batchItemFailures: [{ itemIdentifier: seqOf(event.Records[0]!) }] };
      },
    });
    for (let n = 0; n < 3; n++) await put(table, n);
    await until(() => seen.includes(2), 10_000, 'three records');
    await put(table, 3); // once it arrives, any retry of the earlier records would have shown
    await until(() => seen.includes(3), 10_000, 'the fourth record');
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(failures).toEqual([]);
  });

  test('startingPosition TRIM_HORIZON reads the records written before the poller started', async () => {
    const table = await newTable();
    await put(table, 0);
    await put(table, 1);
    const delivered: number[] = [];
    await startPoller({ tableName: table, startingPosition: 'TRIM_HORIZON', handler: async (event) => void delivered.push(...event.Records.map(nOf)) });
    await put(table, 2);
    await until(() => delivered.includes(2), 10_000, 'the record written after start');
    expect(delivered).toEqual([0, 1, 2]);
  });

  test('a batching window gathers the records written within it into one batch; a full batch goes at once', async () => {
    const table = await newTable();
    const batches: number[][] = [];
    await startPoller({ tableName: table, batchingWindowMs: 3000, handler: async (event) => void batches.push(event.Records.map(nOf)) });
    for (let n = 0; n < 5; n++) {
      await put(table, n);
      await sleep(100); // records arriving one by one, each on its own without a window
    }
    await until(() => batches.length > 0, 10_000, 'the batch');
    expect(batches).toEqual([[0, 1, 2, 3, 4]]);

    // A batch that is full does not wait for the window.
    const other = await newTable();
    const full: number[][] = [];
    await startPoller({ tableName: other, batchSize: 3, batchingWindowMs: 300_000, handler: async (event) => void full.push(event.Records.map(nOf)) });
    for (let n = 0; n < 4; n++) await put(other, n);
    await until(() => full.length > 0, 10_000, 'the full batch, long before its five-minute window');
    expect(full).toEqual([[0, 1, 2]]);
  });

  test('settings outside the ranges Lambda accepts are refused when the poller is made', () => {
    const base = { tableName: 't', api: sdkStreamsApi(dynamodb, streams), handler: async () => undefined };
    expect(() => new StreamPoller({ ...base, batchSize: 0 })).toThrow(/batchSize must be an integer from 1 to 10,000/);
    expect(() => new StreamPoller({ ...base, batchingWindowMs: 300_001 })).toThrow(/batchingWindowMs/);
    expect(() => new StreamPoller({ ...base, maxRetryAttempts: -2 })).toThrow(/maxRetryAttempts/);
    expect(() => new StreamPoller({ ...base, maxRecordAgeSeconds: 1.5 })).toThrow(/maxRecordAgeSeconds/);
    expect(() => new StreamPoller({ ...base, startingPosition: 'AT_TIMESTAMP' as 'LATEST' })).toThrow(/startingPosition/);
  });

  test('a thrown error or a malformed itemIdentifier fails the whole batch', async () => {
    const table = await newTable();
    const batches: number[][] = [];
    const succeeded: number[] = [];
    await startPoller({
      tableName: table,
      handler: async (event) => {
        const ns = event.Records.map(nOf);
        batches.push(ns);
        if (batches.length === 1) throw new Error('boom');
        if (batches.length === 2) return { batchItemFailures: [{ itemIdentifier: '' }] };
        if (batches.length === 3) return { batchItemFailures: [{ itemIdentifier: 'not-a-sequence-number' }] };
        succeeded.push(...ns);
        return { batchItemFailures: [] };
      },
    });
    for (let n = 0; n < 3; n++) await put(table, n);
    await until(() => succeeded.length === 3, 15_000, 'all three records');
    // Each failure retried the batch from its first record; nothing was skipped or repeated after success.
    expect(batches.slice(0, 4).map((batch) => batch[0])).toEqual([0, 0, 0, 0]);
    expect(succeeded).toEqual([0, 1, 2]);
  });

  test('an expired iterator is renewed after the last record read: nothing lost, nothing repeated', async () => {
    const table = await newTable();
    const real = sdkStreamsApi(dynamodb, streams);
    let expireNext = false;
    const api: StreamsApi = {
      ...real,
      async getRecords(iterator, limit) {
        if (expireNext) {
          expireNext = false;
          throw Object.assign(new Error('Iterator expired'), { name: 'ExpiredIteratorException' });
        }
        return real.getRecords(iterator, limit);
      },
    };
    const delivered: number[] = [];
    const hold = gate();
    await startPoller({
      tableName: table,
      api,
      handler: async (event) => {
        delivered.push(...event.Records.map(nOf));
        if (delivered.length <= 5) await hold.opened;
      },
    });
    for (let n = 0; n < 5; n++) await put(table, n);
    await until(() => delivered.length >= 1, 10_000, 'the first batch');
    // While the handler holds the first batch, more records arrive and the iterator expires.
    for (let n = 5; n < 10; n++) await put(table, n);
    expireNext = true;
    hold.open();
    await until(() => delivered.length >= 10, 15_000, 'ten records');
    // A record after them: once it arrives, a record lost or repeated before it would show.
    await put(table, 10);
    await until(() => delivered.includes(10), 10_000, 'the eleventh record');
    expect(delivered).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(expireNext).toBe(false); // the poller did meet the expired iterator
  });

  test('a recreated table is picked up, and its new stream is read from the start', async () => {
    const table = await newTable();
    const delivered: { n: number; arn: string }[] = [];
    const poller = await startPoller({
      tableName: table,
      discoveryIntervalMs: 100,
      handler: async (event) => {
        for (const r of event.Records) delivered.push({ n: nOf(r), arn: r.eventSourceARN ?? '' });
      },
    });
    await put(table, 1);
    await until(() => delivered.length === 1, 10_000, 'the first record');
    const firstArn = poller.stats().streamArn;

    await dynamodb.send(new DeleteTableCommand({ TableName: table }));
    await dynamodb.send(new CreateTableCommand(createTableInput(table)));
    for (let n = 2; n <= 4; n++) await put(table, n);
    await until(() => delivered.length === 4, 15_000, 'the new table\'s records');
    expect(delivered.map((d) => d.n)).toEqual([1, 2, 3, 4]);
    expect(poller.stats().streamArn).not.toBe(firstArn);
    expect(delivered.slice(1).every((d) => d.arn === poller.stats().streamArn)).toBe(true);
  });
});

describe('stream poller, shard rollover (scripted stream: DynamoDB Local never rolls shards over)', () => {
  function scriptedStream() {
    const listed: { ShardId: string; ParentShardId?: string; SequenceNumberRange: { StartingSequenceNumber: string; EndingSequenceNumber?: string } }[] = [
      { ShardId: 'parent', SequenceNumberRange: { StartingSequenceNumber: '1' } },
    ];
    const records: Record<string, _Record[]> = { parent: [], child: [] };
    const calls: string[] = [];
    // GetRecords may return nothing although records exist; the parent does so until the child has been listed,
    // so the poller knows both shards while the parent still holds unread records.
    let childListed = false;
    const record = (seq: number): _Record => ({
      eventID: `e${seq}`,
      eventName: 'INSERT',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: 'local',
      dynamodb: {
        Keys: { pk: { S: 'C#x' }, sk: { S: `N#${seq}` } },
        NewImage: { pk: { S: 'C#x' }, sk: { S: `N#${seq}` }, n: { N: String(seq) }, ev: { S: 'NODE_REGISTERED' } },
        SequenceNumber: String(seq).padStart(21, '0'),
        SizeBytes: 10,
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
    });
    const api: StreamsApi = {
      latestStreamArn: async () => 'arn:aws:dynamodb:local:000000000000:table/scripted/stream/1',
      // One shard per page, to exercise DescribeStream pagination.
      async describeStream(_arn, exclusiveStartShardId) {
        const start = exclusiveStartShardId === undefined ? 0 : listed.findIndex((s) => s.ShardId === exclusiveStartShardId) + 1;
        const page = listed.slice(start, start + 1);
        if (page[0]?.ShardId === 'child') childListed = true;
        return { shards: page, lastEvaluatedShardId: start + 1 < listed.length ? page[0]?.ShardId : undefined };
      },
      async getShardIterator({ shardId, type, sequenceNumber }) {
        const list = records[shardId] ?? [];
        const position =
          type === 'LATEST' ? list.length : type === 'TRIM_HORIZON' ? 0 : list.findIndex((r) => r.dynamodb?.SequenceNumber === sequenceNumber) + 1;
        return `${shardId}|${position}`;
      },
      // One record per call, so the parent drains slowly while the child already exists.
      async getRecords(iterator) {
        const [shardId = '', pos] = iterator.split('|');
        calls.push(shardId);
        if (shardId === 'parent' && !childListed) return { records: [], nextShardIterator: iterator };
        const list = records[shardId] ?? [];
        const position = Number(pos);
        const out = list.slice(position, position + 1);
        const next = position + out.length;
        const closed = listed.find((s) => s.ShardId === shardId)?.SequenceNumberRange.EndingSequenceNumber !== undefined;
        return { records: out, nextShardIterator: closed && next >= list.length ? undefined : `${shardId}|${next}` };
      },
    };
    return {
      api,
      calls,
      rollOver() {
        records.parent = [1, 2, 3].map(record);
        records.child = [4, 5].map(record);
        (listed[0] as (typeof listed)[0]).SequenceNumberRange.EndingSequenceNumber = '3'.padStart(21, '0');
        listed.push({ ShardId: 'child', ParentShardId: 'parent', SequenceNumberRange: { StartingSequenceNumber: '4'.padStart(21, '0') } });
      },
    };
  }

  test('a closed parent shard is drained before its child, and the child is read from its start', async () => {
    const stream = scriptedStream();
    const delivered: number[] = [];
    await startPoller({
      tableName: 'scripted',
      api: stream.api,
      discoveryIntervalMs: 50,
      handler: async (event) => {
        delivered.push(...event.Records.map(nOf));
      },
    });
    stream.rollOver();
    await until(() => delivered.length === 5, 10_000, 'five records');
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    const lastParentCall = stream.calls.lastIndexOf('parent');
    const firstChildCall = stream.calls.indexOf('child');
    expect(firstChildCall).toBeGreaterThan(lastParentCall);
  });
});
