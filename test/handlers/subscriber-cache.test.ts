/**
 * The fan-out keeps each cluster's subscriber list between events and reads
 * it again only when the cluster's subscriptions version moved
 * (functions/core/subscriber-cache.ts, `SubscriberCache`). On real stream records
 * from DynamoDB Local, one cache across several events, as one execution
 * environment of the fan-out holds it: every change a client makes —
 * subscribing on connect or by message, unsubscribing, disconnecting, a 410 —
 * is seen by the very next event.
 */
import { randomUUID } from 'node:crypto';
import { DeleteCommand, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SubscriberCache } from '../../functions/core/subscriber-cache.ts';
import type { Poster } from '../../functions/core/poster.ts';
import { fanOut, YOUNG_CONNECTION_MS, type FanoutDeps } from '../../functions/core/fanout.ts';
import { mapLimit } from '../../functions/core/concurrency.ts';
import { SUBSCRIPTIONS_VERSION_SHARDS, subscriptionPk, subscriptionSk, subscriptionsVersionKey, versionShardOf } from '../../functions/core/model.ts';
import { invokeHttp, wsConnect, wsDisconnect, wsMessage } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
let stream: StreamReader;

beforeAll(async () => {
  table = await createTestTable();
  stream = new StreamReader(table.endpoint, table.tableName);
});
afterAll(() => stream.close());

/** A fan-out with one cache for all its events, recording who each event was posted to; `gone` connections answer 410. */
function fanout(gone: Set<string> = new Set()) {
  let posted: string[] = [];
  const poster: Poster = {
    post(connectionId) {
      if (gone.has(connectionId)) return Promise.resolve('gone');
      posted.push(connectionId);
      return Promise.resolve('delivered');
    },
    close: () => undefined,
  };
  // Old enough connections: a 410 means gone.
  const deps: FanoutDeps = { ...table.deps, now: () => Date.now() + YOUNG_CONNECTION_MS + 1, poster, subscriberCache: new SubscriberCache() };
  /** Registers a node of `cluster` and fans its event out; the connections it was posted to. */
  return async (cluster: string): Promise<string[]> => {
    await stream.mark();
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${cluster}/nodes/n-${randomUUID().slice(0, 8)}` });
    posted = [];
    const result = await fanOut(deps, await stream.next());
    expect(result.batchItemFailures).toEqual([]);
    return [...posted].sort();
  };
}

const id = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

describe('the fan-out’s subscriber lists, kept between events', () => {
  it('sees a connection that subscribes after the list was read, on connect or by message', async () => {
    const c = id('c');
    const [a, b, m] = [id('a'), id('b'), id('m')];
    const event = fanout();
    await wsConnect(a, { clusterId: c });
    expect(await event(c)).toEqual([a]);
    await wsConnect(b, { clusterId: c });
    expect(await event(c)).toEqual([a, b].sort());
    await wsConnect(m, {});
    expect((await wsMessage(m, JSON.stringify({ action: 'subscribe', clusterId: c }))).statusCode).toBe(200);
    expect(await event(c)).toEqual([a, b, m].sort());
  });

  it('stops posting to a connection that unsubscribed or disconnected', async () => {
    const c = id('c');
    const [a, b, d] = [id('a'), id('b'), id('d')];
    const event = fanout();
    for (const conn of [a, b, d]) await wsConnect(conn, { clusterId: c });
    expect(await event(c)).toEqual([a, b, d].sort());
    expect((await wsMessage(a, JSON.stringify({ action: 'unsubscribe', clusterId: c }))).statusCode).toBe(200);
    expect(await event(c)).toEqual([b, d].sort());
    await wsDisconnect(d);
    expect(await event(c)).toEqual([b]);
  });

  it('drops a connection that answered 410 from the next event’s list', async () => {
    const c = id('c');
    const [a, b] = [id('a'), id('b')];
    const gone = new Set<string>();
    const event = fanout(gone);
    await wsConnect(a, { clusterId: c });
    await wsConnect(b, { clusterId: c });
    expect(await event(c)).toEqual([a, b].sort());
    gone.add(a);
    expect(await event(c)).toEqual([b]);
    gone.delete(a); // were `a` still listed, it would be posted to again
    expect(await event(c)).toEqual([b]);
  });

  it('reads a list again only when its version moved: a subscription removed behind the version’s back is still posted to', async () => {
    // Why every change to subscriptions must go through subscriptions.ts: this is what a change that skips the version costs.
    const c = id('c');
    const [a, b] = [id('a'), id('b')];
    const event = fanout();
    await wsConnect(a, { clusterId: c });
    await wsConnect(b, { clusterId: c });
    expect(await event(c)).toEqual([a, b].sort());
    await table.db.send(new DeleteCommand({ TableName: table.tableName, Key: { pk: subscriptionPk(c), sk: subscriptionSk(b) } }));
    expect(await event(c)).toEqual([a, b].sort());
    // A fan-out without a held list (a new execution environment) reads the table as it is.
    expect(await fanout()(c)).toEqual([a]);
  });

  it('counts changes in the shard of their connection, and sees a change counted in any of the shards', async () => {
    const c = id('c');
    const event = fanout();
    const first = id('first');
    await wsConnect(first, { clusterId: c });
    expect(await event(c)).toEqual([first]);
    // One connection per shard, each after the list was last read: the next event must be posted to it.
    const subscribed = [first];
    for (let shard = 0; shard < SUBSCRIPTIONS_VERSION_SHARDS; shard++) {
      let conn = id('s');
      while (versionShardOf(conn) !== shard) conn = id('s');
      await wsConnect(conn, { clusterId: c });
      subscribed.push(conn);
      expect(await event(c), `a connection counted in shard ${shard}`).toEqual([...subscribed].sort());
    }
  });

  it('spreads a wave of connections over the shards: no one version item takes every write', async () => {
    const c = id('c');
    const wave = Array.from({ length: 128 }, () => id('w'));
    await mapLimit(wave, 8, (conn) => wsConnect(conn, { clusterId: c }));
    const counts = await Promise.all(
      Array.from({ length: SUBSCRIPTIONS_VERSION_SHARDS }, async (_, shard) => {
        const out = await table.db.send(new GetCommand({ TableName: table.tableName, Key: subscriptionsVersionKey(c, shard), ConsistentRead: true }));
        return Number(out.Item?.version ?? 0);
      }),
    );
    expect(counts.reduce((a, b) => a + b, 0)).toBe(128);
    // 8 a shard on average; random connection ids put more than 24 in one shard with a probability under one in a million.
    expect(Math.max(...counts)).toBeLessThanOrEqual(24);
    expect(await fanout()(c)).toEqual([...wave].sort());
  });
});
