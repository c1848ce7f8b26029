/**
 * The filter patterns as synthesized into the CDK template, evaluated against
 * real stream records that DynamoDB Local produced for every kind of write the
 * handlers make: exactly the event-producing writes pass.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DynamoDBRecord } from 'aws-lambda';
import { matchesFilter, type FilterPattern } from '../../functions/core/stream-filter.ts';
import { newSweeperState, sweep } from '../../functions/core/sweeper.ts';
import { invokeHttp, wsConnect, wsDisconnect, wsMessage } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';
import { sleep } from '../support/wait.ts';
import { resourcesOfType, synthRoster } from '../infra/support.ts';

let table: TestTable;
let stream: StreamReader;
let patterns: FilterPattern[];

/** The lease left to a node whose connection dropped. */
const GRACE_SECONDS = 0.5;
/**
 * The node's lease: long enough that it still has more than the grace left when its connection drops, however slow
 * a loaded machine makes the steps before (with 2 s, a box at load 12 reached $disconnect with less than the grace
 * left, and the cut rightly wrote nothing).
 */
const LEASE_SECONDS = 60;

beforeAll(async () => {
  table = await createTestTable({ DISCONNECT_GRACE_SECONDS: String(GRACE_SECONDS) });
  stream = new StreamReader(table.endpoint, table.tableName);
  const { json } = synthRoster();
  const [mapping] = resourcesOfType(json, 'AWS::Lambda::EventSourceMapping');
  const filters = (mapping?.[1].Properties?.FilterCriteria as { Filters: { Pattern: string }[] }).Filters;
  patterns = filters.map((f) => JSON.parse(f.Pattern) as FilterPattern);
});
afterAll(() => stream.close());


/** Performs one kind of write and returns the stream records it produced. */
async function recordsOf(write: () => Promise<unknown>): Promise<DynamoDBRecord[]> {
  await stream.mark();
  await write();
  const records = await stream.next();
  expect(records.length).toBeGreaterThan(0);
  return records;
}

const passed = (records: DynamoDBRecord[]) => records.filter((r) => matchesFilter(patterns, r));
const nodeRecords = (records: DynamoDBRecord[]) => records.filter((r) => r.dynamodb?.Keys?.sk?.S?.startsWith('N#'));

it('passes exactly the records of event-producing writes, and drops keepalives and bookkeeping', async () => {
  const c = `c-${randomUUID().slice(0, 8)}`;
  const path = `/v1/clusters/${c}/nodes/n1`;
  const eventOf = (records: DynamoDBRecord[]) => passed(records).map((r) => r.dynamodb?.NewImage?.ev?.S);

  // Event-producing writes: one record each passes, and it is the node's.
  expect(eventOf(await recordsOf(() => invokeHttp({ method: 'PUT', path, body: { metadata: { v: '1' } } })))).toEqual(['NODE_REGISTERED']);
  expect(eventOf(await recordsOf(() => invokeHttp({ method: 'PUT', path, body: { metadata: { v: '2' } } })))).toEqual(['NODE_UPDATED']);
  expect(eventOf(await recordsOf(() => invokeHttp({ method: 'DELETE', path })))).toEqual(['NODE_DOWN']);
  expect(eventOf(await recordsOf(() => invokeHttp({ method: 'PUT', path, body: { leaseSeconds: LEASE_SECONDS } })))).toEqual(['NODE_REGISTERED']);

  // Writes that produce no event: each wrote the node item (so the stream saw it), and nothing passes.
  const quiet: [string, () => Promise<unknown>][] = [
    ['keepalive', () => invokeHttp({ method: 'POST', path: `${path}/keepalive`, body: {} })],
    ['renewal with nothing changed', () => invokeHttp({ method: 'PUT', path, body: { leaseSeconds: LEASE_SECONDS } })],
    ['bind on $connect', () => wsConnect('conn-filter', { clusterId: c, nodeId: 'n1' })],
    ['lease cut on $disconnect', () => wsDisconnect('conn-filter')],
  ];
  for (const [name, write] of quiet) {
    const records = await recordsOf(write);
    expect(nodeRecords(records).length, name).toBeGreaterThan(0);
    expect(passed(records), name).toEqual([]);
  }

  // Subscription bookkeeping never passes either.
  await wsConnect('conn-watch', { clusterId: c });
  expect(passed(await recordsOf(() => wsMessage('conn-watch', JSON.stringify({ action: 'subscribe', clusterId: `${c}-2` }))))).toEqual([]);

  // The sweeper's UP → DOWN passes, with its reason; its heartbeat does not.
  // Time passing is the behaviour: the lease cut on $disconnect runs out after the grace.
  await sleep(GRACE_SECONDS * 1000 + 200);
  const swept = await recordsOf(() => sweep(table.deps, newSweeperState()));
  expect(passed(swept).map((r) => [r.dynamodb?.NewImage?.ev?.S, r.dynamodb?.NewImage?.downReason?.S])).toEqual([
    ['NODE_DOWN', 'disconnected'],
  ]);
  expect(swept.some((r) => r.dynamodb?.Keys?.pk?.S === 'SWEEPER')).toBe(true);
});
