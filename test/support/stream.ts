/**
 * Reads the table's real stream from DynamoDB Local, so tests can see which
 * records a write produced and what the fan-out filter does with them.
 */
import { randomUUID } from 'node:crypto';
import { DeleteItemCommand, DescribeTableCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { localOverrides } from '../../functions/core/aws.ts';
import { toEvent, type MembershipEvent, type NodeItem } from '../../functions/core/model.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from '../../functions/core/stream-filter.ts';
import { eventually } from './wait.ts';

/** The partition of the reader's own barrier items (see `next`); no Roster item lives there. */
const BARRIER_PK = 'TEST#stream-barrier';
const isBarrier = (r: DynamoDBRecord): boolean => r.dynamodb?.Keys?.pk?.S === BARRIER_PK;

export class StreamReader {
  private readonly streams: DynamoDBStreamsClient;
  private readonly tables: DynamoDBClient;
  private seen = 0;

  constructor(endpoint: string, private readonly tableName: string) {
    this.streams = new DynamoDBStreamsClient(localOverrides(endpoint));
    this.tables = new DynamoDBClient(localOverrides(endpoint));
  }

  /** Every record of the stream so far (the reader's barriers included), shaped like the records Lambda passes to the fan-out. */
  async all(): Promise<DynamoDBRecord[]> {
    const table = await this.tables.send(new DescribeTableCommand({ TableName: this.tableName }));
    const streamArn = table.Table?.LatestStreamArn;
    if (!streamArn) throw new Error('table has no stream');
    const description = await this.streams.send(new DescribeStreamCommand({ StreamArn: streamArn }));
    const records: DynamoDBRecord[] = [];
    for (const shard of description.StreamDescription?.Shards ?? []) {
      const iterator = await this.streams.send(
        new GetShardIteratorCommand({ StreamArn: streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
      );
      let next = iterator.ShardIterator;
      // An open shard always returns a next iterator; stop when a page comes back empty.
      while (next) {
        const page = await this.streams.send(new GetRecordsCommand({ ShardIterator: next, Limit: 1000 }));
        const got = page.Records ?? [];
        records.push(...(got as unknown as DynamoDBRecord[]));
        if (got.length === 0) break;
        next = page.NextShardIterator;
      }
    }
    return records.sort((a, b) => (BigInt(a.dynamodb?.SequenceNumber ?? 0) < BigInt(b.dynamodb?.SequenceNumber ?? 0) ? -1 : 1));
  }

  /**
   * Records written since the previous call. A write shows up in the stream a
   * moment after it returns, so this writes (and deletes) a barrier item of
   * its own and reads until the barrier's records show: every write made
   * before it shows by then too (a shard's records are read in order).
   */
  async next(): Promise<DynamoDBRecord[]> {
    const barrier = { pk: { S: BARRIER_PK }, sk: { S: randomUUID() } };
    await this.tables.send(new PutItemCommand({ TableName: this.tableName, Item: barrier }));
    await this.tables.send(new DeleteItemCommand({ TableName: this.tableName, Key: barrier }));
    const passed = (r: DynamoDBRecord) => isBarrier(r) && r.eventName === 'REMOVE' && r.dynamodb?.Keys?.sk?.S === barrier.sk.S;
    const records = await eventually(async () => {
      const all = await this.all();
      return all.some(passed) && all.filter((r) => !isBarrier(r));
    }, 10_000, 'the stream to show the barrier');
    const fresh = records.slice(this.seen);
    this.seen = records.length;
    return fresh;
  }

  /** Skips everything written so far. */
  async mark(): Promise<void> {
    await this.next();
  }

  /** The membership events among records: those the fan-out filter passes. */
  static events(records: DynamoDBRecord[]): MembershipEvent[] {
    return records
      .filter((r) => matchesFilter(FANOUT_FILTER_PATTERNS, r))
      .map((r) => toEvent(unmarshall(r.dynamodb?.NewImage as Record<string, AttributeValue>) as NodeItem))
      .filter((e): e is MembershipEvent => e !== undefined);
  }

  close(): void {
    this.streams.destroy();
    this.tables.destroy();
  }
}
