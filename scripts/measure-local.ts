/**
 * Measures the local runtime the way a user meets it, and prints three figures:
 *
 * 1. time from `npm start` to the two ready lines (DynamoDB Local included),
 * 2. register-to-event latency at one subscriber (p50/p99 over N registrations,
 *    measured from sending the PUT to receiving the NODE_REGISTERED event),
 * 3. crash-detection time with the defaults (grace 2 s, sweep 1 s): from
 *    dropping a bound WebSocket without a close frame to receiving NODE_DOWN.
 *
 *   npx tsx scripts/measure-local.ts [--runs 3] [--registrations 200] [--crashes 5]
 *
 * `roster bench` is meant to absorb this; everything it needs is exported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Started {
  child: ChildProcess;
  httpUrl: string;
  wsUrl: string;
  readyMs: number;
  stop(): Promise<void>;
}

/** `npm start -- --port 0` in its own process group, resolved when both ready lines are out. */
export async function startWithNpm(extraArgs: string[] = [], timeoutMs = 60_000): Promise<Started> {
  const t0 = performance.now();
  const child = spawn('npm', ['start', '--silent', '--', '--port', '0', ...extraArgs], {
    cwd: REPO_ROOT,
    detached: true, // its own process group: stop() signals npm, tsx, node and Java together, like Ctrl-C
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-(child.pid as number), 'SIGINT');
    } catch {
      return;
    }
    const force = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, 20_000);
    await exited;
    clearTimeout(force);
  };
  try {
    const urls = await new Promise<{ httpUrl: string; wsUrl: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const http = /^HTTP API {2}(\S+)$/m.exec(out);
        const ws = /^WebSocket (\S+)$/m.exec(out);
        if (http?.[1] && ws?.[1]) {
          clearTimeout(timer);
          resolve({ httpUrl: http[1], wsUrl: ws[1] });
        }
      });
      void exited.then(() => reject(new Error(`npm start exited before it was ready:\n${err}`)));
    });
    return { child, ...urls, readyMs: performance.now() - t0, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

interface Event {
  type: string;
  reason?: string;
  node: { nodeId: string };
}

class Listener {
  private readonly waiting = new Map<string, (e: Event) => void>();
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const event = JSON.parse(data.toString()) as Event;
      this.waiting.get(`${event.type}/${event.node?.nodeId}`)?.(event);
    });
  }
  static async open(url: string): Promise<Listener> {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new Listener(ws);
  }
  next(type: string, nodeId: string, timeoutMs = 30_000): Promise<Event> {
    return new Promise((resolve, reject) => {
      const key = `${type}/${nodeId}`;
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no ${type} for ${nodeId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, (e) => {
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(e);
      });
    });
  }
}

async function register(httpUrl: string, clusterId: string, nodeId: string, leaseSeconds = 60): Promise<void> {
  const res = await fetch(`${httpUrl}/v1/clusters/${clusterId}/nodes/${nodeId}`, { method: 'PUT', body: JSON.stringify({ leaseSeconds }) });
  await res.arrayBuffer();
  if (res.status !== 201 && res.status !== 200) throw new Error(`register ${nodeId}: HTTP ${res.status}`);
}

export const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;

/** Register-to-event latency in ms, one registration at a time. */
export async function measureLatency(httpUrl: string, wsUrl: string, count: number, warmup = 20): Promise<number[]> {
  const clusterId = `bench-${randomUUID().slice(0, 8)}`;
  const listener = await Listener.open(`${wsUrl}?clusterId=${clusterId}`);
  const samples: number[] = [];
  try {
    for (let i = 0; i < warmup + count; i++) {
      // A random pause, so registrations arrive at random phases of the stream poll
      // (back-to-back registrations would lock onto the poll timer and always wait a full interval).
      await new Promise((r) => setTimeout(r, Math.random() * 100));
      const nodeId = `n${i}`;
      const event = listener.next('NODE_REGISTERED', nodeId);
      const t0 = performance.now();
      await register(httpUrl, clusterId, nodeId);
      await event;
      if (i >= warmup) samples.push(performance.now() - t0);
    }
  } finally {
    listener.ws.close();
  }
  return samples;
}

/** Crash-detection time in ms: bound connection dropped without a close frame → NODE_DOWN (disconnected) received. */
export async function measureCrashDetection(httpUrl: string, wsUrl: string, trials: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < trials; i++) {
    const clusterId = `crash-${randomUUID().slice(0, 8)}`;
    const watcher = await Listener.open(`${wsUrl}?clusterId=${clusterId}`);
    try {
      await register(httpUrl, clusterId, 'n1', 300);
      const bound = await Listener.open(`${wsUrl}?clusterId=${clusterId}&nodeId=n1`);
      // A random phase against the sweeper's timer, as a real crash would have.
      await new Promise((r) => setTimeout(r, Math.random() * 1000));
      const down = watcher.next('NODE_DOWN', 'n1');
      const t0 = performance.now();
      bound.ws.terminate();
      const event = await down;
      samples.push(performance.now() - t0);
      if (event.reason !== 'disconnected') throw new Error(`NODE_DOWN with reason ${event.reason}, expected disconnected`);
    } finally {
      watcher.ws.close();
    }
  }
  return samples;
}

const fmt = (ms: number) => `${Math.round(ms)} ms`;
const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      registrations: { type: 'string', default: '200' },
      crashes: { type: 'string', default: '5' },
    },
  });
  const runs = Math.max(1, Number(values.runs));
  const registrations = Math.max(1, Number(values.registrations));
  const crashes = Math.max(1, Number(values.crashes));

  const startups: number[] = [];
  let runtime: Started | undefined;
  const cleanup = () => {
    if (runtime?.child.pid) {
      try {
        process.kill(-runtime.child.pid, 'SIGINT');
      } catch {
        // gone
      }
    }
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    for (let i = 0; i < runs; i++) {
      runtime = await startWithNpm();
      startups.push(runtime.readyMs);
      process.stderr.write(`run ${i + 1}: ready after ${fmt(runtime.readyMs)}\n`);
      if (i < runs - 1) await runtime.stop();
    }
    const { httpUrl, wsUrl } = runtime as Started;
    const latencies = (await measureLatency(httpUrl, wsUrl, registrations)).sort((a, b) => a - b);
    const detections = await measureCrashDetection(httpUrl, wsUrl, crashes);

    console.log(`startup, npm start -> ready (${runs} runs, DynamoDB Local included): ${startups.map(fmt).join(', ')}; median ${fmt(median(startups))} (goal <= 5000 ms)`);
    console.log(
      `register -> event latency, 1 subscriber, ${registrations} registrations: p50 ${fmt(percentile(latencies, 50))}, p99 ${fmt(percentile(latencies, 99))}, max ${fmt(latencies.at(-1) as number)} (goal p99 <= 300 ms)`,
    );
    console.log(
      `crash detection, grace 2 s + sweep 1 s (${crashes} trials): ${detections.map((d) => (d / 1000).toFixed(2)).join(', ')} s; median ${(median(detections) / 1000).toFixed(2)} s, max ${(Math.max(...detections) / 1000).toFixed(2)} s (goal <= 3.5 s)`,
    );
  } finally {
    await runtime?.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
