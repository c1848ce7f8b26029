/**
 * Which items the table writes, and how often: the bench reads the table's
 * own stream (every change of an item is one record, whatever wrote it: a
 * handler, the sweeper) with the local runtime's stream poller, and counts
 * the records per item and per second. The busiest item's writes in one
 * second is what DynamoDB's per-item limit (1,000 write units a second)
 * would meet; the writes by where they land are what `roster capacity`
 * predicts (bench/workload.ts `WRITE_LOCATIONS`). Index writes are not in
 * the stream, and a write that changes nothing makes no record.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBRecord } from 'aws-lambda';
import { localOverrides } from '../functions/core/aws.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from '../functions/core/stream-filter.ts';
import { CLUSTERS_PK, META_SK, NODE_SK_PREFIX, SUBSCRIPTION_SK_PREFIX } from '../functions/core/model.ts';
import { sdkStreamsApi, StreamPoller } from '../local/stream-poller.ts';
import type { WriteLocation } from './workload.ts';

/** Where a record's item lives, in the planner's words (`WriteLocation`, without the index, which has no records). */
export function locationOf(pk: string, sk: string): Exclude<WriteLocation, 'index'> | 'other' {
  if (pk.startsWith('C#')) return sk === META_SK ? 'meta' : sk.startsWith(NODE_SK_PREFIX) ? 'node' : 'other';
  if (pk.startsWith('S#')) return sk.startsWith(SUBSCRIPTION_SK_PREFIX) ? 'subscription' : sk.startsWith('VERSION') ? 'version' : 'other';
  if (pk.startsWith('WS#')) return 'connection';
  if (pk === CLUSTERS_PK) return 'clusters';
  return 'other';
}

export interface WritesWindow {
  seconds: number;
  /** Item writes (stream records) by where they land, per second over the window. */
  perSecond: Record<string, number>;
  /** The item written most in one second of the window, and how often. */
  busiest: { item: string; writes: number; at: string } | undefined;
}

/** A write the fan-out acts on, as the bench read it from the stream: an event, or a subscription made or removed. */
export interface EventArrival {
  /** When the bench read it (epoch ms): a poll after the write. */
  at: number;
  clusterId: string;
  /** An event (the fan-out's filter passes it: NODE_REGISTERED, NODE_DOWN, …), a lease cut by a dropped connection, or a subscription's record written or deleted. */
  kind: 'event' | 'cut' | 'subscribed' | 'unsubscribed';
  /** The node, for an event or a cut. */
  nodeId?: string;
}

export class ItemWrites {
  /** Per second (epoch s): writes per item. */
  private readonly seconds = new Map<number, Map<string, number>>();
  /** Every event, lease cut and subscription change, in the order read. */
  private readonly arrivals: EventArrival[] = [];
  private readonly poller: StreamPoller;
  private readonly dynamodb: DynamoDBClient;
  private readonly streams: DynamoDBStreamsClient;

  constructor(endpoint: string, tableName: string) {
    this.dynamodb = new DynamoDBClient(localOverrides(endpoint));
    this.streams = new DynamoDBStreamsClient(localOverrides(endpoint));
    this.poller = new StreamPoller({
      tableName,
      api: sdkStreamsApi(this.dynamodb, this.streams),
      batchSize: 1000,
      handler: (event) => {
        for (const record of event.Records) this.count(record);
        return Promise.resolve();
      },
    });
  }

  private count(record: DynamoDBRecord): void {
    const pk = record.dynamodb?.Keys?.pk?.S ?? '';
    const sk = record.dynamodb?.Keys?.sk?.S ?? '';
    // When the bench read it, a poll (at most 250 ms) after the write: DynamoDB Local's ApproximateCreationDateTime is
    // rounded down to the minute.
    const second = Math.floor(Date.now() / 1000);
    let items = this.seconds.get(second);
    if (!items) this.seconds.set(second, (items = new Map()));
    const key = `${pk} ${sk}`;
    items.set(key, (items.get(key) ?? 0) + 1);
    const at = Date.now();
    if (pk.startsWith('C#') && sk.startsWith(NODE_SK_PREFIX)) {
      const node = { at, clusterId: pk.slice('C#'.length), nodeId: sk.slice(NODE_SK_PREFIX.length) };
      if (matchesFilter(FANOUT_FILTER_PATTERNS, record)) this.arrivals.push({ ...node, kind: 'event' });
      // The lease cut of a dropped connection (lease.ts `cutLease`) sets `cutReason` on an UP node.
      else if (record.dynamodb?.NewImage?.cutReason !== undefined && record.dynamodb.OldImage?.cutReason === undefined) this.arrivals.push({ ...node, kind: 'cut' });
    } else if (pk.startsWith('S#') && sk.startsWith(SUBSCRIPTION_SK_PREFIX) && record.eventName !== 'MODIFY') {
      this.arrivals.push({ at, clusterId: pk.slice('S#'.length), kind: record.eventName === 'REMOVE' ? 'unsubscribed' : 'subscribed' });
    }
  }

  /** The events and subscription changes read in [fromMs, toMs) (epoch ms). */
  events(fromMs: number, toMs: number): EventArrival[] {
    return this.arrivals.filter((a) => a.at >= fromMs && a.at < toMs);
  }

  start(): Promise<void> {
    return this.poller.start();
  }

  /** The writes of [fromMs, toMs) (epoch ms; whole seconds inside it). */
  window(fromMs: number, toMs: number): WritesWindow {
    const first = Math.ceil(fromMs / 1000);
    const last = Math.floor(toMs / 1000);
    const seconds = Math.max(1, last - first);
    const totals: Record<string, number> = {};
    let busiest: WritesWindow['busiest'];
    for (let s = first; s < last; s++) {
      for (const [item, writes] of this.seconds.get(s) ?? []) {
        const [pk = '', sk = ''] = item.split(' ');
        const where = locationOf(pk, sk);
        totals[where] = (totals[where] ?? 0) + writes;
        if (!busiest || writes > busiest.writes) busiest = { item, writes, at: new Date(s * 1000).toISOString() };
      }
    }
    const perSecond = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Number((v / seconds).toFixed(2))]));
    return { seconds, perSecond, busiest };
  }

  async stop(): Promise<void> {
    await this.poller.stop();
    this.dynamodb.destroy();
    this.streams.destroy();
  }
}
