/**
 * The list's pages (functions/core/list-page.ts) on DynamoDB Local: the
 * cursor, the page limits (nodes and bytes), the walk's one revision, the
 * walk the server cannot continue (410), and the list route's bad input;
 * the gzip negotiation of functions/core/http-handler.ts.
 */
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIST_PAGE_MAX, type NodeList } from '@roster/contract';
import { acceptsGzip, GZIP_MIN_BYTES } from '../../functions/core/http-handler.ts';
import { pageBytesOf, readPage } from '../../functions/core/list-page.ts';
import { metaKey } from '../../functions/core/model.ts';
import { deregister, listNodes, register } from '../../functions/core/registry.ts';
import { handler as listHandler } from '../../functions/http/list-nodes.ts';
import { httpEvent, invokeHttp } from '../support/events.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;

beforeAll(async () => {
  table = await createTestTable();
});

afterAll(() => table.db.destroy());

const cluster = () => `c-${randomUUID().slice(0, 8)}`;
const ids = (list: { nodes: { nodeId: string }[] }) => list.nodes.map((n) => n.nodeId);
const listPath = (c: string) => `/v1/clusters/${c}/nodes`;
const get = (c: string, query: Record<string, string> = {}) => invokeHttp({ method: 'GET', path: listPath(c), query });

/** A cluster with nodes n00..n{count-1}; those in `down` deregistered. */
async function clusterOf(count: number, down: number[] = [], metadata: Record<string, string> = {}): Promise<string> {
  const c = cluster();
  for (let i = 0; i < count; i++) await register(table.deps, c, `n${String(i).padStart(2, '0')}`, { metadata });
  for (const i of down) await deregister(table.deps, c, `n${String(i).padStart(2, '0')}`);
  return c;
}

/** Every page of a walk through the list route, from the first. */
async function walk(c: string, query: Record<string, string>): Promise<NodeList[]> {
  const pages: NodeList[] = [];
  let next: string | undefined;
  do {
    const res = await get(c, next === undefined ? query : { ...query, cursor: next });
    expect(res.status, res.text).toBe(200);
    const page = res.json as NodeList;
    pages.push(page);
    next = page.next;
  } while (next !== undefined);
  return pages;
}

describe('the pages of a list', () => {
  it('come in node id order at one revision, and together are the whole list, for the healthy list and with status=all', async () => {
    // DOWN nodes between the UP ones: the healthy list's pages skip them, across DynamoDB's own pages.
    const c = await clusterOf(11, [1, 2, 3, 7]);
    const whole = (await listNodes(table.deps, c)) as NodeList;
    expect(ids(whole)).toEqual(['n00', 'n04', 'n05', 'n06', 'n08', 'n09', 'n10']);

    const pages = await walk(c, { limit: '3' });
    expect(pages.map(ids)).toEqual([['n00', 'n04', 'n05'], ['n06', 'n08', 'n09'], ['n10']]);
    expect(new Set(pages.map((p) => p.revision))).toEqual(new Set([whole.revision]));
    expect(pages.flatMap((p) => p.nodes)).toEqual(whole.nodes);

    const all = await walk(c, { status: 'all', limit: '4' });
    expect(all.map((p) => p.nodes.length)).toEqual([4, 4, 3]);
    expect(all.flatMap((p) => p.nodes).map((n) => `${n.nodeId}:${n.status}`)).toEqual(
      ((await listNodes(table.deps, c, { all: true })) as NodeList).nodes.map((n) => `${n.nodeId}:${n.status}`),
    );
  });

  it('end with the last node: a page that takes exactly what is left has no next', async () => {
    const c = await clusterOf(6);
    const pages = await walk(c, { limit: '3' });
    expect(pages.map(ids)).toEqual([['n00', 'n01', 'n02'], ['n03', 'n04', 'n05']]);
    expect(pages[1]?.next).toBeUndefined();
    // The healthy list of a cluster whose last nodes are DOWN ends where its last UP node is.
    const c2 = await clusterOf(5, [3, 4]);
    expect((await walk(c2, { limit: '3' })).map((p) => [ids(p), p.next === undefined])).toEqual([[['n00', 'n01', 'n02'], true]]);
  });

  it('keep the revision of the walk while the cluster changes, and show later changes in the nodes\' own revisions', async () => {
    const c = await clusterOf(4);
    const first = (await get(c, { limit: '2' })).json as NodeList;
    await register(table.deps, c, 'n03', { metadata: { v: '2' } }); // a change on the next page, after the first was read
    const second = (await get(c, { limit: '2', cursor: first.next ?? '' })).json as NodeList;
    expect(second.revision).toBe(first.revision);
    expect(second.nodes.find((n) => n.nodeId === 'n03')).toMatchObject({ metadata: { v: '2' }, revision: first.revision + 1 });
  });

  it('end before their nodes would outgrow the byte budget, and always hold one node', async () => {
    const c = await clusterOf(5, [], { pad: 'x'.repeat(2000) });
    const whole = (await listNodes(table.deps, c)) as NodeList;
    const size = pageBytesOf(whole.nodes[0] as NonNullable<(typeof whole.nodes)[0]>);
    const two = await readPage(table.deps, c, { all: false, limit: 100, maxBytes: 2 * size + size / 2 });
    expect(ids(two)).toEqual(['n00', 'n01']);
    expect(two.more).toBe(true);
    const one = await readPage(table.deps, c, { all: false, limit: 100, maxBytes: 10 });
    expect(ids(one)).toEqual(['n00']);
    expect(one.more).toBe(true);
  });

  it('cannot be continued once the cluster\'s counter went below the walk\'s revision: 410 CURSOR_EXPIRED', async () => {
    const c = await clusterOf(3);
    const first = (await get(c, { limit: '2' })).json as NodeList;
    expect(first.next).toBeDefined();
    // What a server that lost its state looks like to the walk: the revision counter starts again from 0.
    await table.db.send(new DeleteCommand({ TableName: table.tableName, Key: metaKey(c) }));
    const res = await get(c, { limit: '2', cursor: first.next ?? '' });
    expect(res.status).toBe(410);
    expect(res.json).toMatchObject({ error: { code: 'CURSOR_EXPIRED' } });
  });
});

describe('bad input to the list', () => {
  it('is a 400 VALIDATION_FAILED that reads and changes nothing: a limit out of range, a cursor that is not one or belongs to another list', async () => {
    const c = await clusterOf(3);
    const other = await clusterOf(3);
    const otherCursor = ((await get(other, { limit: '1' })).json as NodeList).next ?? '';
    const ownCursor = ((await get(c, { limit: '1' })).json as NodeList).next ?? '';
    const before = await table.snapshot();
    const bad: Record<string, string>[] = [
      { limit: '0' },
      { limit: String(LIST_PAGE_MAX + 1) },
      { limit: 'ten' },
      { limit: '1.5' },
      { limit: '' },
      { cursor: '' },
      { cursor: 'not-a-cursor' },
      { cursor: Buffer.from('[1,"x",1,"up"]').toString('base64url') },
      { cursor: otherCursor },
      { status: 'all', cursor: ownCursor }, // a cursor of the healthy list, for the list with DOWN nodes
      { cursor: 'A'.repeat(1025) },
    ];
    for (const query of bad) {
      const res = await get(c, query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.json, JSON.stringify(query)).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    }
    expect(await table.snapshot()).toEqual(before);
  });
});

describe('gzip', () => {
  it('reads Accept-Encoding as RFC 9110 says: gzip named, or * with gzip not refused, and a q-value of 0 refuses', () => {
    for (const yes of ['gzip', 'gzip, deflate, br', 'br;q=1.0, gzip;q=0.5', '*', 'GZIP', 'x-gzip', 'identity, *;q=0.1']) expect(acceptsGzip(yes), yes).toBe(true);
    for (const no of [undefined, '', 'identity', 'br, deflate', 'gzip;q=0', '*;q=0', 'gzip;q=0, *', 'gzip;q=0.000']) expect(acceptsGzip(no), no).toBe(false);
  });

  it('compresses a large list for a client that accepts it, as base64 for API Gateway to decode, and leaves a small one alone', async () => {
    const c = await clusterOf(12, [], { pad: 'y'.repeat(1000) });
    const path = listPath(c);
    const plain = await listHandler(httpEvent({ method: 'GET', path }, 'GET /v1/clusters/{clusterId}/nodes', { clusterId: c }));
    expect(Buffer.byteLength(plain.body ?? '')).toBeGreaterThan(GZIP_MIN_BYTES);
    const gz = await listHandler(httpEvent({ method: 'GET', path, headers: { 'accept-encoding': 'gzip' } }, 'GET /v1/clusters/{clusterId}/nodes', { clusterId: c }));
    expect(gz).toMatchObject({ statusCode: 200, isBase64Encoded: true, headers: { 'content-encoding': 'gzip', vary: 'accept-encoding' } });
    expect(JSON.parse(gunzipSync(Buffer.from(gz.body ?? '', 'base64')).toString('utf8'))).toEqual(JSON.parse(plain.body ?? ''));
    expect((gz.body ?? '').length).toBeLessThan((plain.body ?? '').length / 4);

    const small = await clusterOf(1);
    const res = await listHandler(httpEvent({ method: 'GET', path: listPath(small), headers: { 'accept-encoding': 'gzip' } }, 'GET /v1/clusters/{clusterId}/nodes', { clusterId: small }));
    expect(res.isBase64Encoded).not.toBe(true);
    expect(res.headers?.['content-encoding']).toBeUndefined();
  });
});
