/**
 * The fan-out's failure paths, on real stream records from DynamoDB Local.
 * PostToConnection is stubbed here only to produce what a real endpoint cannot
 * be made to produce on demand: a 410 for a chosen connection, and a post
 * that still fails after its retries. The poster itself, against a real HTTP
 * endpoint, is tested in test/handlers/poster.test.ts, and the
 * fan-out at the account's request quota (429s, the post rate, the ledger)
 * against a real HTTP endpoint in test/handlers/fanout-quota.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Poster } from '../../functions/core/poster.ts';
import { fanOut, YOUNG_CONNECTION_MS, type FanoutDeps } from '../../functions/core/fanout.ts';
import { connectionPk, nodeItemKey, subscriptionPk, subscriptionSk } from '../../functions/core/model.ts';
import { invokeHttp, wsConnect } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
let stream: StreamReader;

beforeAll(async () => {
  table = await createTestTable();
  stream = new StreamReader(table.endpoint, table.tableName);
});
afterAll(() => stream.close());

/** A PostToConnection stand-in that answers per connection id ('throttle': still failing after the poster's retries). */
function stubConnections(answer: (connectionId: string) => 'ok' | 'gone' | 'throttle') {
  const posts: { connectionId: string; data: unknown }[] = [];
  const client: Poster = {
    post(connectionId, payload) {
      const outcome = answer(connectionId);
      if (outcome === 'gone') return Promise.resolve('gone');
      if (outcome === 'throttle') return Promise.resolve('failed');
      posts.push({ connectionId, data: JSON.parse(payload.body.toString()) });
      return Promise.resolve('delivered');
    },
    close: () => undefined,
  };
  return { client, posts };
}

async function exists(key: { pk: string; sk: string }): Promise<boolean> {
  const out = await table.db.send(new GetCommand({ TableName: table.tableName, Key: key, ConsistentRead: true }));
  return out.Item !== undefined;
}

describe('fan-out failures', () => {
  it('removes a connection that answers 410 and cuts the lease of the node it bound', async () => {
    const c = `c-${randomUUID().slice(0, 8)}`;
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1`, body: { leaseSeconds: 60 } });
    const conn = `gone-${randomUUID()}`;
    await wsConnect(conn, { clusterId: c, nodeId: 'n1' });
    await stream.mark();
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n2` });
    const records = await stream.next();

    // Pretend the connection is old enough that a 410 means it is really gone.
    const later = Date.now() + YOUNG_CONNECTION_MS + 1;
    const { client } = stubConnections(() => 'gone');
    const deps: FanoutDeps = { ...table.deps, now: () => later, poster: client };
    const result = await fanOut(deps, records);

    expect(result.gone).toBe(1);
    expect(result.batchItemFailures).toEqual([]);
    expect(await exists({ pk: connectionPk(conn), sk: 'WS' })).toBe(false);
    expect(await exists({ pk: subscriptionPk(c), sk: subscriptionSk(conn) })).toBe(false);
    const node = await table.db.send(new GetCommand({ TableName: table.tableName, Key: nodeItemKey(c, 'n1'), ConsistentRead: true }));
    expect(node.Item?.cutReason).toBe('disconnected');
    expect(Number(node.Item?.expiresAt)).toBeLessThan(Date.now() + 60_000);
  });

  it('keeps a connection that answers 410 while it is still being established', async () => {
    const c = `c-${randomUUID().slice(0, 8)}`;
    const conn = `young-${randomUUID()}`;
    await wsConnect(conn, { clusterId: c });
    await stream.mark();
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1` });
    const { client } = stubConnections(() => 'gone');
    const result = await fanOut({ ...table.deps, poster: client }, await stream.next());
    expect(result.gone).toBe(1);
    expect(await exists({ pk: subscriptionPk(c), sk: subscriptionSk(conn) })).toBe(true);
  });

  it('reports the first record of a cluster it could not deliver as a batch item failure and retries from there, keeping order', async () => {
    const c = `c-${randomUUID().slice(0, 8)}`;
    const ok = `ok-${randomUUID()}`;
    const slow = `slow-${randomUUID()}`;
    await wsConnect(ok, { clusterId: c });
    await wsConnect(slow, { clusterId: c });
    await stream.mark();
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1` });
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n2` });
    const records = await stream.next();
    const eventRecords = records.filter((r) => r.dynamodb?.NewImage?.ev !== undefined);
    expect(eventRecords).toHaveLength(2);

    let throttled = true;
    const { client, posts } = stubConnections((id) => (id === slow && throttled ? 'throttle' : 'ok'));
    const nodesTo = (id: string) => posts.filter((p) => p.connectionId === id).map((p) => (p.data as { node: { nodeId: string } }).node.nodeId);
    const first = await fanOut({ ...table.deps, poster: client }, records);
    // Both events are one cluster's: the group fails as a whole, from its first record.
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: eventRecords[0]?.dynamodb?.SequenceNumber }]);
    expect(nodesTo(ok)).toEqual(['n1', 'n2']);
    expect(nodesTo(slow)).toEqual([]); // n2 was not posted after n1 failed: never out of order

    // Lambda retries from the failed record on; once the fault clears, everything is delivered in order, and the
    // fan-out's ledger keeps the retry from posting again what `ok` already acknowledged.
    throttled = false;
    const failedAt = records.findIndex((r) => r.dynamodb?.SequenceNumber === first.batchItemFailures[0]?.itemIdentifier);
    const retry = await fanOut({ ...table.deps, poster: client }, records.slice(failedAt));
    expect(retry.batchItemFailures).toEqual([]);
    expect(nodesTo(slow)).toEqual(['n1', 'n2']);
    expect(nodesTo(ok)).toEqual(['n1', 'n2']);
  });

  it('ignores records that do not pass the filter even if a trigger delivers them', async () => {
    const c = `c-${randomUUID().slice(0, 8)}`;
    const conn = `conn-${randomUUID()}`;
    await wsConnect(conn, { clusterId: c });
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1` });
    await stream.mark();
    await invokeHttp({ method: 'POST', path: `/v1/clusters/${c}/nodes/n1/keepalive` });
    const records = await stream.next();
    expect(records.length).toBeGreaterThan(0);
    const { client, posts } = stubConnections(() => 'ok');
    await fanOut({ ...table.deps, poster: client }, records);
    expect(posts).toEqual([]);
  });
});
