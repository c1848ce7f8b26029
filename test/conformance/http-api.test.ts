/**
 * Conformance, HTTP API (contract/openapi.json; docs/running-nodes/wire-protocol.md,
 * "What each call does" and "Errors"): register, query, keepalive,
 * deregister and the error contract, black-box over HTTP only.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import openapi from '@roster/contract/openapi.json' with { type: 'json' };
import { Api, uid, type Reply } from './client.ts';
import { eventually, sleep } from '../support/wait.ts';
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

/** Every error has exactly the contract's shape, and nothing that looks like a stack trace. */
function expectError(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  const body = reply.body as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(reply.text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/);
}

describe('register', () => {
  test('a new node key is created (201), registering again is an idempotent upsert (200)', async () => {
    const c = uid('c');
    const first = await api.register(c, 'n1', { metadata: { zone: 'a' }, leaseSeconds: 30 });
    expect(first.status).toBe(201);
    const node = first.body.node;
    expect(node).toMatchObject({ key: `${c}/n1`, clusterId: c, nodeId: 'n1', status: 'UP', metadata: { zone: 'a' }, leaseSeconds: 30 });
    expect(node.incarnation).toBeGreaterThanOrEqual(1);
    expect(node.revision).toBeGreaterThanOrEqual(1);
    for (const time of [node.registeredAt, node.lastKeepaliveAt, node.expiresAt]) expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Date.parse(node.expiresAt) - Date.parse(node.lastKeepaliveAt)).toBe(30_000);

    const again = await api.register(c, 'n1', { metadata: { zone: 'a' }, leaseSeconds: 30 });
    expect(again.status).toBe(200);
    expect(again.body.node).toMatchObject({ key: `${c}/n1`, status: 'UP', metadata: { zone: 'a' }, incarnation: node.incarnation });
    // A new lease started.
    expect(Date.parse(again.body.node.expiresAt)).toBeGreaterThanOrEqual(Date.parse(node.expiresAt));

    // One node key is one record.
    const list = await api.list(c, true);
    expect(list.body.nodes.map((n) => n.key)).toEqual([`${c}/n1`]);
  });

  test(`without leaseSeconds the default lease of ${DEFAULT_LEASE_SECONDS} s applies`, async () => {
    const c = uid('c');
    const reply = await api.register(c, 'n1');
    expect(reply.status).toBe(201);
    expect(reply.body.node.leaseSeconds).toBe(DEFAULT_LEASE_SECONDS);
    expect(reply.body.node.metadata).toEqual({});
  });

  test('201 means the node was not UP before (new, DOWN or past its lease); 200 that it was UP', async () => {
    const c = uid('c');
    expect((await api.register(c, 'n1', { incarnation: 1 })).status).toBe(201);
    // UP: a renewal, a change of metadata and a new incarnation are all 200.
    expect((await api.register(c, 'n1', { incarnation: 1 })).status).toBe(200);
    expect((await api.register(c, 'n1', { incarnation: 1, metadata: { v: '2' } })).status).toBe(200);
    expect((await api.register(c, 'n1', { incarnation: 2 })).status).toBe(200);
    // DOWN (deregistered): it comes back, 201, with or without a new incarnation.
    await api.deregister(c, 'n1');
    expect((await api.register(c, 'n1', { incarnation: 2 })).status).toBe(201);
    await api.deregister(c, 'n1');
    expect((await api.register(c, 'n1')).status).toBe(201);
    // Past its lease, whether or not the sweeper has marked it yet: it comes back, 201.
    await api.register(c, 'n2', { leaseSeconds: 2 });
    await eventually(async () => expect((await api.get(c, 'n2')).body.node.status).toBe('DOWN'), 10_000);
    expect((await api.register(c, 'n2', { leaseSeconds: 2 })).status).toBe(201);
  });

  test('without incarnation, an UP node keeps its incarnation and a new or DOWN one gets the next number', async () => {
    const c = uid('c');
    expect((await api.register(c, 'n1')).body.node.incarnation).toBe(1);
    expect((await api.register(c, 'n1', { metadata: { v: '2' } })).body.node.incarnation).toBe(1);
    await api.deregister(c, 'n1');
    expect((await api.register(c, 'n1')).body.node.incarnation).toBe(2);
    expect((await api.register(c, 'n2', { incarnation: 41 })).body.node.incarnation).toBe(41);
    await api.deregister(c, 'n2');
    expect((await api.register(c, 'n2')).body.node.incarnation).toBe(42);
  });

  test('GET of one node returns it; an unknown one is 404 NODE_NOT_FOUND', async () => {
    const c = uid('c');
    await api.register(c, 'n1', { metadata: { role: 'primary' } });
    const one = await api.get(c, 'n1');
    expect(one.status).toBe(200);
    expect(one.body.node).toMatchObject({ key: `${c}/n1`, status: 'UP', metadata: { role: 'primary' } });
    expectError(await api.get(c, 'ghost'), 404, 'NODE_NOT_FOUND');
  });
});

describe('query', () => {
  test('the healthy list holds UP nodes with the cluster revision; ?status=all adds retained DOWN nodes', async () => {
    const c = uid('c');
    const a = await api.register(c, 'a');
    const b = await api.register(c, 'b');
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect((await api.deregister(c, 'b')).status).toBe(204);

    const healthy = await api.list(c);
    expect(healthy.status).toBe(200);
    expect(healthy.body.clusterId).toBe(c);
    expect(healthy.body.nodes.map((n) => n.nodeId)).toEqual(['a']);
    expect(healthy.body.nodes.every((n) => n.status === 'UP')).toBe(true);
    // The list reflects the deregistration, so its revision is at least the one that change produced.
    expect(healthy.body.revision).toBeGreaterThan(b.body.node.revision);

    const all = await api.list(c, true);
    expect(all.status).toBe(200);
    const byId = Object.fromEntries(all.body.nodes.map((n) => [n.nodeId, n]));
    expect(Object.keys(byId).sort()).toEqual(['a', 'b']);
    expect(byId.b).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });

  test('a cluster nobody registered in has an empty list', async () => {
    const reply = await api.list(uid('empty'));
    expect(reply.status).toBe(200);
    expect(reply.body.nodes).toEqual([]);
  });

  test('GET /v1/clusters lists the cluster with its up and down counts', async () => {
    const c = uid('c');
    await api.register(c, 'a');
    await api.register(c, 'b');
    await api.deregister(c, 'b');
    const reply = await api.request<{ clusters: { clusterId: string; up: number; down: number }[] }>('GET', '/v1/clusters');
    expect(reply.status).toBe(200);
    expect(reply.body.clusters.find((x) => x.clusterId === c)).toMatchObject({ clusterId: c, up: 1, down: 1 });
  });

  test('If-None-Match: 304 only for the ETag of the revision the cluster is at; an older, a newer or another variant\'s tag gets the list', async () => {
    const c = uid('c');
    await api.register(c, 'n1');
    const path = `/v1/clusters/${c}/nodes?status=all`;
    const first = await api.request<{ revision: number; nodes: unknown[] }>('GET', path);
    const revision = first.body.revision;
    expect(first.headers.get('etag')).toBe(`W/"r${revision}-all"`);

    const same = await api.request('GET', path, undefined, { 'if-none-match': `W/"r${revision}-all"` });
    expect(same.status).toBe(304);
    expect(same.text).toBe('');
    expect(same.headers.get('etag')).toBe(`W/"r${revision}-all"`);

    // A tag from a revision the server has not reached (it lost its data, say) must not be taken as current.
    for (const tag of [`W/"r${revision + 1000}-all"`, `W/"r${revision - 1}-all"`, `W/"r${revision}-up"`]) {
      const full = await api.request<{ revision: number; nodes: unknown[] }>('GET', path, undefined, { 'if-none-match': tag });
      expect(full.status, tag).toBe(200);
      expect(full.body.revision, tag).toBe(revision);
      expect(full.body.nodes, tag).toHaveLength(1);
    }

    // Once the cluster moves, the old tag gets the new list.
    await api.register(c, 'n2');
    const moved = await api.request<{ revision: number; nodes: unknown[] }>('GET', path, undefined, { 'if-none-match': `W/"r${revision}-all"` });
    expect(moved.status).toBe(200);
    expect(moved.body.revision).toBeGreaterThan(revision);
  });

  test('GET /v1/health answers 200', async () => {
    const reply = await api.request('GET', '/v1/health');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  });
});

describe('keepalive', () => {
  test('a keepalive extends the lease; a node kept alive past its lease stays UP', async () => {
    const c = uid('c');
    const registered = (await api.register(c, 'n1', { leaseSeconds: 2 })).body.node;
    await sleep(300); // so that the keepalive's times are measurably later than the registration's
    const first = await api.keepalive(c, 'n1');
    expect(first.status).toBe(200);
    expect(Date.parse(first.body.node.expiresAt)).toBeGreaterThan(Date.parse(registered.expiresAt));
    expect(Date.parse(first.body.node.lastKeepaliveAt)).toBeGreaterThan(Date.parse(registered.lastKeepaliveAt));
    expect(first.body.node.revision).toBe(registered.revision);

    // Time passing is the behaviour: keep alive every 500 ms for well over the 2 s lease.
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      await sleep(500);
      expect((await api.keepalive(c, 'n1')).status).toBe(200);
    }
    const now = await api.get(c, 'n1');
    expect(now.body.node.status).toBe('UP');
    expect((await api.list(c)).body.nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });

  test('a keepalive for an unknown node fails with 404 NODE_NOT_FOUND', async () => {
    expectError(await api.keepalive(uid('c'), 'ghost'), 404, 'NODE_NOT_FOUND');
  });

  test('a keepalive for a deregistered node fails with 404 NODE_NOT_FOUND', async () => {
    const c = uid('c');
    await api.register(c, 'n1');
    await api.deregister(c, 'n1');
    expectError(await api.keepalive(c, 'n1'), 404, 'NODE_NOT_FOUND');
  });

  test('a keepalive for a node past its lease fails with 404 and the node is not in the healthy list', async () => {
    const c = uid('c');
    await api.register(c, 'n1', { leaseSeconds: 2 });
    // Down nodes never appear in the healthy list, even before the sweeper marked them.
    await eventually(async () => expect((await api.list(c)).body.nodes).toEqual([]), 10_000);
    expectError(await api.keepalive(c, 'n1'), 404, 'NODE_NOT_FOUND');
  });

  test('a keepalive of an old incarnation fails with 409 STALE_INCARNATION', async () => {
    const c = uid('c');
    expect((await api.register(c, 'n1', { incarnation: 1 })).status).toBe(201);
    // The process restarted: a new incarnation registers.
    const second = await api.register(c, 'n1', { incarnation: 2 });
    expect(second.status).toBe(200);
    expect(second.body.node.incarnation).toBe(2);
    expectError(await api.keepalive(c, 'n1', { incarnation: 1 }), 409, 'STALE_INCARNATION');
    expect((await api.keepalive(c, 'n1', { incarnation: 2 })).status).toBe(200);
    // Nor may the old incarnation register over the new one.
    expectError(await api.register(c, 'n1', { incarnation: 1 }), 409, 'STALE_INCARNATION');
  });
});

describe('deregister', () => {
  test('deregister answers 204 and marks the node DOWN (deregistered); again and for unknown nodes also 204', async () => {
    const c = uid('c');
    await api.register(c, 'n1');
    const first = await api.deregister(c, 'n1');
    expect(first.status).toBe(204);
    expect(first.text).toBe('');
    expect((await api.get(c, 'n1')).body.node).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
    expect((await api.deregister(c, 'n1')).status).toBe(204);
    expect((await api.deregister(c, 'ghost')).status).toBe(204);
    expect((await api.list(c)).body.nodes).toEqual([]);
  });

  test('registering a deregistered node brings it back (201: it was not UP)', async () => {
    const c = uid('c');
    await api.register(c, 'n1');
    await api.deregister(c, 'n1');
    const back = await api.register(c, 'n1');
    expect(back.status).toBe(201);
    expect(back.body.node.status).toBe('UP');
    expect((await api.list(c)).body.nodes.map((n) => n.nodeId)).toEqual(['n1']);
  });
});

describe('error contract', () => {
  test('invalid ids, bodies and query parameters are 400 VALIDATION_FAILED', async () => {
    const c = uid('c');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/bad%20id`, {}), 400, 'VALIDATION_FAILED');
    expectError(await api.request('PUT', `/v1/clusters/${'x'.repeat(65)}/nodes/n1`, {}), 400, 'VALIDATION_FAILED');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/n1`, '{"metadata":'), 400, 'VALIDATION_FAILED');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/n1`, '[1,2]'), 400, 'VALIDATION_FAILED');
    expectError(await api.register(c, 'n1', { leaseSeconds: 1 }), 400, 'VALIDATION_FAILED');
    expectError(await api.register(c, 'n1', { leaseSeconds: 3601 }), 400, 'VALIDATION_FAILED');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/n1`, { metadata: { a: 1 } }), 400, 'VALIDATION_FAILED');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/n1`, { surprise: true }), 400, 'VALIDATION_FAILED');
    const tooMany = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    expectError(await api.register(c, 'n1', { metadata: tooMany }), 400, 'VALIDATION_FAILED');
    expectError(await api.register(c, 'n1', { metadata: { big: 'x'.repeat(4097) } }), 400, 'VALIDATION_FAILED');
    expectError(await api.request('GET', `/v1/clusters/${c}/nodes?status=bogus`), 400, 'VALIDATION_FAILED');
    // None of these created anything.
    expect((await api.list(c, true)).body.nodes).toEqual([]);
  });

  test('every route refuses, with 400 VALIDATION_FAILED, a query parameter the OpenAPI document does not list for it, and changes nothing', async () => {
    const c = uid('c');
    const operations = Object.entries(openapi.paths as Record<string, Record<string, { parameters?: { in: string; name: string }[] }>>).flatMap(
      ([template, item]) =>
        Object.entries(item)
          .filter(([method]) => ['get', 'put', 'post', 'delete'].includes(method))
          .map(([method, operation]) => ({
            method: method.toUpperCase(),
            path: template.replace('{clusterId}', c).replace('{nodeId}', 'n1'),
            takes: (operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
          })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(10);
    // Every query parameter some route takes: each is refused by every route that does not list it.
    const known = [...new Set(operations.flatMap((o) => o.takes))];
    expect(known.sort()).toEqual(['cursor', 'incarnation', 'limit', 'status']);
    const values: Record<string, string> = { status: 'all', incarnation: '1', limit: '10', cursor: 'WzFd' };
    for (const { method, path, takes } of operations) {
      const body = method === 'PUT' || method === 'POST' ? {} : undefined;
      for (const name of ['foo', ...known.filter((k) => !takes.includes(k))]) {
        expectError(await api.request(method, `${path}?${name}=${values[name] ?? '1'}`, body), 400, 'VALIDATION_FAILED');
      }
      // Also beside a parameter the route does take.
      if (takes.length > 0) expectError(await api.request(method, `${path}?${takes[0]}=${values[takes[0] as string]}&foo=1`, body), 400, 'VALIDATION_FAILED');
    }
    // Nothing was registered, deregistered or kept alive.
    expect((await api.list(c, true)).body.nodes).toEqual([]);
    // The parameters a route lists are taken.
    expect((await api.request('GET', `/v1/clusters/${c}/nodes?status=all`)).status).toBe(200);
    expect((await api.request('GET', `/v1/clusters/${c}/nodes?limit=10`)).status).toBe(200);
    expect((await api.request('DELETE', `/v1/clusters/${c}/nodes/n1?incarnation=1`)).status).toBe(204);
  });

  test('ids "." and ".." are refused with 400 however they are spelled, and create nothing', async () => {
    const c = uid('c');
    for (const id of ['.', '..', '%2E', '%2E%2E', '%2e%2e']) {
      const cluster = await api.raw('PUT', `/v1/clusters/${id}/nodes/n1`);
      const node = await api.raw('PUT', `/v1/clusters/${c}/nodes/${id}`);
      if (target.local || id.startsWith('%')) {
        expectError(cluster, 400, 'VALIDATION_FAILED');
        expectError(node, 400, 'VALIDATION_FAILED');
      } else {
        // A literal dot segment may be resolved away by a proxy in front (then it is another path): never created.
        expect([cluster.status, node.status], id).not.toContain(201);
      }
    }
    expect((await api.raw('GET', '/v1/clusters/%2E%2E/nodes')).status).toBe(400);
    expect((await api.list(c, true)).body.nodes).toEqual([]);
  });

  test('a body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const c = uid('c');
    expectError(await api.request('PUT', `/v1/clusters/${c}/nodes/n1`, { metadata: { a: 'x'.repeat(20_000) } }), 413, 'PAYLOAD_TOO_LARGE');
    expect((await api.get(c, 'n1')).status).toBe(404);
  });

  test('an unknown path is 404 NOT_FOUND', async () => {
    expectError(await api.request('GET', '/v1/nothing-here'), 404, 'NOT_FOUND');
    expectError(await api.request('GET', '/v2'), 404, 'NOT_FOUND');
  });

  test('GET /v1/openapi.json serves the contract\'s OpenAPI document to anyone, no token needed', async () => {
    const res = await fetch(`${target.httpUrl}/v1/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(openapi);
    expectError(await api.request('GET', '/v1/openapi.json?x=1'), 400, 'VALIDATION_FAILED');
  });

  test('GET /console and GET / serve the web console: one HTML document with a strict Content-Security-Policy', async () => {
    for (const path of ['/console', '/']) {
      const res = await api.request('GET', path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toBe('text/html; charset=utf-8');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toMatch(/(^|; )default-src 'none'(;|$)/);
      expect(csp, path).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
      expect(csp, path).toContain(`connect-src 'self' ${new URL(target.wsUrl).origin}`);
      // Nothing from anywhere else: every source is 'none', 'self', a hash, data: or the WebSocket API.
      expect(csp.replace(new URL(target.wsUrl).origin, ''), path).not.toMatch(/https?:|wss?:|\*/);
      const html = res.text;
      expect(html, path).toContain(`<meta name="roster-ws-url" content="${target.wsUrl}">`);
      // Self-contained: no script, stylesheet or font is loaded from a URL.
      expect(html, path).not.toMatch(/<script[^>]+src=|<link[^>]+rel="stylesheet"|@import|url\(https?:/);
    }
  });
});
