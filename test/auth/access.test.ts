/**
 * The access matrix against the local runtime with `--auth` (the same
 * authorizer modules and handler checks as on AWS): every HTTP route ×
 * {no token, malformed, unsigned, expired, wrong signature, wrong cluster,
 * each role for the cluster and for `*`} → the exact status, the contract's
 * JSON, and no change to the table on any denial. Then the WebSocket API:
 * `$connect` refusals, binding, subscribing to other clusters, and the
 * subscribe rate limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import type { Role } from '../../functions/core/auth.ts';
import { ACTION_LIMIT } from '../../functions/core/action-limit.ts';
import { HTTP_ROUTES, type HttpRouteSpec, type RouteAccess } from '../../functions/core/routes.ts';
import { call, expiredWith, startAuthRuntime, unsignedAdmin, wronglySigned, type AuthRuntime, type Reply } from './support.ts';
import { eventually, sleep } from '../support/wait.ts';

let rt: AuthRuntime;
const A = `a-${randomUUID().slice(0, 8)}`;
const B = `b-${randomUUID().slice(0, 8)}`;
let admin: string;

beforeAll(async () => {
  rt = await startAuthRuntime();
  admin = await rt.mint('*', 'admin');
});
afterAll(async () => {
  await rt?.stop();
});

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;

async function registerAs(token: string, cluster: string, node: string): Promise<void> {
  const reply = await call(rt.httpUrl, 'PUT', `/v1/clusters/${cluster}/nodes/${node}`, { token, body: { leaseSeconds: 3600, metadata: { by: 'setup' } } });
  if (reply.status !== 201 && reply.status !== 200) throw new Error(`setup register ${cluster}/${node}: ${reply.status} ${reply.text}`);
}

function expectContractError(reply: Reply, status: number, code: string): void {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.body).toEqual({ error: { code, message: expect.any(String) } });
  expect(reply.text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules/);
}

/** How to call each route handler for a fresh node of cluster A, and what success is. */
interface Case {
  method: string;
  path: (node: string) => string;
  body?: unknown;
  /** The node must exist before the call (for reads, keepalives, deregistrations). */
  needsNode: boolean;
  success: number[];
}

const CASES: Record<string, Case> = {
  register: { method: 'PUT', path: (n) => `/v1/clusters/${A}/nodes/${n}`, body: { metadata: { zone: 'a' }, leaseSeconds: 3600 }, needsNode: false, success: [201] },
  keepalive: { method: 'POST', path: (n) => `/v1/clusters/${A}/nodes/${n}/keepalive`, body: {}, needsNode: true, success: [200] },
  deregister: { method: 'DELETE', path: (n) => `/v1/clusters/${A}/nodes/${n}`, needsNode: true, success: [204] },
  'get-node': { method: 'GET', path: (n) => `/v1/clusters/${A}/nodes/${n}`, needsNode: true, success: [200] },
  'list-nodes': { method: 'GET', path: () => `/v1/clusters/${A}/nodes?status=all`, needsNode: false, success: [200] },
  'list-clusters': { method: 'GET', path: () => '/v1/clusters', needsNode: false, success: [200] },
  health: { method: 'GET', path: () => '/v1/health', needsNode: false, success: [200] },
  openapi: { method: 'GET', path: () => '/v1/openapi.json', needsNode: false, success: [200] },
  console: { method: 'GET', path: () => '/console', needsNode: false, success: [200] },
};

type Variant =
  | { name: string; kind: 'refused'; authorization: () => Promise<string | undefined>; gateway?: boolean }
  | { name: string; kind: 'claims'; role: Role; cluster: 'A' | 'B' | '*' };

const VARIANTS: Variant[] = [
  // With the authorizer cache on (the default), API Gateway itself refuses a request without the header.
  { name: 'no token', kind: 'refused', authorization: async () => undefined, gateway: true },
  { name: 'malformed', kind: 'refused', authorization: async () => 'Bearer not.a.jwt' },
  { name: 'not bearer', kind: 'refused', authorization: async () => 'Basic dXNlcjpwYXNz' },
  { name: 'unsigned (alg none)', kind: 'refused', authorization: async () => `Bearer ${unsignedAdmin()}` },
  { name: 'expired', kind: 'refused', authorization: async () => `Bearer ${await expiredWith(rt.secret, '*', 'admin')}` },
  { name: 'wrong signature', kind: 'refused', authorization: async () => `Bearer ${await wronglySigned('*', 'admin')}` },
  { name: 'node of another cluster', kind: 'claims', role: 'node', cluster: 'B' },
  { name: 'admin of another cluster', kind: 'claims', role: 'admin', cluster: 'B' },
  { name: 'reader', kind: 'claims', role: 'reader', cluster: 'A' },
  { name: 'node', kind: 'claims', role: 'node', cluster: 'A' },
  { name: 'admin', kind: 'claims', role: 'admin', cluster: 'A' },
  { name: 'reader *', kind: 'claims', role: 'reader', cluster: '*' },
  { name: 'node *', kind: 'claims', role: 'node', cluster: '*' },
  { name: 'admin *', kind: 'claims', role: 'admin', cluster: '*' },
];

/** The expected outcome, written out per access level (not derived from functions/core/auth.ts). */
function expected(access: RouteAccess, v: Variant): 'ok' | 401 | 403 {
  if (access === 'public') return 'ok';
  if (v.kind === 'refused') return 401;
  const ownCluster = v.cluster === 'A' || v.cluster === '*';
  switch (access) {
    case 'read':
      return ownCluster ? 'ok' : 403;
    case 'write':
      return ownCluster && v.role !== 'reader' ? 'ok' : 403;
    case 'admin':
      return v.role === 'admin' && v.cluster === '*' ? 'ok' : 403;
  }
}

describe('HTTP access matrix', () => {
  test('every route has a case (a new route must be added here)', () => {
    expect(HTTP_ROUTES.map((r) => r.handler).filter((h) => !(h in CASES))).toEqual([]);
    expect(new Set(HTTP_ROUTES.map((r) => r.access))).toEqual(new Set(['public', 'read', 'write', 'admin']));
  });

  const rows = HTTP_ROUTES.flatMap((route) => VARIANTS.map((variant) => [`${route.method} ${route.path}`, variant.name, route, variant] as const));

  test.each(rows)('%s with %s', async (_route, _variant, route: HttpRouteSpec, variant: Variant) => {
    const spec = CASES[route.handler];
    if (!spec) throw new Error(`no case for ${route.handler}`);
    const node = uid('n');
    if (spec.needsNode) await registerAs(admin, A, node);
    const authorization =
      variant.kind === 'refused'
        ? await variant.authorization()
        : `Bearer ${await rt.mint(variant.cluster === 'A' ? A : variant.cluster === 'B' ? B : '*', variant.role)}`;
    const path = route.path === '/' ? '/' : spec.path(node);
    const outcome = expected(route.access, variant);
    const before = outcome === 'ok' ? undefined : await rt.scan();
    const reply = await call(rt.httpUrl, route.method, path, { authorization, body: spec.body });

    if (outcome === 'ok') {
      expect(spec.success, reply.text).toContain(reply.status);
      return;
    }
    if (variant.kind === 'refused' && variant.gateway) {
      // API Gateway's own answer when the identity source is missing: the contract's status, its body.
      expect(reply.status).toBe(401);
      expect(reply.body).toEqual({ message: 'Unauthorized' });
    } else if (outcome === 401) expectContractError(reply, 401, 'UNAUTHORIZED');
    else expectContractError(reply, 403, 'FORBIDDEN');
    // A denial changes nothing.
    expect(await rt.scan()).toEqual(before);
  });

  test('a registration by an allowed token is really there; a refused one left nothing behind', async () => {
    const list = await call(rt.httpUrl, 'GET', `/v1/clusters/${B}/nodes?status=all`, { token: admin });
    expect(list.status).toBe(200);
    expect((list.body as { nodes: unknown[] }).nodes).toEqual([]);
    const clusters = await call(rt.httpUrl, 'GET', '/v1/clusters', { token: admin });
    const ids = (clusters.body as { clusters: { clusterId: string }[] }).clusters.map((c) => c.clusterId);
    expect(ids).toContain(A);
    expect(ids).not.toContain(B);
  });

  test('a path with an invalid cluster id is 403 for a cluster token and 400 for a * token; never a 5xx', async () => {
    const nodeA = await rt.mint(A, 'node');
    expectContractError(await call(rt.httpUrl, 'PUT', '/v1/clusters/%E2%9C%93/nodes/n1', { token: nodeA, body: {} }), 403, 'FORBIDDEN');
    expectContractError(await call(rt.httpUrl, 'PUT', '/v1/clusters/%E2%9C%93/nodes/n1', { token: admin, body: {} }), 400, 'VALIDATION_FAILED');
  });
});

describe('without the authorizer cache (authCacheSeconds=0 on AWS, --auth-cache-ttl 0 locally)', () => {
  let uncached: AuthRuntime;
  beforeAll(async () => {
    uncached = await startAuthRuntime(['--auth-cache-ttl', '0']);
  });
  afterAll(async () => {
    await uncached?.stop();
  });

  test('a request without a token gets the contract\'s 401 JSON too, since the authorizer sees every request', async () => {
    for (const [method, path] of [
      ['PUT', `/v1/clusters/${A}/nodes/n1`],
      ['GET', `/v1/clusters/${A}/nodes`],
      ['GET', '/v1/clusters'],
    ] as const) {
      expectContractError(await call(uncached.httpUrl, method, path, { body: method === 'PUT' ? {} : undefined }), 401, 'UNAUTHORIZED');
    }
    expect(await uncached.scan()).toEqual([]);
    expect((await call(uncached.httpUrl, 'GET', '/v1/health')).status).toBe(200);
    const token = await uncached.mint(A, 'node');
    expect((await call(uncached.httpUrl, 'PUT', `/v1/clusters/${A}/nodes/n1`, { token, body: {} })).status).toBe(201);
  });
});

// ─── WebSocket ──────────────────────────────────────────────────────────────

interface Opened {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  next(type: string, from: number): Promise<Record<string, unknown>>;
}

function open(query: Record<string, string>): Promise<Opened | { refused: number; body: string }> {
  const ws = new WebSocket(`${rt.wsUrl}?${new URLSearchParams(query).toString()}`);
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        req.destroy();
        resolve({ refused: res.statusCode ?? 0, body });
      });
    });
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        next: (type, from) =>
          eventually(() => messages.slice(from).find((m) => m.type === type || m.type === 'ERROR') ?? false, 10_000, () => `a ${type} reply; got ${JSON.stringify(messages)}`),
      }),
    );
    setTimeout(() => reject(new Error('connect timed out')), 15_000).unref();
  });
}

async function opened(query: Record<string, string>): Promise<Opened> {
  const result = await open(query);
  if ('refused' in result) throw new Error(`refused with ${result.refused}: ${result.body}`);
  return result;
}

async function refused(query: Record<string, string>): Promise<{ refused: number; body: string }> {
  const result = await open(query);
  if (!('refused' in result)) {
    result.ws.terminate();
    throw new Error('the connection was accepted');
  }
  return result;
}

async function ask(conn: Opened, message: Record<string, unknown>, type: string): Promise<Record<string, unknown>> {
  const from = conn.messages.length;
  conn.ws.send(JSON.stringify(message));
  return conn.next(type, from);
}

describe('WebSocket access', () => {
  test('$connect without a token, or with a malformed, unsigned, expired or wrongly signed one, is refused with 401', async () => {
    expect((await refused({ clusterId: A })).refused).toBe(401);
    for (const token of ['', 'not-a-jwt', unsignedAdmin(), await expiredWith(rt.secret, '*', 'admin'), await wronglySigned('*', 'admin')]) {
      expect((await refused({ clusterId: A, token })).refused).toBe(401);
    }
    const items = await rt.scan();
    expect(items.filter((i) => String(i.pk).startsWith('WS#') || String(i.pk).startsWith('S#'))).toEqual([]);
  });

  test('$connect for another cluster is refused with 403 FORBIDDEN; a reader token cannot bind a node', async () => {
    const node = uid('bound');
    await registerAs(admin, A, node);
    const before = await rt.scan();
    const wrongCluster = await refused({ clusterId: A, token: await rt.mint(B, 'node') });
    expect(wrongCluster.refused).toBe(403);
    expect(JSON.parse(wrongCluster.body)).toEqual({ type: 'ERROR', error: { code: 'FORBIDDEN', message: expect.any(String) } });
    const reader = await rt.mint(A, 'reader');
    const bind = await refused({ clusterId: A, nodeId: node, token: reader });
    expect(bind.refused).toBe(403);
    expect(JSON.parse(bind.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect(await rt.scan()).toEqual(before);

    // The same reader may watch, and a node token may bind.
    const watcher = await opened({ clusterId: A, token: reader });
    const bound = await opened({ clusterId: A, nodeId: node, token: await rt.mint(A, 'node') });
    const item = (await rt.scan()).find((i) => i.pk === `C#${A}` && i.sk === `N#${node}`);
    expect(item?.boundConn).toEqual(expect.any(String));
    watcher.ws.close();
    bound.ws.close();
  });

  test('subscribing to another cluster is refused with an ERROR FORBIDDEN reply and writes nothing; the token\'s own cluster works', async () => {
    const conn = await opened({ token: await rt.mint(A, 'reader') });
    const denied = await ask(conn, { action: 'subscribe', clusterId: B }, 'SUBSCRIBED');
    expect(denied).toEqual({ type: 'ERROR', error: { code: 'FORBIDDEN', message: expect.any(String) } });
    expect(await ask(conn, { action: 'subscribe', clusterId: A }, 'SUBSCRIBED')).toEqual({ type: 'SUBSCRIBED', clusterId: A });
    const items = await rt.scan();
    expect(items.filter((i) => i.pk === `S#${B}`)).toEqual([]);
    expect(items.filter((i) => i.pk === `S#${A}`).length).toBeGreaterThan(0);
    conn.ws.close();
  });

  test('a token that expires while connected cannot take new actions (401), checked on every message', async () => {
    const ttlSeconds = 2;
    const conn = await opened({ token: await rt.mint(A, 'reader', { ttlSeconds }) });
    expect(await ask(conn, { action: 'subscribe', clusterId: A }, 'SUBSCRIBED')).toMatchObject({ type: 'SUBSCRIBED' });
    // Time passing is the behaviour: past the token's expiry (its exp counts from the whole second it was minted in).
    await sleep(ttlSeconds * 1000 + 500);
    expect(await ask(conn, { action: 'subscribe', clusterId: A }, 'SUBSCRIBED')).toEqual({ type: 'ERROR', error: { code: 'UNAUTHORIZED', message: 'the token has expired' } });
    conn.ws.close();
  });

  test(`at most ${ACTION_LIMIT.actions} subscribe/unsubscribe actions per ${ACTION_LIMIT.windowSeconds} s per connection, then ERROR THROTTLED`, async () => {
    const conn = await opened({ token: admin });
    // The whole burst must fall into one window: if the next boundary is less than 15 s away, start just after it.
    const windowMs = ACTION_LIMIT.windowSeconds * 1000;
    const left = windowMs - (Date.now() % windowMs);
    if (left < 15_000) await sleep(left + 50);
    // Sent without waiting for each reply (one at a time took 19 s on a loaded box, and a window's boundary then
    // fell inside the burst): the limit is counted atomically, so exactly the actions past it are refused.
    const total = ACTION_LIMIT.actions + 5;
    const from = conn.messages.length;
    for (let i = 0; i < total; i++) conn.ws.send(JSON.stringify({ action: i % 2 === 0 ? 'subscribe' : 'unsubscribe', clusterId: `flood-${i % 4}` }));
    const isReply = (m: Record<string, unknown>) => m.type === 'SUBSCRIBED' || m.type === 'UNSUBSCRIBED' || m.type === 'ERROR';
    const replies = (
      await eventually(
        () => {
          const got = conn.messages.slice(from).filter(isReply);
          return got.length >= total ? got : false;
        },
        30_000,
        () => `${total} replies; got ${conn.messages.length - from} messages`,
      )
    ).map((reply) => (reply.type === 'ERROR' ? String((reply.error as { code: string }).code) : String(reply.type)));

    expect(replies).toHaveLength(total);
    expect(replies.filter((r) => r === 'THROTTLED')).toHaveLength(5);
    expect(replies.filter((r) => r === 'SUBSCRIBED' || r === 'UNSUBSCRIBED')).toHaveLength(ACTION_LIMIT.actions);
    // The connection still works for everything else.
    expect(await ask(conn, { action: 'ping' }, 'PONG')).toMatchObject({ type: 'PONG' });
    conn.ws.close();
  }, 60_000);
});
