/**
 * Measures the client SDK.
 *
 *   node --expose-gc --conditions=@roster/source --import tsx scripts/measure-client.ts [heap] [converge]
 *
 * heap      Heap retained by a watcher caching 10,000 nodes (goal ≤ 20 MB).
 *           The list comes from a stand-in server in a child process (so its
 *           copy of the list is not on this heap) through the real code path:
 *           RosterClient.start() → WebSocket → GET ?status=all → cache.
 * converge  Time for 100 clients to converge after a 10-second network cut
 *           (goal ≤ 2 s after restore), through TCP proxies, against the local
 *           runtime (spawned here). Two scenarios: 100 watchers while the
 *           cluster changes, and 100 nodes that the server declares down
 *           during the cut and that must register again.
 *
 * With no argument both run.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { RosterClient, type Node } from '@roster/client';
import { startProxy, type TcpProxy } from '../robustness/proxy.ts';
import { spawnRuntime } from '../test/support/runtime.ts';

const NODES = 10_000;
const CLIENTS = 100;
const CLIENTS_PER_PROXY = 10;
const CUT_MS = 10_000;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

// ─── Stand-in server for the heap measurement (runs in a child process) ─────

function fakeNode(i: number): Node {
  const nodeId = `node-${String(i).padStart(5, '0')}`;
  const at = new Date(Date.now() - i * 1000).toISOString();
  return {
    key: `big/${nodeId}`,
    clusterId: 'big',
    nodeId,
    status: 'UP',
    metadata: { zone: `eu-west-1${'abc'[i % 3]}`, role: i % 10 === 0 ? 'coordinator' : 'storage', version: '1.4.2', host: `${nodeId}.example.internal` },
    leaseSeconds: 15,
    incarnation: 1_700_000_000_000 + i,
    registeredAt: at,
    lastKeepaliveAt: at,
    expiresAt: new Date(Date.now() + 15_000).toISOString(),
    revision: i + 1,
  };
}

async function runFakeServer(): Promise<void> {
  const body = JSON.stringify({ clusterId: 'big', revision: NODES, nodes: Array.from({ length: NODES }, (_, i) => fakeNode(i)) });
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/clusters/big/nodes')) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND","message":"no route"}}');
    }
  });
  const wss = new WebSocketServer({ server, path: '/ws' });
  wss.on('connection', (socket) => {
    socket.on('message', () => socket.send(JSON.stringify({ type: 'PONG', at: new Date().toISOString() })));
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
}

// ─── Heap ─────────────────────────────────────────────────────────────────

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc --import tsx');
  for (let i = 0; i < 4; i++) gc();
}

async function measureHeap(): Promise<void> {
  const child = fork(process.argv[1] ?? '', ['--fake-server'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  try {
    const client = new RosterClient({
      httpUrl: `http://127.0.0.1:${port}`,
      wsUrl: `ws://127.0.0.1:${port}/ws`,
      clusterId: 'big',
      refreshIntervalMs: 0,
    });
    collect();
    const before = process.memoryUsage().heapUsed;
    await client.start();
    const cached = client.nodes(); // the sorted list a caller reads is part of normal use
    collect();
    const after = process.memoryUsage().heapUsed;
    console.log(
      `heap: a watcher caching ${cached.length} nodes retains ${mb(after - before)} of heap ` +
        `(process heapUsed ${mb(after)}; goal ≤ 20 MB)`,
    );
    await client.stop();
  } finally {
    child.kill();
  }
}

// ─── Convergence ──────────────────────────────────────────────────────────

const summaryOf = (nodes: readonly Node[]) => nodes.map((n) => `${n.nodeId}@${n.revision}`).join(',');

async function put(httpUrl: string, cluster: string, nodeId: string, body: object): Promise<void> {
  const res = await fetch(`${httpUrl}/v1/clusters/${cluster}/nodes/${nodeId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`register ${nodeId}: HTTP ${res.status}`);
}

async function list(httpUrl: string, cluster: string): Promise<Node[]> {
  const res = await fetch(`${httpUrl}/v1/clusters/${cluster}/nodes`);
  return ((await res.json()) as { nodes: Node[] }).nodes;
}

/**
 * Cuts every proxy for CUT_MS (running `duringCut` meanwhile), restores them,
 * and returns when every client is confirmed and equal to the server's list
 * (`done` may add a condition on that list).
 */
async function cutAndConverge(
  httpUrl: string,
  cluster: string,
  proxies: TcpProxy[],
  clients: RosterClient[],
  duringCut: () => Promise<void>,
  done: (truth: Node[]) => boolean = () => true,
): Promise<{ allMs: number; medianMs: number; lastChangeMs: number }> {
  for (const p of proxies) p.cut();
  const cutAt = Date.now();
  await duringCut();
  await sleep(CUT_MS - (Date.now() - cutAt));
  for (const p of proxies) p.restore();
  const restoredAt = Date.now();
  const firstConverged = new Map<RosterClient, number>();
  for (;;) {
    const truth = await list(httpUrl, cluster);
    const expected = summaryOf(truth);
    let all = done(truth);
    for (const c of clients) {
      const ok = !c.stale && summaryOf(c.nodes()) === expected;
      if (ok && !firstConverged.has(c)) firstConverged.set(c, Date.now() - restoredAt);
      if (!ok) {
        firstConverged.delete(c);
        all = false;
      }
    }
    if (all) {
      const times = [...firstConverged.values()].sort((a, b) => a - b);
      // When the server made its last change to the list (a re-registration after the restore, say).
      const lastChange = Math.max(...truth.map((n) => Date.parse(n.registeredAt)));
      return { allMs: Date.now() - restoredAt, medianMs: times[Math.floor(times.length / 2)] ?? 0, lastChangeMs: lastChange - restoredAt };
    }
    if (Date.now() - restoredAt > 120_000) throw new Error('clients did not converge within 120 s after the restore');
    await sleep(20);
  }
}

async function measureConvergence(): Promise<void> {
  const runtime = await spawnRuntime({}); // the runtime's defaults: lease 15 s, grace 2 s, sweep 1 s
  const proxies: TcpProxy[] = [];
  const clients: RosterClient[] = [];
  try {
    for (let i = 0; i < CLIENTS / CLIENTS_PER_PROXY; i++) proxies.push(await startProxy({ targetPort: runtime.port }));
    const via = (i: number) => proxies[Math.floor(i / CLIENTS_PER_PROXY)] as TcpProxy;

    // 1. Watchers, while nodes outside the cut join, leave and change.
    const watched = 'converge-watch';
    for (let i = 0; i < 20; i++) await put(runtime.httpUrl, watched, `w${i}`, { leaseSeconds: 120 });
    for (let i = 0; i < CLIENTS; i++) {
      const p = via(i);
      clients.push(new RosterClient({ httpUrl: p.via(runtime.httpUrl), wsUrl: p.via(runtime.wsUrl), clusterId: watched }));
    }
    await Promise.all(clients.map((c) => c.start()));
    const watchers = await cutAndConverge(runtime.httpUrl, watched, proxies, clients, async () => {
      for (let i = 0; i < 5; i++) {
        await fetch(`${runtime.httpUrl}/v1/clusters/${watched}/nodes/w${i}`, { method: 'DELETE' });
        await put(runtime.httpUrl, watched, `new${i}`, { leaseSeconds: 120 });
        await put(runtime.httpUrl, watched, `w${10 + i}`, { leaseSeconds: 120, metadata: { changed: 'yes' } });
      }
    });
    console.log(
      `converge (watchers): ${CLIENTS} watchers behind ${proxies.length} proxies, ${CUT_MS / 1000} s cut while 15 nodes changed: ` +
        `all converged ${(watchers.allMs / 1000).toFixed(2)} s after restore (median client ${(watchers.medianMs / 1000).toFixed(2)} s; goal ≤ 2 s)`,
    );
    await Promise.all(clients.splice(0).map((c) => c.stop()));

    // 2. Nodes: during the cut the server sees every bound connection drop and declares the nodes down.
    const cluster = 'converge-nodes';
    for (let i = 0; i < CLIENTS; i++) {
      const p = via(i);
      const nodeId = `n${String(i).padStart(3, '0')}`;
      clients.push(new RosterClient({ httpUrl: p.via(runtime.httpUrl), wsUrl: p.via(runtime.wsUrl), clusterId: cluster, nodeId }));
    }
    await Promise.all(clients.map((c) => c.start()));
    const nodes = await cutAndConverge(runtime.httpUrl, cluster, proxies, clients, () => Promise.resolve(), (truth) => truth.length === CLIENTS);
    console.log(
      `converge (nodes): ${CLIENTS} node clients behind ${proxies.length} proxies, ${CUT_MS / 1000} s cut (all declared down, all re-register): ` +
        `all UP and converged ${(nodes.allMs / 1000).toFixed(2)} s after restore (median client ${(nodes.medianMs / 1000).toFixed(2)} s; ` +
        `the server accepted the last re-registration ${(nodes.lastChangeMs / 1000).toFixed(2)} s after restore)`,
    );
  } finally {
    await Promise.all(clients.map((c) => c.stop()));
    for (const p of proxies) await p.close();
    await runtime.stop();
  }
}

// ─── Main ─────────────────────────────────────────────────────────────────

if (process.argv.includes('--fake-server')) {
  await runFakeServer();
} else {
  const wanted = process.argv.slice(2);
  const all = wanted.length === 0;
  if (all || wanted.includes('heap')) await measureHeap();
  if (all || wanted.includes('converge')) await measureConvergence();
  process.exit(0);
}
