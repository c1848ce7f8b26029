/**
 * Measures the resync herd: many nodes registering at once in one cluster,
 * watched by SDK clients, on the local runtime (spawned here, with its own
 * DynamoDB Local).
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-resync.ts [--nodes 1000] [--subscribers 20] [--waits 0,5000] [--concurrency 100]
 *
 * For each gap wait (`gapWaitMs`; 0 is the rule before the wait: every
 * skipped revision is a gap at once) a fresh cluster is watched by
 * `--subscribers` SDK watchers (periodic refresh off, so every list read is
 * one a gap asked for) and by two raw WebSocket subscribers that record when
 * each revision arrived. Then `--nodes` nodes register, `--concurrency` at a
 * time. Reported:
 * - per watcher: the full-list reads its gaps caused (`resynced` with reason
 *   `gap`), and whether its list ended equal to the server's;
 * - from the raw subscribers: the skipped revisions ("jumps": each one a gap
 *   under the old rule), how late a revision came after an event past it
 *   (p50/p99/max: what the wait must cover), and the revisions that never
 *   came (left unused by a lost race: only a resync accounts for them).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { RosterClient, listNodes } from '@roster/client';
import { eventsIn } from '@roster/contract';
import { spawnRuntime } from '../test/support/runtime.ts';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    subscribers: { type: 'string', default: '20' },
    waits: { type: 'string', default: '0,5000' },
    concurrency: { type: 'string', default: '100' },
  },
});
const NODES = Number(values.nodes);
const SUBSCRIBERS = Number(values.subscribers);
const WAITS = values.waits.split(',').map(Number);
const CONCURRENCY = Number(values.concurrency);
const RAW = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;

/** A raw subscriber: when each revision first arrived, in order of arrival. */
async function rawSubscriber(wsUrl: string, clusterId: string): Promise<{ arrivals: Map<number, number>; close(): void }> {
  const arrivals = new Map<number, number>();
  const socket = new WebSocket(`${wsUrl}?clusterId=${clusterId}&batch=true`);
  socket.on('message', (data) => {
    const at = performance.now();
    for (const event of eventsIn(JSON.parse(String(data))) ?? []) if (!arrivals.has(event.revision)) arrivals.set(event.revision, at);
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return { arrivals, close: () => socket.close() };
}

/** Jumps, lateness and never-arrived revisions seen by one raw subscriber, for revisions `first..last`. */
function ordering(arrivals: Map<number, number>, first: number, last: number): { jumps: number; late: number[]; never: number } {
  let highest = first - 1;
  let jumps = 0;
  // In order of arrival (a Map keeps insertion order): the earliest arrival of any revision above each one.
  const firstPast = new Map<number, number>();
  for (const [revision, at] of arrivals) {
    if (revision > highest + 1) jumps++;
    for (let r = highest + 1; r < revision; r++) if (!firstPast.has(r)) firstPast.set(r, at);
    highest = Math.max(highest, revision);
  }
  const late: number[] = [];
  let never = 0;
  for (let r = first; r <= last; r++) {
    const at = arrivals.get(r);
    const past = firstPast.get(r);
    if (at === undefined) never++;
    else if (past !== undefined && past < at) late.push(at - past);
  }
  return { jumps, late: late.sort((a, b) => a - b), never };
}

async function register(httpUrl: string, clusterId: string): Promise<number> {
  let next = 0;
  let retries = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < NODES) {
        const nodeId = `node-${String(next++).padStart(5, '0')}`;
        for (;;) {
          const res = await fetch(`${httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}`, {
            method: 'PUT',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ metadata: { zone: 'a' }, leaseSeconds: 600 }),
          });
          await res.arrayBuffer();
          if (res.status < 300) break;
          if (res.status !== 429 && res.status < 500) throw new Error(`register ${nodeId}: HTTP ${res.status}`);
          retries++;
          await sleep(200 + Math.random() * 300);
        }
      }
    }),
  );
  return retries;
}

const runtime = await spawnRuntime({ readyTimeoutMs: 120_000 });
console.log(`${new Date().toISOString().slice(0, 10)}: ${NODES} registrations (${CONCURRENCY} at a time) in one cluster, ${SUBSCRIBERS} SDK watchers + ${RAW} raw subscribers, local runtime at its defaults`);
try {
  for (const wait of WAITS) {
    const clusterId = `herd-wait-${wait}`;
    const watchers = Array.from({ length: SUBSCRIBERS }, () => new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, refreshIntervalMs: 0, gapWaitMs: wait }));
    const gapReads = new Map<RosterClient, number>(watchers.map((w) => [w, 0]));
    for (const watcher of watchers) {
      watcher.on('resynced', (event) => {
        if (event.reason === 'gap') gapReads.set(watcher, (gapReads.get(watcher) ?? 0) + 1);
      });
    }
    await Promise.all(watchers.map((w) => w.start()));
    const raws = await Promise.all(Array.from({ length: RAW }, () => rawSubscriber(runtime.wsUrl, clusterId)));

    const started = performance.now();
    const retries = await register(runtime.httpUrl, clusterId);
    const registeredMs = performance.now() - started;
    const server = await listNodes({ httpUrl: runtime.httpUrl, clusterId });
    // Settled: every watcher lists every node and, after the wait has run out, owes no resync.
    const deadline = Date.now() + 120_000;
    while (watchers.some((w) => w.nodes().length < NODES || w.stale) && Date.now() < deadline) await sleep(200);
    await sleep(wait + 2_000);
    while (watchers.some((w) => w.stale) && Date.now() < deadline) await sleep(200);
    const settledMs = performance.now() - started;

    const reads = [...gapReads.values()].sort((a, b) => a - b);
    const equal = watchers.filter((w) => JSON.stringify(w.nodes().map((n) => [n.nodeId, n.revision])) === JSON.stringify(server.nodes.map((n) => [n.nodeId, n.revision]))).length;
    const sum = reads.reduce((a, b) => a + b, 0);
    console.log(
      `gapWaitMs ${wait}: registered in ${(registeredMs / 1000).toFixed(1)} s (${retries} retried), settled in ${(settledMs / 1000).toFixed(1)} s; ` +
        `full-list reads per watcher after gaps: mean ${(sum / reads.length).toFixed(1)}, min ${reads[0]}, max ${reads.at(-1)} (${sum} in all); ` +
        `lists equal to the server's at revision ${server.revision}: ${equal}/${watchers.length}`,
    );
    for (const [i, raw] of raws.entries()) {
      const { jumps, late, never } = ordering(raw.arrivals, server.revision - NODES + 1, server.revision);
      console.log(
        `  raw subscriber ${i + 1}: ${raw.arrivals.size} revisions, ${jumps} skipped ahead (each a gap at once under the old rule), ` +
          `${late.length} came late: p50 ${quantile(late, 0.5).toFixed(0)} ms, p99 ${quantile(late, 0.99).toFixed(0)} ms, max ${(late.at(-1) ?? 0).toFixed(0)} ms; ${never} never came`,
      );
      raw.close();
    }
    await Promise.all(watchers.map((w) => w.stop()));
  }
} finally {
  await runtime.stop();
}
