/**
 * Fault: the store goes away for longer than the lease and comes back.
 *
 * DynamoDB Local (persisting to a data directory, on a fixed port) is stopped
 * for twice the lease while nodes keep trying to keep alive, then restarted
 * on the same port and data. The runtime uses it through
 * `--dynamodb-endpoint`, so it survives the outage (a runtime that started
 * DynamoDB Local itself stops when it dies).
 *
 * The information center's own outage is not the nodes' fault: the sweeper's
 * self-preservation (an amnesty sweep after it saw store failures) must keep
 * it from turning into a NODE_DOWN storm, and every client must converge on
 * the true list. The stream must work again afterwards too — a deregistration
 * after the recovery is delivered — so "no NODE_DOWN" cannot pass just
 * because nothing is delivered any more.
 *
 * Two kinds of node keep trying: SDK clients (RosterClient), which retry a
 * failed keepalive within 1.5 s and re-register as soon as the store answers,
 * and plain loops that keep alive every lease/3 and nothing more, like a
 * minimal agent. The SDK clients alone would often win the race against the
 * first sweep after the recovery even without self-preservation; the plain
 * loops are the nodes only the amnesty sweep saves (without it this test
 * fails: they go NODE_DOWN).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { RosterClient, type Node } from '@roster/client';
import { freePort, startDynamoDbLocal, type DynamoDbLocal } from '../../local/dynamodb-local.ts';
import { Subscriber } from '../../bench/subscriber.ts';
import { registerDirect, serverList, uniqueCluster } from '../client/helpers.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { eventually, sleep } from '../support/wait.ts';

const LEASE_SECONDS = 4;
const OUTAGE_MS = 8_000;
const NODES = ['n0', 'n1', 'n2', 'n3', 'n4'];
/** Nodes that only keep alive every lease/3 over plain HTTP. */
const LOOPS = ['p0', 'p1', 'p2', 'p3', 'p4'];
const ALL = [...NODES, ...LOOPS].sort();

let dataDir: string;
let port: number;
let ddb: DynamoDbLocal | undefined;
let runtime: SpawnedRuntime | undefined;
const clients: RosterClient[] = [];
let loopsRunning = false;
const loopsDone: Promise<void>[] = [];
const subscribers: Subscriber[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'roster-outage-'));
  port = await freePort();
  ddb = await startDynamoDbLocal({ dataDir, port });
  runtime = await spawnRuntime({ dynamodbEndpoint: ddb.endpoint, sweepInterval: 0.5, disconnectGrace: 1 });
});

afterAll(async () => {
  loopsRunning = false;
  await Promise.all(loopsDone);
  await Promise.all(clients.map((c) => c.stop()));
  await Promise.all(subscribers.map((s) => s.close()));
  await runtime?.stop();
  await ddb?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test('an outage of the store longer than the lease: no NODE_DOWN storm, clients converge, the stream works again', { timeout: 240_000 }, async () => {
  const rt = runtime as SpawnedRuntime;
  const clusterId = uniqueCluster('outage');
  const plain = await Subscriber.open(rt.wsUrl, clusterId, { keepAll: true });
  subscribers.push(plain);
  const watcher = new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId, refreshIntervalMs: 5000 });
  clients.push(watcher);
  // A short refresh interval: a client whose periodic refresh read the list in the moment between the
  // store's return and the amnesty sweep (when expired nodes read as DOWN) corrects itself quickly.
  const nodes = NODES.map(
    (nodeId) => new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId, nodeId, leaseSeconds: LEASE_SECONDS, refreshIntervalMs: 5000 }),
  );
  clients.push(...nodes);
  await Promise.all([watcher, ...nodes].map((c) => c.start()));
  const keptAlive: Record<string, number> = {};
  loopsRunning = true;
  for (const nodeId of LOOPS) {
    await registerDirect(rt.httpUrl, clusterId, nodeId, { leaseSeconds: LEASE_SECONDS });
    keptAlive[nodeId] = 0;
    loopsDone.push(
      (async () => {
        while (loopsRunning) {
          await sleep((LEASE_SECONDS * 1000) / 3);
          // Failures (the store is out) are simply retried at the next interval.
          const res = await fetch(`${rt.httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}/keepalive`, { method: 'POST' }).catch(() => undefined);
          await res?.arrayBuffer();
          if (res?.status === 200) keptAlive[nodeId] = (keptAlive[nodeId] ?? 0) + 1;
        }
      })(),
    );
  }
  // Start-up only (the SDK clients start, the plain loops register): a busy machine may take a while; the outage has not begun.
  await eventually(() => [watcher, ...nodes].every((c) => c.nodes().length === ALL.length), 30_000, 'every client lists the ten nodes');

  // The outage: twice the lease, while the nodes keep trying.
  await (ddb as DynamoDbLocal).stop();
  await sleep(OUTAGE_MS);
  // A JVM's start on a busy machine: the bound is generous, the outage only ends when it answers.
  ddb = await startDynamoDbLocal({ dataDir, port, timeoutMs: 90_000 });

  // Three leases after the recovery: time enough for a wrong sweep to have declared them down.
  await sleep(3 * LEASE_SECONDS * 1000);
  const downs = plain.received.filter((e) => e.type === 'NODE_DOWN').map((e) => e.nodeId);
  expect(downs, 'NODE_DOWN events for nodes that never stopped').toEqual([]);
  // Every node listed UP. On a busy machine a 4 s lease's keepalive can come late and the node read as lapsed
  // for a moment (never declared down: checked above), so the list is read until it holds them all.
  let truth = await serverList(rt.httpUrl, clusterId);
  await eventually(
    async () => JSON.stringify((truth = await serverList(rt.httpUrl, clusterId)).nodes.map((n) => n.nodeId)) === JSON.stringify(ALL),
    20_000,
    () => `the server lists ${truth.nodes.map((n) => n.nodeId).join(', ')}`,
  );
  // The plain loops never register again (a 404 right after the recovery, before the amnesty sweep,
  // is simply retried), so their being UP is the amnesty's doing.
  for (const nodeId of LOOPS) expect((truth.nodes.find((n) => n.nodeId === nodeId) as Node).status).toBe('UP');
  const listed = (c: RosterClient) => JSON.stringify(c.nodes().map((n) => n.nodeId).sort());
  await eventually(() => [watcher, ...nodes].every((c) => listed(c) === JSON.stringify(ALL)), 15_000, 'every client lists the ten nodes again');
  expect(Object.values(keptAlive).every((n) => n > 0)).toBe(true);

  // The stream delivers again: a real departure after the recovery reaches everyone, and only it.
  const leaving = nodes[4] as RosterClient;
  await leaving.stop();
  await plain.waitFor('NODE_DOWN', 'n4', 10_000);
  const remaining = JSON.stringify(ALL.filter((id) => id !== 'n4'));
  await eventually(() => listed(watcher) === remaining, 10_000, 'the watcher drops n4');
  expect(plain.received.filter((e) => e.type === 'NODE_DOWN').map((e) => e.nodeId)).toEqual(['n4']);
  const after = await serverList(rt.httpUrl, clusterId);
  expect(JSON.stringify(after.nodes.map((n) => n.nodeId))).toBe(remaining);
  await eventually(() => nodes.slice(0, 4).every((c) => listed(c) === remaining), 10_000, 'the remaining nodes converge on the true list');
});
