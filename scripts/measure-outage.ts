/**
 * Measures how many requests ONE client sends while the information center
 * is down: the worst case a recovering server faces from each node.
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-outage.ts [--seconds 30]
 *
 * A real RosterClient (a node, with a cache file) runs against the local
 * runtime (spawned here, with its own DynamoDB Local: Java 17+), then the
 * runtime is stopped and its port taken over by a counter that sees every
 * TCP connection the client opens: every HTTP request and every WebSocket
 * attempt is one connection, since nothing can be kept alive on a dead
 * server. Two kinds of dead:
 *   reset  the port accepts and drops every connection (a crashed process
 *          behind a load balancer; the client sees what a closed port gives)
 *   503    every request is answered 503 (a gateway in front of a broken
 *          backend; WebSocket upgrades too)
 * and two moments: a node that was running when the outage began (it loses
 * its lease and keeps trying to register), and a node that starts from its
 * cache file during the outage and has never registered (the case of the
 * old 10 ms retry). Each is counted over a fixed window.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RosterClient } from '@roster/client';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnRuntime } from '../local/spawn.ts';

type Mode = 'reset' | '503';

/** Listens on `port` and counts connections per second since `startedAt`. */
async function counter(port: number, mode: Mode): Promise<{ perSecond: number[]; server: Server; startedAt: number }> {
  const startedAt = performance.now();
  const perSecond: number[] = [];
  const server = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'unavailable' } }));
  });
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
  server.on('connection', (socket) => {
    const second = Math.floor((performance.now() - startedAt) / 1000);
    perSecond[second] = (perSecond[second] ?? 0) + 1;
    if (mode === 'reset') socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { perSecond, server, startedAt };
}

async function window(port: number, mode: Mode, seconds: number, client: () => Promise<RosterClient>): Promise<string> {
  const { perSecond, server } = await counter(port, mode);
  const c = await client();
  await sleep(seconds * 1000);
  const counts = Array.from({ length: seconds }, (_, i) => perSecond[i] ?? 0);
  await c.stop();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  const total = counts.reduce((a, b) => a + b, 0);
  return `${total} requests in ${seconds} s = ${(total / seconds).toFixed(2)}/s, busiest second ${Math.max(...counts)}, last 10 s ${(counts.slice(-10).reduce((a, b) => a + b, 0) / 10).toFixed(2)}/s`;
}

const { values } = parseArgs({ options: { seconds: { type: 'string' } } });
const seconds = Number(values.seconds ?? 30);
const dir = await mkdtemp(join(tmpdir(), 'roster-outage-'));
const cacheFile = join(dir, 'roster-cache.json');
const results: string[] = [];
try {
  for (const mode of ['reset', '503'] as const) {
    // A node that runs, then loses the information center.
    const runtime = await spawnRuntime({});
    const options = { httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId: 'outage', cacheFile, leaseSeconds: 30 };
    const running = new RosterClient({ ...options, nodeId: `running-${mode}` });
    await running.start();
    await runtime.stop();
    results.push(`${mode}, running node (lease 30 s):      ${await window(runtime.port, mode, seconds, () => Promise.resolve(running))}`);
    // A node that starts from its cache file while the information center is down.
    const fresh = () => {
      const c = new RosterClient({ ...options, nodeId: `fresh-${mode}` });
      return c.start().then(() => c);
    };
    results.push(`${mode}, started from cache file:     ${await window(runtime.port, mode, seconds, fresh)}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
for (const line of results) process.stdout.write(`${line}\n`);
process.exit(0);
