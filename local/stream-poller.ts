/**
 * A DynamoDB Streams poller that behaves like Lambda's event source mapping
 * (ESM) for the fan-out function:
 *
 * - **Start position LATEST.** Shards open when the poller starts are read
 *   from LATEST; their iterators are taken before `start()` resolves, so every
 *   record written after the runtime is ready is delivered. Shards found later
 *   (children after a rollover, or every shard of a new stream after the table
 *   was recreated) are read from TRIM_HORIZON, so nothing written to them is missed.
 * - **Shard discovery** with `DescribeStream` pagination, every
 *   `discoveryIntervalMs` and at once when a shard ends; the table's latest
 *   stream ARN is re-read each time, so a recreated table is picked up.
 * - **Parent before child:** a shard is read only after its parent (if the
 *   poller knows it) has been drained to its end.
 * - **Iterator expiry:** an expired iterator is re-acquired with
 *   `AFTER_SEQUENCE_NUMBER` from the last checkpoint.
 * - **Trimmed data:** a `TrimmedDataAccessException` from `GetRecords` (on AWS:
 *   the iterator fell behind the 24-hour retention) re-reads the shard from its
 *   oldest record, skipping everything up to the checkpoint. DynamoDB Local
 *   needs this too: an iterator taken while a shard is empty points at the
 *   shard's starting sequence number, and since DynamoDB Local numbers records
 *   across all tables, the shard's first record may come later and the
 *   iterator then reads as "trimmed" forever.
 * - **Filter criteria:** the same pattern objects the CDK stack gives the ESM
 *   (`FANOUT_FILTER_PATTERNS`), evaluated with the same `matchesFilter`.
 *   Records that do not match are checkpointed and never delivered.
 * - **Batches** of at most `batchSize` (100) matching records, as a
 *   Lambda-shaped `DynamoDBStreamEvent`.
 * - **Partial batch failures** (`batchItemFailures`): records before the first
 *   failure are checkpointed; the batch is retried from the failed record
 *   with exponential backoff. An empty, unknown or missing `itemIdentifier`,
 *   or a thrown error, fails the whole batch, as on Lambda.
 * - **Bounded retries:** after `maxRetryAttempts` retries the failing record
 *   goes to the on-failure destination and the poller moves on, so a poison
 *   record never blocks the shard. (Lambda discards the rest of the batch with
 *   it; here only the failing record is discarded and the records after it get
 *   their own attempts, the effect Lambda reaches with BisectBatchOnFunctionError.)
 *
 * Polling: each shard is polled again at once while it returns records, and
 * every `pollIntervalMs` (default 100 ms) while it is idle. Lambda polls each
 * shard four times per second (every 250 ms), so the local default is a bit
 * quicker; raise it to 250 for Lambda-like delivery latency.
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

/** What the on-failure destination receives: Lambda's invocation record for a discarded stream batch, plus the record itself. */
export interface StreamFailure {
  version: '1.0';
  timestamp: string;
  requestContext: { requestId: string; condition: 'RetryAttemptsExhausted'; approximateInvokeCount: number };
  responseContext: { statusCode: number; executedVersion: string; functionError?: string };
  DDBStreamBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord?: string;
    approximateArrivalOfLastRecord?: string;
    batchSize: number;
    streamArn: string;
  };
  /** Not in Lambda's record (which points into the stream): the discarded record, for local debugging. */
  record: DynamoDBRecord;
}

export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void | null | undefined>;

export interface StreamPollerOptions {
  tableName: string;
  api: StreamsApi;
  handler: StreamHandler;
  /** Filter criteria; a record is delivered when any pattern matches. @default every record */
  filterPatterns?: readonly FilterPattern[];
  /** Largest batch, counted in records that pass the filter. @default 100 */
  batchSize?: number;
  /** Wait between polls of an idle shard. @default 100 */
  pollIntervalMs?: number;
  /** How often shards (and the table's stream ARN) are re-discovered. @default 1000 */
  discoveryIntervalMs?: number;
  /** Retries of a failing record before it goes to the on-failure destination. @default 3 */
  maxRetryAttempts?: number;
  /** First retry delay; doubles per attempt. @default 200 */
  retryBaseDelayMs?: number;
  /** @default 5000 */
  retryMaxDelayMs?: number;
  onFailure?: (failure: StreamFailure) => Promise<void> | void;
  log?: RuntimeLog;
}

interface ShardState {
  shardId: string;
  parentShardId?: string;
  /** Where to start when there is no checkpoint. */
  start: 'LATEST' | 'TRIM_HORIZON';
  /** undefined: not acquired (or expired); null: the shard is closed and fully read. */
  iterator?: string | null;
  /** Sequence number of the last record consumed (delivered, filtered out, or discarded). */
  checkpoint?: string;
  /** Records fetched but not consumed yet, in stream order. */
  buffer: DynamoDBRecord[];
  finished: boolean;
  nextPollAt: number;
  retry?: { sequenceNumber: string; attempts: number };
}

export interface StreamPollerStats {
  streamArn?: string;
  shards: number;
  invocations: number;
  delivered: number;
  filtered: number;
  retries: number;
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

export class StreamPoller {
  private readonly opts: Required<Omit<StreamPollerOptions, 'onFailure' | 'filterPatterns'>> &
    Pick<StreamPollerOptions, 'onFailure' | 'filterPatterns'>;
  private readonly shards = new Map<string, ShardState>();
  private streamArn: string | undefined;
  private started = false;
  private stopped = false;
  private loopDone: Promise<void> | undefined;
  private nextDiscoveryAt = 0;
  private wake: (() => void) | undefined;
  private readonly counters = { invocations: 0, delivered: 0, filtered: 0, retries: 0, discarded: 0, iteratorsRenewed: 0, trimmedRereads: 0 };

  constructor(options: StreamPollerOptions) {
    this.opts = {
      batchSize: 100,
      pollIntervalMs: 100,
      discoveryIntervalMs: 1000,
      maxRetryAttempts: 3,
      retryBaseDelayMs: 200,
      retryMaxDelayMs: 5000,
      log: silentLog,
      ...options,
    };
  }

  /** Discovers the stream and takes LATEST iterators for its open shards, then starts polling. */
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
      const state: ShardState = {
        shardId: shard.ShardId,
        parentShardId: shard.ParentShardId,
        // At start-up, like the ESM's startingPosition LATEST; afterwards a new shard is read from its beginning.
        start: this.started ? 'TRIM_HORIZON' : 'LATEST',
        buffer: [],
        // A shard already closed at start-up lies wholly before LATEST.
        finished: !this.started && closed,
        nextPollAt: 0,
      };
      if (!this.started && !closed) state.iterator = await this.acquire(state);
      this.shards.set(shard.ShardId, state);
    }
    // Forget finished shards the stream no longer lists (trimmed after 24 hours).
    const ids = new Set(listed.map((s) => s.ShardId));
    for (const [id, state] of this.shards) if (state.finished && !ids.has(id)) this.shards.delete(id);
  }

  /** An iterator from the checkpoint, else from the shard's start position; `fromOldest` reads from TRIM_HORIZON. */
  private async acquire(shard: ShardState, fromOldest = false): Promise<string | null> {
    const streamArn = this.streamArn;
    if (streamArn === undefined) return null;
    const input = fromOldest
      ? { type: 'TRIM_HORIZON' as const }
      : shard.checkpoint
        ? { type: 'AFTER_SEQUENCE_NUMBER' as const, sequenceNumber: shard.checkpoint }
        : { type: shard.start as ShardIteratorType };
    try {
      return (await this.opts.api.getShardIterator({ streamArn, shardId: shard.shardId, ...input })) ?? null;
    } catch (err) {
      if (errorName(err) !== 'TrimmedDataAccessException') throw err;
      this.opts.log.warn('stream poller: checkpoint is past the stream retention; continuing from the oldest record', { shardId: shard.shardId });
      return (await this.opts.api.getShardIterator({ streamArn, shardId: shard.shardId, type: 'TRIM_HORIZON' })) ?? null;
    }
  }

  /** One unit of work on a shard; true when it handled records (so the loop should not sleep). */
  private async step(shard: ShardState): Promise<boolean> {
    if (shard.buffer.length === 0) {
      await this.fetch(shard);
      if (shard.buffer.length === 0) {
        if (!shard.finished && shard.nextPollAt <= Date.now()) shard.nextPollAt = Date.now() + this.opts.pollIntervalMs;
        return false;
      }
    }
    await this.deliver(shard);
    return true;
  }

  private async fetch(shard: ShardState): Promise<void> {
    const streamArn = this.streamArn;
    if (streamArn === undefined) return;
    try {
      if (shard.iterator === undefined) shard.iterator = await this.acquire(shard);
      if (shard.iterator === null) return this.ended(shard);
      const out = await this.opts.api.getRecords(shard.iterator, GET_RECORDS_LIMIT);
      shard.iterator = out.nextShardIterator ?? null;
      for (const record of out.records) {
        // After a re-read from the oldest record, what was consumed already is skipped.
        if (shard.checkpoint !== undefined && !sequenceAfter(record.dynamodb?.SequenceNumber ?? '', shard.checkpoint)) continue;
        shard.buffer.push(toLambdaRecord(record, streamArn));
      }
      if (shard.iterator === null && shard.buffer.length === 0) this.ended(shard);
    } catch (err) {
      switch (errorName(err)) {
        case 'ExpiredIteratorException':
          // Re-acquired from the checkpoint on the next step (AFTER_SEQUENCE_NUMBER).
          this.counters.iteratorsRenewed++;
          this.opts.log.info('stream poller: shard iterator expired; renewing it from the checkpoint', { shardId: shard.shardId });
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

  private consume(shard: ShardState, count: number): void {
    if (count <= 0) return;
    const last = shard.buffer[count - 1];
    if (last) shard.checkpoint = seqOf(last);
    shard.buffer.splice(0, count);
  }

  private async deliver(shard: ShardState): Promise<void> {
    const { batchSize, filterPatterns } = this.opts;
    const batch: { record: DynamoDBRecord; index: number }[] = [];
    let end = 0;
    for (let i = 0; i < shard.buffer.length; i++) {
      const record = shard.buffer[i] as DynamoDBRecord;
      if (!filterPatterns || matchesFilter(filterPatterns, record)) {
        if (batch.length === batchSize) break;
        batch.push({ record, index: i });
      } else this.counters.filtered++;
      end = i + 1;
    }
    if (batch.length === 0) {
      this.consume(shard, end);
      return;
    }

    let failedAt: number | undefined;
    let functionError: string | undefined;
    this.counters.invocations++;
    try {
      const response = await this.opts.handler({ Records: batch.map((b) => b.record) });
      failedAt = firstFailure(response, batch);
    } catch (err) {
      functionError = errorName(err) || 'Error';
      this.opts.log.warn('stream poller: the function failed; retrying the batch', { error: err as Error });
      failedAt = 0;
    }
    if (failedAt === undefined) {
      this.counters.delivered += batch.length;
      this.consume(shard, end);
      shard.retry = undefined;
      return;
    }

    const failed = batch[failedAt] as { record: DynamoDBRecord; index: number };
    this.counters.delivered += failedAt;
    // Lambda checkpoints just before the first failed record and retries from it.
    this.consume(shard, failed.index);
    const sequenceNumber = seqOf(failed.record);
    const attempts = shard.retry?.sequenceNumber === sequenceNumber ? shard.retry.attempts + 1 : 1;
    if (attempts > this.opts.maxRetryAttempts) {
      await this.discard(shard, failed.record, attempts, functionError);
      this.consume(shard, 1);
      shard.retry = undefined;
      return;
    }
    this.counters.retries++;
    shard.retry = { sequenceNumber, attempts };
    shard.nextPollAt = Date.now() + Math.min(this.opts.retryMaxDelayMs, this.opts.retryBaseDelayMs * 2 ** (attempts - 1));
  }

  private async discard(shard: ShardState, record: DynamoDBRecord, attempts: number, functionError?: string): Promise<void> {
    this.counters.discarded++;
    const seq = seqOf(record);
    const arrival =
      record.dynamodb?.ApproximateCreationDateTime === undefined ? undefined : new Date(record.dynamodb.ApproximateCreationDateTime * 1000).toISOString();
    const failure: StreamFailure = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: { requestId: gatewayId(), condition: 'RetryAttemptsExhausted', approximateInvokeCount: attempts },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(functionError ? { functionError } : {}) },
      DDBStreamBatchInfo: {
        shardId: shard.shardId,
        startSequenceNumber: seq,
        endSequenceNumber: seq,
        approximateArrivalOfFirstRecord: arrival,
        approximateArrivalOfLastRecord: arrival,
        batchSize: 1,
        streamArn: this.streamArn ?? '',
      },
      record,
    };
    this.opts.log.warn(`stream poller: record ${seq} failed ${attempts} times; sent to the on-failure destination`, { shardId: shard.shardId });
    try {
      await this.opts.onFailure?.(failure);
    } catch (err) {
      this.opts.log.error('stream poller: the on-failure destination failed; the record is dropped', { error: err as Error });
    }
  }
}

/** Index (in the batch) of the first failed record, per Lambda's partial batch response rules; undefined when all succeeded. */
export function firstFailure(response: unknown, batch: { record: DynamoDBRecord }[]): number | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (!Array.isArray(failures) || failures.length === 0) return undefined;
  let first: number | undefined;
  for (const failure of failures as unknown[]) {
    const id = typeof failure === 'object' && failure !== null ? (failure as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    const index = typeof id === 'string' && id !== '' ? batch.findIndex((b) => seqOf(b.record) === id) : -1;
    if (index < 0) return 0; // Lambda treats a malformed or unknown identifier as a failure of the whole batch
    first = first === undefined ? index : Math.min(first, index);
  }
  return first;
}
