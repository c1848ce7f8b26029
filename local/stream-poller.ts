/**
 * A DynamoDB Streams poller that behaves like Lambda's event source mapping
 * (ESM) for the fan-out function, applying each of the ESM's settings as
 * Lambda does. The settings and their defaults are AWS's
 * (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html),
 * except where an option's `@default` says otherwise.
 *
 * - **Starting position** (`startingPosition`, StartingPosition): shards open
 *   when the poller starts are read from LATEST or TRIM_HORIZON
 *   (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html). With LATEST
 *   their iterators are taken before `start()` resolves, so every record
 *   written after the runtime is ready is delivered, and shards already closed
 *   lie wholly before LATEST; with TRIM_HORIZON closed shards are read too,
 *   parents first. Shards found later (children after a rollover, or every
 *   shard of a new stream after the table was recreated) are read from
 *   TRIM_HORIZON, so nothing written to them is missed.
 * - **Shard discovery** with `DescribeStream` pagination, every
 *   `discoveryIntervalMs` and at once when a shard ends; the table's latest
 *   stream ARN is re-read each time, so a recreated table is picked up.
 * - **Parent before child:** a shard is read only after its parent (if the
 *   poller knows it) has been drained to its end.
 * - **Iterator expiry:** an expired iterator is re-acquired with
 *   `AFTER_SEQUENCE_NUMBER` from the last record read.
 * - **Trimmed data:** a `TrimmedDataAccessException` from `GetRecords` (on AWS:
 *   the iterator fell behind the 24-hour retention) re-reads the shard from its
 *   oldest record, skipping everything already read. DynamoDB Local
 *   needs this too: an iterator taken while a shard is empty points at the
 *   shard's starting sequence number, and since DynamoDB Local numbers records
 *   across all tables, the shard's first record may come later and the
 *   iterator then reads as "trimmed" forever.
 * - **Filter criteria** (FilterCriteria): the same pattern objects the CDK
 *   stack gives the ESM, evaluated with the same `matchesFilter`
 *   (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
 *   Records that do not match are consumed and never delivered; batch size and
 *   batching window count only records that match.
 * - **Batches** (BatchSize, MaximumBatchingWindowInSeconds): at most
 *   `batchSize` records, as a Lambda-shaped `DynamoDBStreamEvent`. With a
 *   batching window the poller keeps reading until the batch is full or the
 *   window ends; "the next window begins as soon as the previous function
 *   invocation completes" (for a shard's first batch: when the shard is first
 *   read), per "Batching behavior" on
 *   https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html.
 *   Without a window a batch goes as soon as records are available. One batch
 *   per shard at a time, so order is kept. A batch, once formed, is fixed:
 *   retries re-send its records (or what remains of them), never newer ones.
 * - **Partial batch failures** (FunctionResponseTypes ReportBatchItemFailures,
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html):
 *   the records before the lowest failed `itemIdentifier` are done; the rest of
 *   the batch is retried. An empty, null or unknown `itemIdentifier` fails the
 *   whole batch. With `reportBatchItemFailures: false` the response is ignored
 *   and a batch that did not throw is a success, as on Lambda without that
 *   response type.
 * - **Retries and the on-failure destination** (MaximumRetryAttempts,
 *   DestinationConfig.OnFailure,
 *   https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html):
 *   a failed invocation is retried with exponential backoff; after
 *   `maxRetryAttempts` retries (-1: no limit) Lambda discards **the whole
 *   batch** and sends one invocation record for it (`DDBStreamBatchInfo` from
 *   its first to its last record, `condition: RetryAttemptsExhausted`) to the
 *   destination, then moves on, so a poison record never blocks the shard.
 * - **Bisect on error** (BisectBatchOnFunctionError): when the function throws,
 *   a batch of two or more records is split in two and the halves are retried
 *   in order, first half first, at once. How retries are counted is thin in
 *   AWS's docs; what the poller does, and why:
 *   - "Splitting a batch does not count towards the retry quota"
 *     (services-dynamodb-errors.html): a split consumes no retry, and each half
 *     starts with the retries its parent had consumed. So only an invocation
 *     that fails without the batch getting smaller counts: a one-record batch
 *     that throws, or a partial failure at the batch's first record.
 *   - A partial batch response with bisect on: "the batch is bisected at the
 *     returned sequence number and Lambda retries only the remaining records"
 *     (services-ddb-batchfailurereporting.html) — a split, so no retry is
 *     counted when records before the failure succeeded. Without bisect the
 *     same retry of the remaining records counts: Lambda counts retries of a
 *     batch, and what remains of it is that batch.
 *   - A discarded batch is thus, with bisect on and a function that throws,
 *     the one-record batch that kept failing; the invocation record's
 *     `approximateInvokeCount` counts every invocation that carried its records.
 * - **Maximum record age** (MaximumRecordAgeInSeconds, -1: none): before each
 *   invocation (retries included), records older than `maxRecordAgeSeconds` by
 *   `ApproximateCreationDateTime` — a prefix of the batch, the stream being in
 *   order — are not sent to the function but discarded to the destination
 *   with `condition: RecordAgeExceeded`; the rest of the batch is invoked.
 *   Ages are measured on the `now` clock, so a test can age records without
 *   waiting.
 *
 * Polling: each shard is polled again at once while it returns records, and
 * every `pollIntervalMs` (default 250 ms) while it is idle: Lambda polls each
 * shard four times per second (with-ddb.html). A quicker poll delivers an
 * event a little sooner and costs an idle runtime and its DynamoDB Local CPU
 * for nothing (three idle runtimes on one DynamoDB Local, 30 s: 1.7 CPU-s
 * each and 2.6 for the store at 100 ms; 1.1 each and 2.0 at 250 ms).
 */
import { DescribeTableCommand, ResourceNotFoundException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type AttributeValue as StreamAttributeValue,
  type DynamoDBStreamsClient,
  type Shard,
  type ShardIteratorType,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { matchesFilter, type FilterPattern } from '../functions/core/stream-filter.ts';
import { gatewayId } from './ids.ts';
import { silentLog, type RuntimeLog } from './log.ts';

/** The DynamoDB and DynamoDB Streams calls the poller makes; a seam for fault injection in tests. */
export interface StreamsApi {
  /** The table's latest stream ARN, or undefined when the table (or its stream) does not exist. */
  latestStreamArn(tableName: string): Promise<string | undefined>;
  describeStream(streamArn: string, exclusiveStartShardId?: string): Promise<{ shards: Shard[]; lastEvaluatedShardId?: string }>;
  getShardIterator(input: {
    streamArn: string;
    shardId: string;
    type: ShardIteratorType;
    sequenceNumber?: string;
  }): Promise<string | undefined>;
  getRecords(shardIterator: string, limit: number): Promise<{ records: _Record[]; nextShardIterator?: string }>;
}

export function sdkStreamsApi(dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient): StreamsApi {
  return {
    async latestStreamArn(tableName) {
      try {
        const out = await dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
        return out.Table?.StreamSpecification?.StreamEnabled === false ? undefined : out.Table?.LatestStreamArn;
      } catch (err) {
        if (err instanceof ResourceNotFoundException || (err as Error).name === 'ResourceNotFoundException') return undefined;
        throw err;
      }
    },
    async describeStream(streamArn, exclusiveStartShardId) {
      const out = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: exclusiveStartShardId }));
      return { shards: out.StreamDescription?.Shards ?? [], lastEvaluatedShardId: out.StreamDescription?.LastEvaluatedShardId };
    },
    async getShardIterator({ streamArn, shardId, type, sequenceNumber }) {
      const out = await streams.send(
        new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shardId, ShardIteratorType: type, SequenceNumber: sequenceNumber }),
      );
      return out.ShardIterator;
    },
    async getRecords(shardIterator, limit) {
      const out = await streams.send(new GetRecordsCommand({ ShardIterator: shardIterator, Limit: limit }));
      return { records: out.Records ?? [], nextShardIterator: out.NextShardIterator };
    },
  };
}

/** Why a batch went to the on-failure destination, as Lambda names it (services-dynamodb-errors.html). */
export type StreamFailureCondition = 'RetryAttemptsExhausted' | 'RecordAgeExceeded';

/**
 * What the on-failure destination receives: Lambda's invocation record for a
 * discarded batch, in the shape of the example on
 * https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html,
 * plus the discarded records themselves.
 */
export interface StreamFailure {
  version: '1.0';
  timestamp: string;
  requestContext: { requestId: string; functionArn?: string; condition: StreamFailureCondition; approximateInvokeCount: number };
  /** The last invocation's outcome; absent when the records were discarded (too old) before any invocation. */
  responseContext?: { statusCode: number; executedVersion: string; functionError?: string };
  DDBStreamBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord?: string;
    approximateArrivalOfLastRecord?: string;
    batchSize: number;
    streamArn: string;
  };
  /** Not in Lambda's record (which only points into the stream): the discarded records, in order, for local debugging. */
  records: DynamoDBRecord[];
}

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void | null | undefined>;

export type StartingPosition = 'LATEST' | 'TRIM_HORIZON';

/** Each ESM setting under the name the local runtime passes it by; the AWS name is in brackets. */
export interface StreamPollerOptions {
  tableName: string;
  api: StreamsApi;
  handler: StreamHandler;
  /** [FilterCriteria] A record is delivered when any pattern matches. @default every record */
  filterPatterns?: readonly FilterPattern[];
  /** [BatchSize] Largest batch, counted in records that pass the filter; 1 to 10,000. @default 100 */
  batchSize?: number;
  /** [MaximumBatchingWindowInSeconds × 1000] How long to gather records before invoking, unless the batch fills first; 0 to 300,000. @default 0 */
  batchingWindowMs?: number;
  /** [StartingPosition] Where the shards open at start are read from. @default 'LATEST' */
  startingPosition?: StartingPosition;
  /** Wait between polls of an idle shard. @default 100 */
  pollIntervalMs?: number;
  /** How often shards (and the table's stream ARN) are re-discovered. @default 1000 */
  discoveryIntervalMs?: number;
  /**
   * [MaximumRetryAttempts] Retries of a failing batch before it is discarded to
   * the on-failure destination; -1 retries until the records are too old
   * (`maxRecordAgeSeconds`) or, with no age limit, for ever. -1 to 10,000.
   * @default 3 (Lambda's own default is -1; the stack sets 5)
   */
  maxRetryAttempts?: number;
  /** [BisectBatchOnFunctionError] Split a batch in two when the function throws. @default false */
  bisectOnError?: boolean;
  /** [MaximumRecordAgeInSeconds] Records older than this are discarded instead of invoked; -1: no limit. -1 to 604,800. @default -1 */
  maxRecordAgeSeconds?: number;
  /** [FunctionResponseTypes includes ReportBatchItemFailures] Honour `batchItemFailures` in the response. @default true */
  reportBatchItemFailures?: boolean;
  /** First retry delay; doubles per retry. @default 200 */
  retryBaseDelayMs?: number;
  /** @default 5000 */
  retryMaxDelayMs?: number;
  /** [DestinationConfig.OnFailure] Receives one invocation record per discarded batch. @default discarded batches are only logged */
  onFailure?: (failure: StreamFailure) => Promise<void> | void;
  /** The function's ARN, for the invocation record's `requestContext.functionArn`. @default left out */
  functionArn?: string;
  /** The clock (epoch ms) record ages and invocation records are measured by. @default Date.now */
  now?: () => number;
  log?: RuntimeLog;
}

/** A fetched record, with whether it passes the filter. */
interface Buffered {
  record: DynamoDBRecord;
  matches: boolean;
}

/** Records given to the function together, and what happened to them so far. */
interface Batch {
  records: DynamoDBRecord[];
  /** Retries consumed; a split consumes none, and each half inherits its parent's. */
  retries: number;
  /** Invocations that carried these records: the invocation record's approximateInvokeCount. */
  invokes: number;
  /** The last invocation's error (`Unhandled` when it threw). */
  functionError?: string;
}

/** The batch a shard is working through: bisection replaces its first part by two halves. */
interface InFlight {
  /** Parts still to deliver, in stream order. */
  parts: Batch[];
}

interface ShardState {
  shardId: string;
  parentShardId?: string;
  /** Where to start reading when nothing was read yet. */
  start: StartingPosition;
  /** undefined: not acquired (or expired); null: the shard is closed and read to its end. */
  iterator?: string | null;
  /** Sequence number of the last record read (buffered, in flight or done); a renewed iterator starts after it. */
  position?: string;
  /** Records read but not batched yet, in stream order. */
  buffer: Buffered[];
  inFlight?: InFlight;
  /** When the current batching window began: the end of the shard's previous invocation. */
  windowStart: number;
  finished: boolean;
  nextPollAt: number;
}

export interface StreamPollerStats {
  streamArn?: string;
  shards: number;
  invocations: number;
  /** Records the function processed successfully. */
  delivered: number;
  filtered: number;
  /** Counted retries (splits are not retries). */
  retries: number;
  /** Batches split by bisection (a partial response with bisect on included). */
  splits: number;
  /** Records discarded to the on-failure destination. */
  discarded: number;
  iteratorsRenewed: number;
  trimmedRereads: number;
}

const GET_RECORDS_LIMIT = 1000;
const ERROR_BACKOFF_MS = 1000;

function toLambdaValue(value: StreamAttributeValue): AttributeValue {
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.BS !== undefined) return { BS: value.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (value.L !== undefined) return { L: value.L.map(toLambdaValue) };
  if (value.M !== undefined) return { M: toLambdaImage(value.M) };
  const rest: Record<string, unknown> = { ...value };
  delete rest.$unknown;
  return rest as AttributeValue;
}

function toLambdaImage(image: Record<string, StreamAttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(image)) out[name] = toLambdaValue(value);
  return out;
}

/** A stream record as Lambda delivers it: images as DynamoDB JSON, binary as base64, times in epoch seconds. */
export function toLambdaRecord(record: _Record, streamArn: string): DynamoDBRecord {
  const src = record.dynamodb ?? {};
  const dynamodb: NonNullable<DynamoDBRecord['dynamodb']> = {};
  if (src.ApproximateCreationDateTime) dynamodb.ApproximateCreationDateTime = Math.floor(src.ApproximateCreationDateTime.getTime() / 1000);
  if (src.Keys) dynamodb.Keys = toLambdaImage(src.Keys);
  if (src.NewImage) dynamodb.NewImage = toLambdaImage(src.NewImage);
  if (src.OldImage) dynamodb.OldImage = toLambdaImage(src.OldImage);
  if (src.SequenceNumber !== undefined) dynamodb.SequenceNumber = src.SequenceNumber;
  if (src.SizeBytes !== undefined) dynamodb.SizeBytes = src.SizeBytes;
  if (src.StreamViewType !== undefined) dynamodb.StreamViewType = src.StreamViewType;
  const out: DynamoDBRecord = {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion,
    eventSource: 'aws:dynamodb',
    awsRegion: record.awsRegion,
    dynamodb,
    eventSourceARN: streamArn,
  };
  if (record.userIdentity) out.userIdentity = { type: record.userIdentity.Type, principalId: record.userIdentity.PrincipalId };
  return out;
}

const errorName = (err: unknown): string => (err instanceof Error ? err.name : '');

/** Whether sequence number `a` comes after `b` (they are numeric strings of up to 40 digits). */
export function sequenceAfter(a: string, b: string): boolean {
  try {
    return BigInt(a) > BigInt(b);
  } catch {
    return a.length !== b.length ? a.length > b.length : a > b;
  }
}
const seqOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

/** The ESM settings' valid ranges (services-ddb-params.html); a bad value is a configuration error, reported at construction. */
function checkOptions(o: Resolved): void {
  const bad = (name: string, value: unknown, range: string) => new RangeError(`stream poller: ${name} must be ${range} (got ${String(value)})`);
  const intIn = (v: number, min: number, max: number) => Number.isInteger(v) && v >= min && v <= max;
  if (!intIn(o.batchSize, 1, 10_000)) throw bad('batchSize', o.batchSize, 'an integer from 1 to 10,000');
  if (!intIn(o.batchingWindowMs, 0, 300_000)) throw bad('batchingWindowMs', o.batchingWindowMs, 'an integer from 0 to 300,000');
  if (!intIn(o.maxRetryAttempts, -1, 10_000)) throw bad('maxRetryAttempts', o.maxRetryAttempts, 'an integer from -1 to 10,000');
  if (!intIn(o.maxRecordAgeSeconds, -1, 604_800)) throw bad('maxRecordAgeSeconds', o.maxRecordAgeSeconds, 'an integer from -1 to 604,800');
  if (o.startingPosition !== 'LATEST' && o.startingPosition !== 'TRIM_HORIZON') throw bad('startingPosition', o.startingPosition, "'LATEST' or 'TRIM_HORIZON'");
}

type Resolved = Required<Omit<StreamPollerOptions, 'onFailure' | 'filterPatterns' | 'functionArn'>> &
  Pick<StreamPollerOptions, 'onFailure' | 'filterPatterns' | 'functionArn'>;

const isoSeconds = (record: DynamoDBRecord | undefined): string | undefined => {
  const at = record?.dynamodb?.ApproximateCreationDateTime;
  return at === undefined ? undefined : new Date(at * 1000).toISOString();
};

export class StreamPoller {
  private readonly opts: Resolved;
  private readonly shards = new Map<string, ShardState>();
  private streamArn: string | undefined;
  private started = false;
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private nextDiscoveryAt = 0;
  private wake: (() => void) | undefined;
  private readonly counters = { invocations: 0, delivered: 0, filtered: 0, retries: 0, splits: 0, discarded: 0, iteratorsRenewed: 0, trimmedRereads: 0 };

  constructor(options: StreamPollerOptions) {
    this.opts = {
      batchSize: 100,
      batchingWindowMs: 0,
      startingPosition: 'LATEST',
      pollIntervalMs: 250,
      discoveryIntervalMs: 1000,
      maxRetryAttempts: 3,
      bisectOnError: false,
      maxRecordAgeSeconds: -1,
      reportBatchItemFailures: true,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 5000,
      now: Date.now,
      log: silentLog,
      ...options,
    };
    checkOptions(this.opts);
  }

  /** Discovers the stream and takes iterators for its open shards (LATEST: before resolving), then starts polling. */
  async start(): Promise<void> {
    if (this.started || this.stopped) throw new Error('a stream poller starts once');
    await this.discover();
    this.started = true;
    this.loopDone = this.loop();
  }

  /** Stops polling; resolves after the batch in flight (if any) has been handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopDone;
  }

  stats(): StreamPollerStats {
    return { streamArn: this.streamArn, shards: this.shards.size, ...this.counters };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (Date.now() >= this.nextDiscoveryAt) await this.discover();
        let busy = false;
        for (const shard of [...this.shards.values()]) {
          if (this.stopped) break;
          if (shard.finished || Date.now() < shard.nextPollAt || !this.parentDone(shard)) continue;
          if (await this.step(shard)) busy = true;
        }
        if (!busy && !this.stopped) await this.sleep(this.idleDelay());
      } catch (err) {
        if (this.stopped) break;
        this.opts.log.warn('stream poller: will retry after an error', { error: err as Error });
        await this.sleep(ERROR_BACKOFF_MS);
      }
    }
  }

  private idleDelay(): number {
    const now = Date.now();
    let wait = Math.min(this.opts.pollIntervalMs, this.nextDiscoveryAt - now);
    for (const shard of this.shards.values()) {
      if (!shard.finished && this.parentDone(shard)) wait = Math.min(wait, shard.nextPollAt - now);
    }
    return Math.max(1, wait);
  }

  private parentDone(shard: ShardState): boolean {
    const parent = shard.parentShardId === undefined ? undefined : this.shards.get(shard.parentShardId);
    return parent === undefined || parent.finished;
  }

  private async discover(): Promise<void> {
    this.nextDiscoveryAt = Date.now() + this.opts.discoveryIntervalMs;
    const arn = await this.opts.api.latestStreamArn(this.opts.tableName);
    if (arn !== this.streamArn) {
      if (this.started) this.opts.log.info('stream poller: the table has a new stream; reading it from the start', { streamArn: arn });
      this.streamArn = arn;
      this.shards.clear();
    }
    if (arn === undefined) return;
    const listed: Shard[] = [];
    let startId: string | undefined;
    do {
      const page = await this.opts.api.describeStream(arn, startId);
      listed.push(...page.shards);
      startId = page.lastEvaluatedShardId;
    } while (startId);
    for (const shard of listed) {
      if (!shard.ShardId || this.shards.has(shard.ShardId)) continue;
      const closed = shard.SequenceNumberRange?.EndingSequenceNumber !== undefined;
      // At start-up the ESM's starting position; afterwards a new shard is read from its beginning.
      const start = this.started ? 'TRIM_HORIZON' : this.opts.startingPosition;
      const state: ShardState = {
        shardId: shard.ShardId,
        parentShardId: shard.ParentShardId,
        start,
        buffer: [],
        windowStart: Date.now(),
        // A shard already closed when reading starts at LATEST lies wholly before it.
        finished: start === 'LATEST' && closed,
        nextPollAt: 0,
      };
      // LATEST is "now": take it before start() resolves, so nothing written afterwards is missed.
      if (start === 'LATEST' && !closed) state.iterator = await this.acquire(state);
      this.shards.set(shard.ShardId, state);
    }
    // Forget finished shards the stream no longer lists (trimmed after 24 hours).
    const ids = new Set(listed.map((s) => s.ShardId));
    for (const [id, state] of this.shards) if (state.finished && !ids.has(id)) this.shards.delete(id);
  }

  /** An iterator after the last record read, else from the shard's start position; `fromOldest` reads from TRIM_HORIZON. */
  private async acquire(shard: ShardState, fromOldest = false): Promise<string | null> {
    const streamArn = this.streamArn;
    if (streamArn === undefined) return null;
    const input = fromOldest
      ? { type: 'TRIM_HORIZON' as const }
      : shard.position
        ? { type: 'AFTER_SEQUENCE_NUMBER' as const, sequenceNumber: shard.position }
        : { type: shard.start as ShardIteratorType };
    try {
      return (await this.opts.api.getShardIterator({ streamArn, shardId: shard.shardId, ...input })) ?? null;
    } catch (err) {
      if (errorName(err) !== 'TrimmedDataAccessException') throw err;
      this.opts.log.warn('stream poller: the last record read is past the stream retention; continuing from the oldest record', { shardId: shard.shardId });
      return (await this.opts.api.getShardIterator({ streamArn, shardId: shard.shardId, type: 'TRIM_HORIZON' })) ?? null;
    }
  }

  /** One unit of work on a shard; true when it invoked the function (so the loop should not sleep). */
  private async step(shard: ShardState): Promise<boolean> {
    const inFlight = shard.inFlight ?? (await this.gather(shard));
    if (!inFlight) return false;
    await this.invoke(shard, inFlight);
    return true;
  }

  /** Matching records in the buffer, up to a full batch. */
  private gathered(shard: ShardState): number {
    let count = 0;
    for (const entry of shard.buffer) if (entry.matches && ++count === this.opts.batchSize) break;
    return count;
  }

  /**
   * Reads records and forms the next batch. Undefined while there is none to
   * invoke yet: the shard is idle, or the batching window is open and the
   * batch is not full (invocation-eventsourcemapping.html, "Batching behavior").
   */
  private async gather(shard: ShardState): Promise<InFlight | undefined> {
    const { batchSize, pollIntervalMs } = this.opts;
    const windowEnd = shard.windowStart + this.opts.batchingWindowMs;
    let count = this.gathered(shard);
    if (count < batchSize && (count === 0 || Date.now() < windowEnd)) {
      await this.fetch(shard);
      count = this.gathered(shard);
    }
    // A closed shard read to its end has nothing more to add to the batch.
    const more = shard.iterator !== null;
    if (count === 0 || (count < batchSize && more && Date.now() < windowEnd)) {
      if (count === 0) {
        this.take(shard); // records the filter drops are consumed as they come
        if (!more && shard.buffer.length === 0) this.ended(shard);
      }
      if (!shard.finished && shard.nextPollAt <= Date.now()) {
        shard.nextPollAt = Date.now() + (count === 0 ? pollIntervalMs : Math.max(1, Math.min(pollIntervalMs, windowEnd - Date.now())));
      }
      return undefined;
    }
    const records = this.take(shard);
    shard.inFlight = { parts: [{ records, retries: 0, invokes: 0 }] };
    return shard.inFlight;
  }

  /** Takes the next batch's records (at most batchSize that match) off the buffer, with the filtered-out records among and after them. */
  private take(shard: ShardState): DynamoDBRecord[] {
    const records: DynamoDBRecord[] = [];
    let end = 0;
    for (const entry of shard.buffer) {
      if (entry.matches) {
        if (records.length === this.opts.batchSize) break;
        records.push(entry.record);
      } else this.counters.filtered++;
      end++;
    }
    shard.buffer.splice(0, end);
    return records;
  }

  private async fetch(shard: ShardState): Promise<void> {
    const streamArn = this.streamArn;
    if (streamArn === undefined) return;
    const { filterPatterns } = this.opts;
    try {
      if (shard.iterator === undefined) shard.iterator = await this.acquire(shard);
      if (shard.iterator === null) {
        if (shard.buffer.length === 0 && !shard.inFlight) this.ended(shard);
        return;
      }
      const out = await this.opts.api.getRecords(shard.iterator, GET_RECORDS_LIMIT);
      shard.iterator = out.nextShardIterator ?? null;
      for (const raw of out.records) {
        const sequenceNumber = raw.dynamodb?.SequenceNumber ?? '';
        // After a re-read from the oldest record, what was read already is skipped.
        if (shard.position !== undefined && !sequenceAfter(sequenceNumber, shard.position)) continue;
        const record = toLambdaRecord(raw, streamArn);
        shard.buffer.push({ record, matches: !filterPatterns || matchesFilter(filterPatterns, record) });
        shard.position = sequenceNumber;
      }
      if (shard.iterator === null && shard.buffer.length === 0 && !shard.inFlight) this.ended(shard);
    } catch (err) {
      switch (errorName(err)) {
        case 'ExpiredIteratorException':
          // Re-acquired after the last record read on the next step (AFTER_SEQUENCE_NUMBER).
          this.counters.iteratorsRenewed++;
          this.opts.log.info('stream poller: shard iterator expired; renewing it after the last record read', { shardId: shard.shardId });
          shard.iterator = undefined;
          return;
        case 'TrimmedDataAccessException':
          this.counters.trimmedRereads++;
          this.opts.log.info('stream poller: the shard iterator points before the oldest record; re-reading the shard from it', { shardId: shard.shardId });
          shard.iterator = undefined;
          try {
            shard.iterator = await this.acquire(shard, true);
          } catch (again) {
            this.opts.log.warn('stream poller: re-reading a shard failed; retrying', { shardId: shard.shardId, error: again as Error });
            shard.nextPollAt = Date.now() + ERROR_BACKOFF_MS;
          }
          return;
        case 'ResourceNotFoundException':
          // The stream or table went away; discovery sorts out what replaced it.
          this.nextDiscoveryAt = 0;
          shard.iterator = undefined;
          shard.nextPollAt = Date.now() + this.opts.discoveryIntervalMs;
          return;
        default:
          if (this.stopped) return;
          this.opts.log.warn('stream poller: reading a shard failed; retrying', { shardId: shard.shardId, error: err as Error });
          shard.nextPollAt = Date.now() + ERROR_BACKOFF_MS;
      }
    }
  }

  private ended(shard: ShardState): void {
    shard.finished = true;
    this.nextDiscoveryAt = 0; // its children are due now
  }

  /** The first part of the shard's batch is done (delivered or discarded); the batch is done with its last part. */
  private partDone(shard: ShardState, inFlight: InFlight): void {
    inFlight.parts.shift();
    if (inFlight.parts.length === 0) shard.inFlight = undefined;
  }

  /** How many records at the head of `records` are older than maxRecordAgeSeconds. */
  private tooOld(records: DynamoDBRecord[]): number {
    const max = this.opts.maxRecordAgeSeconds;
    if (max < 0) return 0;
    const nowSeconds = this.opts.now() / 1000;
    let count = 0;
    for (const record of records) {
      const created = record.dynamodb?.ApproximateCreationDateTime;
      if (created === undefined || nowSeconds - created <= max) break;
      count++;
    }
    return count;
  }

  /** Invokes the function with the first part of the shard's batch and applies Lambda's rules to the outcome. */
  private async invoke(shard: ShardState, inFlight: InFlight): Promise<void> {
    const batch = inFlight.parts[0];
    if (!batch) {
      shard.inFlight = undefined;
      return;
    }
    const old = this.tooOld(batch.records);
    if (old > 0) {
      await this.discard(shard, { ...batch, records: batch.records.slice(0, old) }, 'RecordAgeExceeded');
      batch.records.splice(0, old);
      if (batch.records.length === 0) return this.partDone(shard, inFlight);
    }

    this.counters.invocations++;
    batch.invokes++;
    let failedAt: number | undefined;
    let functionError: string | undefined;
    try {
      const response = await this.opts.handler({ Records: [...batch.records] });
      failedAt = this.opts.reportBatchItemFailures ? firstFailure(response, batch.records) : undefined;
    } catch (err) {
      // What Lambda reports for an exception the handler did not catch (X-Amz-Function-Error).
      functionError = 'Unhandled';
      failedAt = 0;
      this.opts.log.warn('stream poller: the function failed', { error: err as Error });
    }
    shard.windowStart = Date.now();

    if (failedAt === undefined) {
      this.counters.delivered += batch.records.length;
      return this.partDone(shard, inFlight);
    }
    batch.functionError = functionError;
    if (failedAt > 0) {
      // Lambda checkpoints just before the lowest failed record; the rest of the batch is retried.
      this.counters.delivered += failedAt;
      batch.records.splice(0, failedAt);
      // With bisect on, "the batch is bisected at the returned sequence number": a split, not a retry.
      if (this.opts.bisectOnError) {
        this.counters.splits++;
        return;
      }
    } else if (functionError !== undefined && this.opts.bisectOnError && batch.records.length > 1) {
      // Split in two, first half first; "splitting a batch does not count towards the retry quota".
      const half = Math.ceil(batch.records.length / 2);
      const inherit = { retries: batch.retries, invokes: batch.invokes, functionError };
      inFlight.parts.splice(0, 1, { records: batch.records.slice(0, half), ...inherit }, { records: batch.records.slice(half), ...inherit });
      this.counters.splits++;
      return;
    }

    batch.retries++;
    const { maxRetryAttempts, retryBaseDelayMs, retryMaxDelayMs } = this.opts;
    if (maxRetryAttempts >= 0 && batch.retries > maxRetryAttempts) {
      await this.discard(shard, batch, 'RetryAttemptsExhausted');
      return this.partDone(shard, inFlight);
    }
    this.counters.retries++;
    shard.nextPollAt = Date.now() + Math.min(retryMaxDelayMs, retryBaseDelayMs * 2 ** Math.min(30, batch.retries - 1));
  }

  /** Sends Lambda's invocation record for a discarded batch to the on-failure destination. */
  private async discard(shard: ShardState, batch: Batch, condition: StreamFailureCondition): Promise<void> {
    const { records } = batch;
    const first = records[0];
    const last = records.at(-1);
    this.counters.discarded += records.length;
    const failure: StreamFailure = {
      version: '1.0',
      timestamp: new Date(this.opts.now()).toISOString(),
      requestContext: {
        requestId: gatewayId(),
        ...(this.opts.functionArn ? { functionArn: this.opts.functionArn } : {}),
        condition,
        approximateInvokeCount: batch.invokes,
      },
      ...(batch.invokes > 0
        ? { responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(batch.functionError ? { functionError: batch.functionError } : {}) } }
        : {}),
      DDBStreamBatchInfo: {
        shardId: shard.shardId,
        startSequenceNumber: first ? seqOf(first) : '',
        endSequenceNumber: last ? seqOf(last) : '',
        approximateArrivalOfFirstRecord: isoSeconds(first),
        approximateArrivalOfLastRecord: isoSeconds(last),
        batchSize: records.length,
        streamArn: this.streamArn ?? '',
      },
      records: [...records],
    };
    const range = `${failure.DDBStreamBatchInfo.startSequenceNumber}..${failure.DDBStreamBatchInfo.endSequenceNumber}`;
    this.opts.log.warn(`stream poller: a batch of ${records.length} record(s) (${range}) was discarded (${condition}) and sent to the on-failure destination`, {
      shardId: shard.shardId,
      approximateInvokeCount: batch.invokes,
    });
    try {
      await this.opts.onFailure?.(failure);
    } catch (err) {
      this.opts.log.error('stream poller: the on-failure destination failed; the batch is dropped', { error: err as Error });
    }
  }
}

/**
 * Index (in the batch) of the lowest failed record, per Lambda's partial batch
 * response rules (services-ddb-batchfailurereporting.html, "Success and failure
 * conditions"); undefined when the batch succeeded.
 */
export function firstFailure(response: unknown, records: DynamoDBRecord[]): number | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (!Array.isArray(failures) || failures.length === 0) return undefined;
  let first: number | undefined;
  for (const failure of failures as unknown[]) {
    const id = typeof failure === 'object' && failure !== null ? (failure as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    const index = typeof id === 'string' && id !== '' ? records.findIndex((r) => seqOf(r) === id) : -1;
    if (index < 0) return 0; // Lambda treats a malformed or unknown identifier as a failure of the whole batch
    first = first === undefined ? index : Math.min(first, index);
  }
  return first;
}
