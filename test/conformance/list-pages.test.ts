/**
 * Conformance, the list's pages and its compression (contract/openapi.json,
 * listNodes; docs/running-nodes/wire-protocol.md, "Healthy list"), black-box
 * over HTTP only: every answer, each page and each decoded compressed one,
 * is validated against the OpenAPI document.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Api, uid, type Reply, type WireNode } from './client.ts';
import { checkHttpAnswer } from './documents.ts';
import { openTarget, type Target } from './target.ts';

let target: Target;
let api: Api;

beforeAll(async () => {
  target = await openTarget();
  api = new Api(target.httpUrl);
});

afterAll(async () => {
  await target?.close();
});

type Page = { clusterId: string; revision: number; nodes: WireNode[]; next?: string };

const path = (c: string, query: Record<string, string> = {}) => {
  const qs = new URLSearchParams(query).toString();
  return `/v1/clusters/${c}/nodes${qs ? `?${qs}` : ''}`;
};

/** A cluster of `count` nodes with long leases (nothing lapses during a test), registered a few at a time. */
async function clusterOf(count: number, metadata: Record<string, string> = {}): Promise<string> {
  const c = uid('pages');
  const ids = Array.from({ length: count }, (_, i) => `n${String(i).padStart(3, '0')}`);
  for (let i = 0; i < ids.length; i += 8) {
    const replies = await Promise.all(ids.slice(i, i + 8).map((n) => api.register(c, n, { metadata, leaseSeconds: 600 })));
    for (const reply of replies) expect(reply.status).toBe(201);
  }
  return c;
}

/** Every page of a walk, from the first, each one validated by the Api client. */
async function walk(c: string, query: Record<string, string>): Promise<Page[]> {
  const pages: Page[] = [];
  let next: string | undefined;
  do {
    const reply: Reply<Page> = await api.request<Page>('GET', path(c, next === undefined ? query : { ...query, cursor: next }));
    expect(reply.status, reply.text).toBe(200);
    pages.push(reply.body);
    next = reply.body.next;
  } while (next !== undefined);
  return pages;
}

const keyed = (nodes: WireNode[]) => nodes.map((n) => `${n.nodeId}@${n.revision}`);

describe('a list of more nodes than one page', () => {
  test('comes in pages that together equal the cluster at one revision', async () => {
    const c = await clusterOf(23);
    const pages = await walk(c, { limit: '10' });
    expect(pages.map((p) => p.nodes.length)).toEqual([10, 10, 3]);
    // One revision for the walk: the first page's.
    expect(new Set(pages.map((p) => p.revision)).size).toBe(1);
    const nodes = pages.flatMap((p) => p.nodes);
    // In node id order, none twice, none missing: the same as one answer that holds them all, at the same revision.
    expect(nodes.map((n) => n.nodeId)).toEqual([...nodes.map((n) => n.nodeId)].sort());
    const whole = await api.request<Page>('GET', path(c, { limit: '5000' }));
    expect(whole.body.next).toBeUndefined();
    expect(whole.body.revision).toBe(pages[0]?.revision);
    expect(keyed(nodes)).toEqual(keyed(whole.body.nodes));
    expect(nodes).toHaveLength(23);
  });

  test('keeps the revision of its first page while the cluster changes; a later change shows in the node\'s own revision', async () => {
    const c = await clusterOf(6);
    const first = await api.request<Page>('GET', path(c, { limit: '3' }));
    const walkRevision = first.body.revision;
    // Between the pages: a change to a node of the next page, and a new node on it.
    const changed = await api.register(c, 'n004', { metadata: { v: '2' }, leaseSeconds: 600 });
    const added = await api.register(c, 'n999', { leaseSeconds: 600 });
    const second = await api.request<Page>('GET', path(c, { limit: '3', cursor: first.body.next ?? '' }));
    expect(second.status).toBe(200);
    expect(second.body.revision).toBe(walkRevision);
    expect(second.body.nodes.find((n) => n.nodeId === 'n004')).toMatchObject({ metadata: { v: '2' }, revision: changed.body.node.revision });
    expect(changed.body.node.revision).toBeGreaterThan(walkRevision);
    const rest = second.body.next === undefined ? [] : (await walk(c, { limit: '3', cursor: second.body.next })).flatMap((p) => p.nodes);
    expect([...second.body.nodes, ...rest].map((n) => n.nodeId)).toEqual(['n003', 'n004', 'n005', 'n999']);
    expect(added.body.node.revision).toBeGreaterThan(walkRevision);
    // The next walk begins at the cluster's new revision.
    expect((await api.request<Page>('GET', path(c, { limit: '3' }))).body.revision).toBe(added.body.node.revision);
  });

  test('with status=all, pages hold the DOWN nodes too, and a cursor only continues the list it came from', async () => {
    const c = await clusterOf(5);
    await api.deregister(c, 'n001');
    await api.deregister(c, 'n003');
    expect((await walk(c, { limit: '2' })).map((p) => p.nodes.map((n) => n.nodeId))).toEqual([['n000', 'n002'], ['n004']]);
    const all = await walk(c, { status: 'all', limit: '2' });
    expect(all.flatMap((p) => p.nodes).map((n) => `${n.nodeId}:${n.status}`)).toEqual(['n000:UP', 'n001:DOWN', 'n002:UP', 'n003:DOWN', 'n004:UP']);
    const cursor = all[0]?.next ?? '';
    const mismatched = await api.request('GET', path(c, { cursor }));
    expect(mismatched.status).toBe(400);
    expect(mismatched.body).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    const elsewhere = await api.request('GET', path(uid('other'), { status: 'all', cursor }));
    expect(elsewhere.status).toBe(400);
  });

  test('answers 304 to a first page whose If-None-Match holds the current revision, and never to a page of a walk', async () => {
    const c = await clusterOf(3);
    const first = await api.request<Page>('GET', path(c, { limit: '2' }));
    const etag = first.headers.get('etag') ?? '';
    expect(etag).toBe(`W/"r${first.body.revision}-up"`);
    expect((await api.request('GET', path(c, { limit: '2' }), undefined, { 'if-none-match': etag })).status).toBe(304);
    const second = await api.request<Page>('GET', path(c, { limit: '2', cursor: first.body.next ?? '' }), undefined, { 'if-none-match': etag });
    expect(second.status).toBe(200);
    expect(second.body.nodes.map((n) => n.nodeId)).toEqual(['n002']);
  });

  test('refuses a limit out of range or a cursor that is not one with 400, and lists nothing', async () => {
    const c = await clusterOf(2);
    const bad: Record<string, string>[] = [{ limit: '0' }, { limit: '5001' }, { limit: 'all' }, { cursor: 'nope!' }, { cursor: 'bm9wZQ' }];
    for (const query of bad) {
      const reply = await api.request('GET', path(c, query));
      expect(reply.status, JSON.stringify(query)).toBe(400);
      expect(reply.body, JSON.stringify(query)).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    }
  });
});

describe('a compressed list', () => {
  test('comes gzip-compressed to a client that accepts gzip, and decodes to the same list', async () => {
    // Large enough to be worth compressing (more than 8 KiB of JSON).
    const c = await clusterOf(24, { zone: 'eu-west-1a', role: 'storage', pad: 'p'.repeat(400) });
    const plain = await api.bytes(path(c, { status: 'all' }), { 'accept-encoding': 'identity' });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-encoding')).toBeNull();
    const plainText = plain.body.toString('utf8');
    checkHttpAnswer('GET', path(c, { status: 'all' }), plain.status, plain.headers.get('content-type'), plainText);

    const packed = await api.bytes(path(c, { status: 'all' }), { 'accept-encoding': 'gzip' });
    expect(packed.status).toBe(200);
    expect(packed.headers.get('content-encoding')).toBe('gzip');
    expect(packed.headers.get('vary')).toMatch(/accept-encoding/i);
    expect(packed.headers.get('etag')).toBe(plain.headers.get('etag'));
    const decoded = gunzipSync(packed.body).toString('utf8');
    checkHttpAnswer('GET', path(c, { status: 'all' }), packed.status, packed.headers.get('content-type'), decoded);
    expect(JSON.parse(decoded)).toEqual(JSON.parse(plainText));
    expect(packed.body.length).toBeLessThan(plain.body.length / 4);

    // q=0 refuses gzip: the list comes as it is.
    const refused = await api.bytes(path(c, { status: 'all' }), { 'accept-encoding': 'gzip;q=0' });
    expect(refused.headers.get('content-encoding')).toBeNull();
    expect(JSON.parse(refused.body.toString('utf8'))).toEqual(JSON.parse(plainText));
  });
});
