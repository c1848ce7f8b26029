/**
 * `--fault-injection` (local/faults.ts): the runtime's own parts stalled or
 * failing on demand, for `roster robustness`. A real runtime process; the
 * faults are observed the way a user would: through events on a WebSocket.
 */
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import { Subscriber } from '../../bench/subscriber.ts';
import { parseServeArgs } from '../../local/main.ts';
import { registerDirect, uniqueCluster } from '../client/helpers.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { sleep } from '../support/wait.ts';

let runtime: SpawnedRuntime;
let faultsUrl: string;
const subscribers: Subscriber[] = [];

beforeAll(async () => {
  runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint'), sweepInterval: 0.5, extraArgs: ['--fault-injection'] });
  const match = /^Faults {4}(http:\/\/127\.0\.0\.1:\d+)$/m.exec(runtime.output());
  if (!match?.[1]) throw new Error(`no Faults line:\n${runtime.output()}`);
  faultsUrl = match[1];
});

afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close()));
  await runtime?.stop();
});

const control = (method: string, path: string, body?: unknown) =>
  fetch(`${faultsUrl}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });

async function subscriber(clusterId: string): Promise<Subscriber> {
  const s = await Subscriber.open(runtime.wsUrl, clusterId, { keepAll: true });
  subscribers.push(s);
  return s;
}

test('off unless asked for', () => {
  expect(parseServeArgs([])).toMatchObject({ faultInjection: false });
  expect(parseServeArgs(['--fault-injection'])).toMatchObject({ faultInjection: true });
});

test('the control endpoint lists the faults and refuses what it does not know', async () => {
  expect(await (await control('GET', '/faults')).json()).toEqual({ sweeper: 0, poller: 0, posts: 0 });
  expect((await control('PUT', '/faults/network', { forMs: 10 })).status).toBe(404);
  expect((await control('PUT', '/faults/sweeper', { forMs: 0 })).status).toBe(400);
  expect((await control('PUT', '/faults/sweeper', { forMs: 1000, extra: 1 })).status).toBe(400);
  expect((await control('PUT', '/faults/sweeper', {})).status).toBe(400);
  expect((await control('POST', '/faults/sweeper', { forMs: 10 })).status).toBe(405);
  expect(await (await control('GET', '/faults')).json()).toEqual({ sweeper: 0, poller: 0, posts: 0 });
});

test('a stalled sweeper declares nothing down until the stall ends', { timeout: 30_000 }, async () => {
  const clusterId = uniqueCluster('stall');
  const watch = await subscriber(clusterId);
  await registerDirect(runtime.httpUrl, clusterId, 'n1', { leaseSeconds: 2 });
  expect((await control('PUT', '/faults/sweeper', { forMs: 60_000 })).status).toBe(204);
  // Well past the 2 s lease plus several 0.5 s sweep intervals: a running sweeper would have declared it down.
  await sleep(4000);
  expect(((await (await control('GET', '/faults')).json()) as { sweeper: number }).sweeper).toBeGreaterThan(0);
  expect(watch.received.filter((e) => e.type === 'NODE_DOWN')).toEqual([]);
  const ended = Date.now();
  expect((await control('DELETE', '/faults/sweeper')).status).toBe(204);
  const down = await watch.waitFor('NODE_DOWN', 'n1', 15_000);
  expect(down?.wallAt).toBeGreaterThanOrEqual(ended);
});

test('a stalled poller holds events until the stall ends, then delivers them', { timeout: 30_000 }, async () => {
  const clusterId = uniqueCluster('poller');
  const watch = await subscriber(clusterId);
  expect((await control('PUT', '/faults/poller', { forMs: 60_000 })).status).toBe(204);
  await registerDirect(runtime.httpUrl, clusterId, 'n1');
  expect(await watch.waitFor('NODE_REGISTERED', 'n1', 2000)).toBeUndefined();
  const ended = Date.now();
  expect((await control('DELETE', '/faults/poller')).status).toBe(204);
  const arrival = await watch.waitFor('NODE_REGISTERED', 'n1', 15_000);
  expect(arrival?.wallAt).toBeGreaterThanOrEqual(ended);
});

test('failing posts: nothing is delivered while they fail, events flow again afterwards', { timeout: 30_000 }, async () => {
  const clusterId = uniqueCluster('posts');
  const watch = await subscriber(clusterId);
  expect((await control('PUT', '/faults/posts', { forMs: 60_000 })).status).toBe(204);
  await registerDirect(runtime.httpUrl, clusterId, 'n1');
  expect(await watch.waitFor('NODE_REGISTERED', 'n1', 2000)).toBeUndefined();
  expect((await control('DELETE', '/faults/posts')).status).toBe(204);
  await registerDirect(runtime.httpUrl, clusterId, 'n2');
  expect(await watch.waitFor('NODE_REGISTERED', 'n2', 15_000)).toBeDefined();
});

test('a fault ends by itself after forMs', { timeout: 30_000 }, async () => {
  const clusterId = uniqueCluster('expire');
  const watch = await subscriber(clusterId);
  expect((await control('PUT', '/faults/poller', { forMs: 1500 })).status).toBe(204);
  await registerDirect(runtime.httpUrl, clusterId, 'n1');
  expect(await watch.waitFor('NODE_REGISTERED', 'n1', 15_000)).toBeDefined();
  expect(await (await control('GET', '/faults')).json()).toEqual({ sweeper: 0, poller: 0, posts: 0 });
});
