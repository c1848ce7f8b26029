/**
 * Reads the table's real stream from DynamoDB Local, so tests can see which
 * records a write produced and what the fan-out filter does with them.
 */
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
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

export class StreamReader {
  private readonly streams: DynamoDBStreamsClient;
  private readonly tables: DynamoDBClient;
  private seen = 0;

  constructor(endpoint: string, private readonly tableName: string) {
    this.streams = new DynamoDBStreamsClient(localOverrides(endpoint));
    this.tables = new DynamoDBClient(localOverrides(endpoint));
  }

  /** Every record of the stream so far, shaped like the records Lambda passes to the fan-out. */
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
   * moment after it returns, so read until two reads 100 ms apart agree.
   */
  async next(): Promise<DynamoDBRecord[]> {
    let records = await this.all();
    for (let stable = 0; stable < 2; ) {
      await new Promise((r) => setTimeout(r, 100));
      const again = await this.all();
      stable = again.length === records.length ? stable + 1 : 0;
      records = again;
    }
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
