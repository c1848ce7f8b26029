/**
 * Batched delivery (docs/running-nodes/wire-batching.md): a connection opened with
 * `batch=true` may get several events of one cluster in one `EVENTS`
 * message; every other connection keeps one event per message. Through the
 * real parts: `$connect`, DynamoDB Local's stream, the fan-out with its
 * signed poster, and the local `@connections` endpoint over HTTP, whose
 * backend records what each connection was sent.
 */
import { randomUUID } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManagementClient } from '../../functions/core/aws.ts';
import { posterFor } from '../../functions/core/poster.ts';
import { BATCH_MESSAGE_LIMIT_BYTES, batchMessages, fanOut, type FanoutDeps } from '../../functions/core/fanout.ts';
import { connectionPk } from '../../functions/core/model.ts';
import { startManagementApi, type ManagementApi } from '../../local/management-api.ts';
import { stormPosts } from '../../bench/workload.ts';
import { mapLimit } from '../../functions/core/concurrency.ts';
import { reserveRevisions } from '../../functions/core/registry.ts';
import { FANOUT_FILTER_PATTERNS, matchesFilter } from '../../functions/core/stream-filter.ts';
import { invokeHttp, wsConnect, wsMessage } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
let stream: StreamReader;
let management: ManagementApi;
let deps: FanoutDeps;
/** Messages each connection was sent, parsed, in order. */
const sent = new Map<string, Record<string, unknown>[]>();

beforeAll(async () => {
  table = await createTestTable();
  stream = new StreamReader(table.endpoint, table.tableName);
  management = await startManagementApi(
    {
      post: (connectionId, data) => {
        sent.set(connectionId, [...(sent.get(connectionId) ?? []), JSON.parse(data.toString()) as Record<string, unknown>]);
        return Promise.resolve('delivered');
      },
      info: () => undefined,
      disconnect: () => false,
    },
    { debug() {}, info() {}, warn() {}, error() {} },
  );
  deps = { ...table.deps, poster: posterFor(createManagementClient(management.url, true), management.url) };
});

afterAll(async () => {
  deps.poster.close();
  stream.close();
  await management.close();
});

const cluster = () => `c-${randomUUID().slice(0, 8)}`;
const messagesTo = (id: string) => sent.get(id) ?? [];

describe('$connect with batch', () => {
  it.each(['maybe', 'TRUE', '1', ''])('refuses batch=%j with 400 VALIDATION_FAILED and stores nothing', async (value) => {
    const id = `bad-${randomUUID()}`;
    const result = await wsConnect(id, { clusterId: cluster(), batch: value });
    expect(result.statusCode).toBe(400);
    expect(JSON.parse(result.body ?? '{}')).toMatchObject({ type: 'ERROR', error: { code: 'VALIDATION_FAILED' } });
    expect(result.body).toContain('batch');
    const record = await table.db.send(new GetCommand({ TableName: table.tableName, Key: { pk: connectionPk(id), sk: 'WS' }, ConsistentRead: true }));
    expect(record.Item).toBeUndefined();
  });

  it('accepts batch=true and batch=false', async () => {
    expect((await wsConnect(`t-${randomUUID()}`, { clusterId: cluster(), batch: 'true' })).statusCode).toBe(200);
    expect((await wsConnect(`f-${randomUUID()}`, { clusterId: cluster(), batch: 'false' })).statusCode).toBe(200);
  });
});

describe('the fan-out', () => {
  it('sends a batched connection the events of one cluster as one EVENTS message, in revision order; a plain one gets one message per event', async () => {
    const c = cluster();
    const plain = `plain-${randomUUID()}`;
    const batched = `batched-${randomUUID()}`;
    const declined = `declined-${randomUUID()}`;
    await wsConnect(plain, { clusterId: c });
    await wsConnect(batched, { clusterId: c, batch: 'true' });
    await wsConnect(declined, { clusterId: c, batch: 'false' });
    await stream.mark();
    for (const n of ['n1', 'n2', 'n3']) await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/${n}` });
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1`, body: { metadata: { v: '2' } } });
    const result = await fanOut(deps, await stream.next());
    expect(result.batchItemFailures).toEqual([]);

    const singles = messagesTo(plain);
    expect(singles.map((m) => `${m.type}/${(m.node as { nodeId: string }).nodeId}`)).toEqual([
      'NODE_REGISTERED/n1',
      'NODE_REGISTERED/n2',
      'NODE_REGISTERED/n3',
      'NODE_UPDATED/n1',
    ]);
    expect(messagesTo(declined)).toEqual(singles);
    // One message, carrying exactly the single-event messages, in revision order.
    expect(messagesTo(batched)).toEqual([{ type: 'EVENTS', clusterId: c, events: singles }]);
    const revisions = singles.map((m) => m.revision as number);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
  });

  it('sends a lone event to a batched connection as the plain single-event message', async () => {
    const c = cluster();
    const batched = `lone-${randomUUID()}`;
    await wsConnect(batched, { clusterId: c, batch: 'true' });
    await stream.mark();
    await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/n1` });
    await fanOut(deps, await stream.next());
    expect(messagesTo(batched)).toHaveLength(1);
    expect(messagesTo(batched)[0]).toMatchObject({ type: 'NODE_REGISTERED', clusterId: c, node: { nodeId: 'n1' } });
  });

  it('never mixes clusters in one message, and a later subscribe is batched too', async () => {
    const [a, b] = [cluster(), cluster()];
    const id = `both-${randomUUID()}`;
    await wsConnect(id, { clusterId: a, batch: 'true' });
    expect((await wsMessage(id, JSON.stringify({ action: 'subscribe', clusterId: b }))).statusCode).toBe(200);
    await stream.mark();
    for (const c of [a, b, a, b]) await invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/${randomUUID().slice(0, 6)}` });
    await fanOut(deps, await stream.next());
    const got = messagesTo(id);
    expect(got.map((m) => [m.type, m.clusterId])).toEqual([
      ['EVENTS', a],
      ['EVENTS', b],
    ]);
    for (const m of got) {
      const events = m.events as { clusterId: string }[];
      expect(events).toHaveLength(2);
      expect(events.every((e) => e.clusterId === m.clusterId)).toBe(true);
    }
  });
});

describe('a storm', () => {
  it('reaches a batched connection in the EVENTS messages `roster cost` counts (each within a 32 KB frame), a plain one in a message per event', async () => {
    const c = cluster();
    const plain = `plain-${randomUUID()}`;
    const batched = `batched-${randomUUID()}`;
    await wsConnect(plain, { clusterId: c });
    await wsConnect(batched, { clusterId: c, batch: 'true' });
    // Revisions of three digits from here on, and ids of one width: every event of the storm is the same size.
    await reserveRevisions(table.deps, c, 99, new Date().toISOString());
    await stream.mark();
    const STORM = 250;
    const metadata = { zone: 'eu-west-1a', role: 'x'.repeat(1000) };
    const ids = Array.from({ length: STORM }, (_, i) => `n${String(i).padStart(3, '0')}`);
    await mapLimit(ids, 16, (n) => invokeHttp({ method: 'PUT', path: `/v1/clusters/${c}/nodes/${n}`, body: { metadata } }));
    // The event source mapping hands the fan-out a storm in full batches of the records its filter passes
    // (infra/fanout.ts: batchSize 100; https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    const records = (await stream.next()).filter((r) => matchesFilter(FANOUT_FILTER_PATTERNS, r));
    const BATCH = 100;
    for (let i = 0; i < records.length; i += BATCH) expect((await fanOut(deps, records.slice(i, i + BATCH))).batchItemFailures).toEqual([]);

    const singles = messagesTo(plain);
    expect(singles).toHaveLength(STORM);
    const got = messagesTo(batched);
    const eventBytes = Math.max(...singles.map((m) => Buffer.byteLength(JSON.stringify(m))));
    expect(eventBytes).toBeGreaterThan(1024);
    const predicted = stormPosts({ events: STORM, eventBytes, batchSize: BATCH, plain: 1, batched: 1 });
    expect(got).toHaveLength(predicted.perBatched);
    expect(predicted.posts).toBe(STORM + got.length);
    // Far fewer messages than events, each one frame (API Gateway closes a connection sent a larger one), none lost or repeated.
    expect(got.length).toBeLessThan(STORM / 10);
    for (const m of got) {
      expect(m.type).toBe('EVENTS');
      expect(Buffer.byteLength(JSON.stringify(m))).toBeLessThanOrEqual(32 * 1024);
      const revisions = (m.events as { revision: number }[]).map((e) => e.revision);
      expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);
    }
    const carried = got.flatMap((m) => m.events as { revision: number }[]);
    expect(carried.map((e) => e.revision).sort((a, b) => a - b)).toEqual(singles.map((e) => e.revision as number).sort((a, b) => a - b));
  });
});

describe('batchMessages', () => {
  it('splits a long run of events into messages under the PostToConnection limit, in order', () => {
    const event = (i: number) => JSON.stringify({ type: 'NODE_REGISTERED', clusterId: 'c', revision: i, pad: 'x'.repeat(4000) });
    const events = Array.from({ length: 100 }, (_, i) => event(i + 1));
    const messages = batchMessages('c', events);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(BATCH_MESSAGE_LIMIT_BYTES);
    const all = messages.flatMap((m) => (JSON.parse(m) as { events: { revision: number }[] }).events.map((e) => e.revision));
    expect(all).toEqual(events.map((_, i) => i + 1));
  });
});
