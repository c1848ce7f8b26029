/**
 * Conformance, liveness (docs/how-it-works/detection.md;
 * docs/running-nodes/wire-protocol.md, "The WebSocket API"): lease expiry
 * and connection-bound crash detection, within generous multiples of the
 * documented bounds (never performance assertions). The slow cases run
 * concurrently, each in its own cluster.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { Api, ConnectRefused, Subscriber, uid, type WireEvent } from './client.ts';
import { eventually, sleep } from '../support/wait.ts';
import { openTarget, type Target } from './target.ts';

let target: Target;
let api: Api;
const subscribers: Subscriber[] = [];
const BIN = fileURLToPath(new URL('../../bin/roster.js', import.meta.url));
/** How many times the documented bound a case may take before it fails. */
const SLACK = 4;

beforeAll(async () => {
  target = await openTarget();
  api = new Api(target.httpUrl);
});

afterAll(async () => {
  await Promise.all(subscribers.map((s) => s.close()));
  await target?.close();
});

async function connect(query: Record<string, string>): Promise<Subscriber> {
  const s = await Subscriber.open(target.wsUrl, query);
  subscribers.push(s);
  return s;
}

/** Detection bound of a lease expiry: lease + sweep interval + delivery. */
const expiryBound = (leaseMs: number) => leaseMs + target.sweepIntervalMs + target.deliveryMs;
/** Detection bound of a dropped bound connection: grace + sweep interval + delivery. */
const crashBound = () => target.graceMs + target.sweepIntervalMs + target.deliveryMs;

describe.concurrent('liveness', () => {
  test('a node whose lease runs out goes NODE_DOWN with reason expired, within lease + sweep + delivery', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    const registered = (await api.register(c, 'n1', { leaseSeconds: 2 })).body.node;
    await watcher.waitForEvent('NODE_REGISTERED', 'n1', SLACK * target.deliveryMs + 5000);

    const down = await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * expiryBound(2000));
    expect(down.reason).toBe('expired');
    expect(down.node).toMatchObject({ status: 'DOWN', downReason: 'expired' });
    // Never before the lease ran out (both times from the server's clock).
    expect(Date.parse(down.at)).toBeGreaterThanOrEqual(Date.parse(registered.expiresAt));
    expect(down.revision).toBeGreaterThan(registered.revision);
    expect((await api.list(c)).body.nodes).toEqual([]);
    expect((await api.list(c, true)).body.nodes[0]).toMatchObject({ nodeId: 'n1', status: 'DOWN', downReason: 'expired' });
  });

  test('a crashed process (bound connection dropped without a close frame) goes NODE_DOWN disconnected within grace + sweep', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    // A long lease: only the dropped connection can explain a quick NODE_DOWN.
    await api.register(c, 'n1', { leaseSeconds: 300 });
    const bound = await connect({ clusterId: c, nodeId: 'n1' });
    await watcher.waitForEvent('NODE_REGISTERED', 'n1', SLACK * target.deliveryMs + 5000);

    const crashedAt = Date.now();
    bound.crash();
    const down = await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * crashBound());
    expect(down.reason).toBe('disconnected');
    expect(down.node).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
    expect(Date.now() - crashedAt).toBeLessThan(SLACK * crashBound());
    expect((await api.get(c, 'n1')).body.node).toMatchObject({ status: 'DOWN', downReason: 'disconnected' });
    expect((await api.keepalive(c, 'n1')).status).toBe(404);
  });

  test('a watcher on plain ws sees NODE_REGISTERED, then NODE_DOWN when the registering process is killed', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    // A real node process (the CLI's agent), with a long lease: only its dropped connection can take it down quickly.
    const agent = spawn(
      process.execPath,
      [BIN, 'agent', c, 'n1', '--lease', '300', '--url', target.httpUrl, '--ws-url', target.wsUrl],
      { stdio: 'ignore' },
    );
    try {
      const registered = await watcher.waitForEvent('NODE_REGISTERED', 'n1', 30_000);
      expect(registered.node.leaseSeconds).toBe(300);
      // Give the agent time to open its bound connection (it registers first, then connects).
      await eventually(async () => {
        const node = (await api.get(c, 'n1')).body.node;
        if (node.lastKeepaliveAt === registered.node.lastKeepaliveAt) throw new Error('not bound yet');
        return node;
      }, 30_000);
      agent.kill('SIGKILL');
      const down = await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * crashBound());
      expect(down.reason).toBe('disconnected');
    } finally {
      agent.kill('SIGKILL');
    }
  });

  test('a clean close of a bound connection (close frame 1000) starts the grace like a crash: NODE_DOWN disconnected', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    await api.register(c, 'n1', { leaseSeconds: 300 });
    const bound = await connect({ clusterId: c, nodeId: 'n1' });
    await watcher.waitForEvent('NODE_REGISTERED', 'n1', SLACK * target.deliveryMs + 5000);
    await bound.close();
    expect(bound.closeCode).toBe(1000);
    const down = await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * crashBound());
    expect(down.reason).toBe('disconnected');
  });

  test('a bound connection stays bound across re-registrations of the same incarnation', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    await api.register(c, 'n1', { leaseSeconds: 300, incarnation: 5 });
    const bound = await connect({ clusterId: c, nodeId: 'n1', incarnation: '5' });
    // A renewal (no event) and a change of metadata (NODE_UPDATED), each a new lease.
    expect((await api.register(c, 'n1', { leaseSeconds: 300, incarnation: 5 })).status).toBe(200);
    expect((await api.register(c, 'n1', { leaseSeconds: 300, incarnation: 5, metadata: { v: '2' } })).status).toBe(200);
    await watcher.waitForEvent('NODE_UPDATED', 'n1', SLACK * target.deliveryMs + 5000);
    bound.crash();
    // Only the binding can take a node with a 300 s lease down this soon.
    const down = await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * crashBound());
    expect(down.reason).toBe('disconnected');
  });

  test('a registration with a new incarnation ends the binding of the previous run\'s connection', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    await api.register(c, 'n1', { leaseSeconds: 300, incarnation: 5 });
    const old = await connect({ clusterId: c, nodeId: 'n1', incarnation: '5' });
    expect((await api.register(c, 'n1', { leaseSeconds: 300, incarnation: 6 })).status).toBe(200);
    old.crash();
    // Well past grace + sweep + delivery: the old run's connection no longer speaks for the node.
    await sleep(1.5 * crashBound());
    expect((await api.get(c, 'n1')).body.node).toMatchObject({ status: 'UP', incarnation: 6 });
    await api.deregister(c, 'n1');
    await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * target.deliveryMs + 5000);
    expect(watcher.events(c).map((e) => `${e.type}${e.reason ? `:${e.reason}` : ''}`)).toEqual(['NODE_REGISTERED', 'NODE_REGISTERED', 'NODE_DOWN:deregistered']);
  });

  test('a bound node that reconnects within the grace period stays UP', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    await api.register(c, 'n1', { leaseSeconds: 300 });
    const first = await connect({ clusterId: c, nodeId: 'n1' });
    first.crash();
    await connect({ clusterId: c, nodeId: 'n1' });

    // Well past grace + sweep + delivery: a NODE_DOWN would have arrived by now.
    await sleep(1.5 * crashBound());
    expect((await api.get(c, 'n1')).body.node.status).toBe('UP');
    await api.deregister(c, 'n1');
    await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * target.deliveryMs + 5000);
    const events = watcher.events(c).map((e: WireEvent) => `${e.type}${e.reason ? `:${e.reason}` : ''}`);
    expect(events).toEqual(['NODE_REGISTERED', 'NODE_DOWN:deregistered']);
  });

  test('a bound node that keeps alive after its connection dropped stays UP', async ({ expect }) => {
    const c = uid('c');
    const watcher = await connect({ clusterId: c });
    const registered = (await api.register(c, 'n1', { leaseSeconds: 300 })).body.node;
    const bound = await connect({ clusterId: c, nodeId: 'n1' });
    bound.crash();
    // The drop cuts the lease to the grace period; a keepalive after the cut restores the full lease.
    await eventually(async () => {
      const node = (await api.get(c, 'n1')).body.node;
      expect(Date.parse(node.expiresAt)).toBeLessThan(Date.parse(registered.expiresAt) - 60_000);
    }, SLACK * crashBound());
    const kept = await api.keepalive(c, 'n1');
    expect(kept.status).toBe(200);
    expect(Date.parse(kept.body.node.expiresAt) - Date.parse(kept.body.node.lastKeepaliveAt)).toBe(300_000);
    await sleep(1.5 * crashBound());
    expect((await api.get(c, 'n1')).body.node.status).toBe('UP');
    await api.deregister(c, 'n1');
    await watcher.waitForEvent('NODE_DOWN', 'n1', SLACK * target.deliveryMs + 5000);
    expect(watcher.events(c).map((e) => e.type)).toEqual(['NODE_REGISTERED', 'NODE_DOWN']);
  });

  test('binding a node that is not registered is refused', async ({ expect }) => {
    const c = uid('c');
    const refused = await Subscriber.open(target.wsUrl, { clusterId: c, nodeId: 'ghost' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(ConnectRefused);
    if (target.local) {
      expect((refused as ConnectRefused).status).toBe(404);
      expect((refused as ConnectRefused).body).toContain('NODE_NOT_FOUND');
    }
    const noCluster = await Subscriber.open(target.wsUrl, { nodeId: 'n1' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(noCluster).toBeInstanceOf(ConnectRefused);
    if (target.local) expect((noCluster as ConnectRefused).status).toBe(400);
  });
});
