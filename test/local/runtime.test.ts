/**
 * `startRuntime` in process, as `roster serve` and embedders use it: two
 * runtimes at once in this one process, against the shared DynamoDB Local,
 * with different settings. Each behaves by its own settings (default lease,
 * disconnect grace, auth, table), counts only its own requests in its
 * `/metrics`, and keeps working when the other stops; neither touches
 * `process.env`. Also: the `@connections` endpoint lives only on its own
 * loopback port, and `stop()` is idempotent.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import WebSocket from 'ws';
import { silentLog } from '../../local/log.ts';
import { startRuntime, type Runtime, type RuntimeOptions } from '../../local/runtime.ts';
import { delta, parseSamples, type Samples } from '../support/metrics.ts';
import { eventually } from '../support/wait.ts';

interface Node {
  status: 'UP' | 'DOWN';
  leaseSeconds: number;
  expiresAt: string;
  downReason?: string;
}

/** Auth off, short lease and grace, fast sweeps. */
const SETTINGS_A = { defaultLeaseSeconds: 5, disconnectGraceSeconds: 0.5, sweepIntervalSeconds: 0.2, auth: false } satisfies RuntimeOptions;
/** Auth on, long lease and grace. */
const SETTINGS_B = { defaultLeaseSeconds: 30, disconnectGraceSeconds: 10, sweepIntervalSeconds: 0.5, auth: true } satisfies RuntimeOptions;

let a: Runtime;
let b: Runtime;
let environmentBefore: Record<string, string | undefined>;
const sockets: WebSocket[] = [];

const start = (settings: RuntimeOptions): Promise<Runtime> =>
  startRuntime({ port: 0, dynamodbEndpoint: inject('dynamodbEndpoint'), tableName: `roster-inproc-${randomUUID().slice(0, 8)}`, log: silentLog, ...settings });

beforeAll(async () => {
  environmentBefore = { ...process.env };
  [a, b] = await Promise.all([start(SETTINGS_A), start(SETTINGS_B)]);
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await Promise.all([a?.stop(), b?.stop()]);
});

const cluster = (): string => `c-${randomUUID().slice(0, 8)}`;

/** A request to `rt`, with its admin token when it has one (auth on), or the token given (`null`: none). */
async function call(rt: Runtime, method: string, path: string, body?: unknown, token: string | null = rt.adminToken ?? null): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${rt.httpUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function register(rt: Runtime, clusterId: string, nodeId: string, body: Record<string, unknown> = {}): Promise<Node> {
  const reply = await call(rt, 'PUT', `/v1/clusters/${clusterId}/nodes/${nodeId}`, body);
  expect(reply.status, JSON.stringify(reply.json)).toBe(201);
  return reply.json.node as Node;
}

async function getNode(rt: Runtime, clusterId: string, nodeId: string): Promise<Node> {
  const reply = await call(rt, 'GET', `/v1/clusters/${clusterId}/nodes/${nodeId}`);
  expect(reply.status).toBe(200);
  return reply.json.node as Node;
}

/** A WebSocket connection to `rt` (with its token when auth is on) and the events it receives. */
async function connect(rt: Runtime, query: string): Promise<{ ws: WebSocket; events: { type: string; node: { nodeId: string }; reason?: string }[] }> {
  const token = rt.adminToken === undefined ? '' : `&token=${rt.adminToken}`;
  const ws = new WebSocket(`${rt.wsUrl}?${query}${token}`);
  sockets.push(ws);
  const events: { type: string; node: { nodeId: string }; reason?: string }[] = [];
  ws.on('message', (data) => events.push(JSON.parse(data.toString()) as (typeof events)[number]));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { ws, events };
}

const scrape = async (rt: Runtime): Promise<Samples> => parseSamples(await (await fetch(`${rt.httpUrl}/metrics`)).text());

const REGISTERED = 'roster_registrations_total{event="NODE_REGISTERED"}';

describe('two runtimes in one process', () => {
  test('neither sets anything in process.env', () => {
    expect({ ...process.env }).toEqual(environmentBefore);
    expect(a.httpUrl).toBe(`http://127.0.0.1:${a.port}`);
    expect(a.wsUrl).toBe(`ws://127.0.0.1:${a.port}/ws`);
    expect(a.port).not.toBe(b.port);
    expect(a.tableName).not.toBe(b.tableName);
  });

  test('each gives a registration without a lease its own default lease', async () => {
    const c = cluster();
    expect((await register(a, c, 'n1')).leaseSeconds).toBe(SETTINGS_A.defaultLeaseSeconds);
    expect((await register(b, c, 'n1')).leaseSeconds).toBe(SETTINGS_B.defaultLeaseSeconds);
  });

  test('each requires tokens or not by its own setting, and signs with its own secret', async () => {
    const c = cluster();
    expect(a.adminToken).toBeUndefined();
    expect(b.adminToken).toEqual(expect.any(String));
    expect((await call(a, 'PUT', `/v1/clusters/${c}/nodes/n1`, {})).status).toBe(201);
    expect((await call(b, 'PUT', `/v1/clusters/${c}/nodes/n1`, {}, null)).status).toBe(401);
    expect((await call(b, 'PUT', `/v1/clusters/${c}/nodes/n1`, {})).status).toBe(201);
  });

  test('each reads and writes only its own table', async () => {
    const c = cluster();
    await register(a, c, 'only-in-a');
    expect((await call(b, 'GET', `/v1/clusters/${c}/nodes/only-in-a`)).status).toBe(404);
    const clustersOfB = (await call(b, 'GET', '/v1/clusters')).json.clusters as { clusterId: string }[];
    expect(clustersOfB.map((x) => x.clusterId)).not.toContain(c);
    const clustersOfA = (await call(a, 'GET', '/v1/clusters')).json.clusters as { clusterId: string }[];
    expect(clustersOfA.map((x) => x.clusterId)).toContain(c);
  });

  test('each cuts a dropped node to its own disconnect grace', async () => {
    const c = cluster();
    await register(a, c, 'n1');
    await register(b, c, 'n1');
    const boundA = await connect(a, `clusterId=${c}&nodeId=n1`);
    const boundB = await connect(b, `clusterId=${c}&nodeId=n1`);
    const droppedAt = Date.now();
    boundA.ws.terminate();
    boundB.ws.terminate();
    // A: 0.5 s grace, then a sweep within 0.2 s; the deadline is many times that.
    const downInA = await eventually(async () => {
      const node = await getNode(a, c, 'n1');
      return node.downReason === 'disconnected' && node;
    }, 15_000, 'the node of A to go DOWN (disconnected)');
    expect(downInA.status).toBe('DOWN');
    // B: its lease (30 s) is cut to its own grace (10 s), so it is still UP when A's went down.
    const cutInB = await eventually(async () => {
      const node = await getNode(b, c, 'n1');
      return Date.parse(node.expiresAt) < droppedAt + SETTINGS_B.defaultLeaseSeconds * 1000 - 5_000 && node;
    }, 15_000, 'the lease of the node of B to be cut to the grace');
    expect(cutInB.status).toBe('UP');
    const left = Date.parse(cutInB.expiresAt) - droppedAt;
    expect(left).toBeGreaterThanOrEqual(SETTINGS_B.disconnectGraceSeconds * 1000 - 1000);
    expect(left).toBeLessThanOrEqual(SETTINGS_B.disconnectGraceSeconds * 1000 + 5000);
  });

  test("each serves only its own handlers' metrics", async () => {
    const [beforeA, beforeB] = await Promise.all([scrape(a), scrape(b)]);
    const c = cluster();
    for (const n of ['n1', 'n2', 'n3']) await register(a, c, n);
    await register(b, c, 'n1');
    const [afterA, afterB] = await Promise.all([scrape(a), scrape(b)]);
    expect(delta(afterA, beforeA, REGISTERED)).toBe(3);
    expect(delta(afterB, beforeB, REGISTERED)).toBe(1);
  });

  test('the public port does not serve @connections; the callback port does, to signed calls only', async () => {
    const { ws } = await connect(a, 'clusterId=c1');
    const onPublic = await fetch(`${a.httpUrl}/@connections/AAAAAAAAAAAAAAA=`, { method: 'POST', body: 'x' });
    expect(onPublic.status).toBe(404);
    expect(((await onPublic.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    // As API Gateway answers a call without SigV4: the functions sign theirs with their role's credentials.
    const unsigned = await fetch(`${a.callbackUrl}/@connections/AAAAAAAAAAAAAAA=`, { method: 'POST', body: 'x' });
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(await unsigned.json()).toEqual({ message: 'Missing Authentication Token' });
    ws.terminate();
  });

  test('stopping one (twice) closes its port and leaves the other working: requests, fan-out and sweeper', async () => {
    const { httpUrl } = a;
    await Promise.all([a.stop(), a.stop()]);
    await expect(fetch(`${httpUrl}/v1/health`)).rejects.toThrow();

    const c = cluster();
    const watcher = await connect(b, `clusterId=${c}`);
    await register(b, c, 'short', { leaseSeconds: 2 });
    // The stream poller and the fan-out deliver the registration; the sweeper then finds the 2 s lease expired.
    await eventually(() => watcher.events.some((e) => e.type === 'NODE_REGISTERED' && e.node.nodeId === 'short'), 15_000, 'NODE_REGISTERED from B');
    await eventually(() => watcher.events.some((e) => e.type === 'NODE_DOWN' && e.reason === 'expired'), 20_000, () => `NODE_DOWN (expired) from B; got ${JSON.stringify(watcher.events)}`);
  });
});
