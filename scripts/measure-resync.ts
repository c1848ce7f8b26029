/**
 * Measures the resync herd and the list's pages, on the local runtime
 * (spawned here, with a DynamoDB Local of its own).
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-resync.ts herd [--nodes 1000] [--subscribers 20] [--waits 0,5000] [--concurrency 100]
 *   node --conditions=@roster/source --import tsx scripts/measure-resync.ts pages [--nodes 10000] [--metadata-bytes 1024] [--random]
 *
 * herd   For each gap wait (`gapWaitMs`; 0 is the rule before the wait:
 *        every skipped revision is a gap at once) a fresh cluster is watched
 *        by `--subscribers` SDK watchers (periodic refresh off, so every list
 *        read is one a gap asked for) and by two raw WebSocket subscribers
 *        that record when each revision arrived. Then `--nodes` nodes
 *        register, `--concurrency` at a time. Reported: per watcher, the
 *        full-list reads its gaps caused (`resynced` with reason `gap`) and
 *        whether its list ended equal to the server's; from the raw
 *        subscribers, the skipped revisions (each one a gap under the old
 *        rule), how late a revision came after an event past it (p50, p99,
 *        max: what the wait must cover), and the revisions that never came.
 * pages  `--nodes` nodes with `--metadata-bytes` of metadata each in one
 *        cluster (written through the registry's own register, in process),
 *        then the whole list read over HTTP as the SDK reads it (`limit`
 *        5,000), once as it is and once gzip-compressed: pages, the largest
 *        page against Lambda's 6 MB response (the body as the escaped JSON
 *        string, or as base64, it is there) and the HTTP API's 10 MB. The
 *        metadata repeats as a fleet's does (hosts, zones, versions, labels),
 *        gzip's good case; `--random` fills it with random hex instead, its
 *        worst.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gunzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { RosterClient, listNodes } from '@roster/client';
import { eventsIn, LIST_PAGE_MAX, type NodeList } from '@roster/contract';
import { createDocumentClient } from '../functions/core/aws.ts';
import { readConfig } from '../functions/core/config.ts';
import { register } from '../functions/core/registry.ts';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import { spawnRuntime, type SpawnedRuntime } from '../test/support/runtime.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: 'string' },
    subscribers: { type: 'string', default: '20' },
    waits: { type: 'string', default: '0,5000' },
    concurrency: { type: 'string', default: '100' },
    'metadata-bytes': { type: 'string', default: '1024' },
    random: { type: 'boolean', default: false },
  },
});
const mode = positionals[0] ?? 'herd';
const quantile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const mb = (bytes: number) => `${(bytes / 1_000_000).toFixed(2)} MB`;
const today = new Date().toISOString().slice(0, 10);

// ─── herd ────────────────────────────────────────────────────────────────

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

async function registerOverHttp(httpUrl: string, clusterId: string, nodes: number, concurrency: number): Promise<number> {
  let next = 0;
  let retries = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < nodes) {
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

async function herd(runtime: SpawnedRuntime): Promise<void> {
  const nodes = Number(values.nodes ?? 1000);
  const subscribers = Number(values.subscribers);
  const concurrency = Number(values.concurrency);
  console.log(`${today}: ${nodes} registrations (${concurrency} at a time) in one cluster, ${subscribers} SDK watchers + 2 raw subscribers, local runtime at its defaults`);
  for (const wait of values.waits.split(',').map(Number)) {
    const clusterId = `herd-wait-${wait}`;
    const watchers = Array.from({ length: subscribers }, () => new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, refreshIntervalMs: 0, gapWaitMs: wait }));
    const gapReads = new Map<RosterClient, number>(watchers.map((w) => [w, 0]));
    for (const watcher of watchers) {
      watcher.on('resynced', (event) => {
        if (event.reason === 'gap') gapReads.set(watcher, (gapReads.get(watcher) ?? 0) + 1);
      });
    }
    await Promise.all(watchers.map((w) => w.start()));
    const raws = await Promise.all([1, 2].map(() => rawSubscriber(runtime.wsUrl, clusterId)));

    const started = performance.now();
    const retries = await registerOverHttp(runtime.httpUrl, clusterId, nodes, concurrency);
    const registeredMs = performance.now() - started;
    const server = await listNodes({ httpUrl: runtime.httpUrl, clusterId });
    // Settled: every watcher lists every node and, once its wait has run out, owes no resync.
    const deadline = Date.now() + 120_000;
    while (watchers.some((w) => w.nodes().length < nodes || w.stale) && Date.now() < deadline) await sleep(200);
    await sleep(wait + 2_000);
    while (watchers.some((w) => w.stale) && Date.now() < deadline) await sleep(200);
    const settledMs = performance.now() - started;

    const reads = [...gapReads.values()].sort((a, b) => a - b);
    const serverView = JSON.stringify(server.nodes.map((n) => [n.nodeId, n.revision]));
    const equal = watchers.filter((w) => JSON.stringify(w.nodes().map((n) => [n.nodeId, n.revision])) === serverView).length;
    const sum = reads.reduce((a, b) => a + b, 0);
    console.log(
      `gapWaitMs ${wait}: registered in ${(registeredMs / 1000).toFixed(1)} s (${retries} retried), settled in ${(settledMs / 1000).toFixed(1)} s; ` +
        `full-list reads per watcher after gaps: mean ${(sum / reads.length).toFixed(1)}, min ${reads[0]}, max ${reads.at(-1)} (${sum} in all); ` +
        `lists equal to the server's at revision ${server.revision}: ${equal}/${watchers.length}`,
    );
    for (const [i, raw] of raws.entries()) {
      const { jumps, late, never } = ordering(raw.arrivals, server.revision - nodes + 1, server.revision);
      console.log(
        `  raw subscriber ${i + 1}: ${raw.arrivals.size} revisions, ${jumps} skipped ahead (each a gap at once under the old rule), ` +
          `${late.length} came late: p50 ${quantile(late, 0.5).toFixed(0)} ms, p99 ${quantile(late, 0.99).toFixed(0)} ms, max ${(late.at(-1) ?? 0).toFixed(0)} ms; ${never} never came`,
      );
      raw.close();
    }
    await Promise.all(watchers.map((w) => w.stop()));
  }
}

// ─── pages ───────────────────────────────────────────────────────────────

/** A GET whose body is kept as the server sent it (fetch would decode a gzip body on its own). */
function getBytes(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function pages(runtime: SpawnedRuntime, endpoint: string, tableName: string): Promise<void> {
  const nodes = Number(values.nodes ?? 10_000);
  const metadataBytes = Number(values['metadata-bytes']);
  const clusterId = 'pages';
  const config = readConfig({ TABLE_NAME: tableName, DYNAMODB_ENDPOINT: endpoint, ROSTER_AUTH: 'off' });
  const deps = { db: createDocumentClient(config), config, now: Date.now };
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < nodes) {
        const i = next++;
        const nodeId = `node-${String(i).padStart(5, '0')}`;
        const base = { host: `${nodeId}.storage.eu-west-1.example.internal`, zone: `eu-west-1${'abc'[i % 3]}`, role: i % 10 === 0 ? 'coordinator' : 'storage', version: '2.14.3' };
        const used = Object.entries(base).reduce((n, [k, v]) => n + k.length + v.length, 0);
        const fill = Math.max(0, metadataBytes - used - 'labels'.length);
        const labels = values.random ? randomBytes(Math.ceil(fill / 2)).toString('hex').slice(0, fill) : 'tier=hot,backup=nightly,'.repeat(Math.ceil(fill / 24)).slice(0, fill);
        await register(deps, clusterId, nodeId, { metadata: { ...base, labels }, leaseSeconds: 3600 });
      }
    }),
  );
  console.log(`${today}: ${nodes} nodes with ${metadataBytes} B of ${values.random ? 'random hex' : 'fleet-like'} metadata each in one cluster (written in ${((performance.now() - started) / 1000).toFixed(0)} s)`);
  for (const encoding of ['identity', 'gzip']) {
    let cursor: string | undefined;
    let count = 0;
    let wire = 0;
    let largestWire = 0;
    let largestLambda = 0;
    const sizes: number[] = [];
    const t0 = performance.now();
    do {
      const url = `${runtime.httpUrl}/v1/clusters/${clusterId}/nodes?limit=${LIST_PAGE_MAX}${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await getBytes(url, { 'accept-encoding': encoding });
      if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
      const gz = res.headers['content-encoding'] === 'gzip';
      const text = gz ? gunzipSync(res.body).toString('utf8') : res.body.toString('utf8');
      const page = JSON.parse(text) as NodeList;
      // What the body weighs in the Lambda result: base64 when compressed, else the JSON escaped as a string.
      const inLambda = gz ? 4 * Math.ceil(res.body.length / 3) : Buffer.byteLength(JSON.stringify(text));
      count += page.nodes.length;
      sizes.push(page.nodes.length);
      wire += res.body.length;
      largestWire = Math.max(largestWire, res.body.length);
      largestLambda = Math.max(largestLambda, inLambda);
      cursor = page.next;
    } while (cursor !== undefined);
    console.log(
      `  ${encoding}: ${count} nodes in ${sizes.length} pages (${sizes.join(', ')}), ${mb(wire)} on the wire in all, ` +
        `largest page ${mb(largestWire)} on the wire, ${mb(largestLambda)} in Lambda's response (limit 6 MB), read in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
}

// ─── main ────────────────────────────────────────────────────────────────

if (mode !== 'herd' && mode !== 'pages') throw new Error(`unknown mode ${mode}: herd or pages`);
const dynamodb = await startDynamoDbLocal();
const tableName = `measure-${randomUUID().slice(0, 8)}`;
const runtime = await spawnRuntime({ dynamodbEndpoint: dynamodb.endpoint, extraArgs: ['--table', tableName], readyTimeoutMs: 120_000 });
try {
  if (mode === 'herd') await herd(runtime);
  else await pages(runtime, dynamodb.endpoint, tableName);
} finally {
  await runtime.stop();
  await dynamodb.stop();
}
