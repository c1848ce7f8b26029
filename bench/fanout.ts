/**
 * The fan-out measurements, shared by Roster (bench/roster-fanout.ts,
 * bench/storm.ts) and etcd (bench/etcd.ts) so that both sides are timed by
 * the very same loop:
 *
 * - `timeFanout`: registrations one after another, each at a random phase;
 *   for each, the time from sending it until the last (and the median)
 *   subscriber has it;
 * - `timeStorm`: many registrations at once; for each, the time from sending
 *   it until the last subscriber has it (its lag);
 * - `CpuMeter`: the CPU time the processes involved spent per delivered
 *   message, net of what they spend idle.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from '../functions/core/concurrency.ts';
import { startChild } from './procs.ts';
import { summarize, type Summary } from './stats.ts';

/** CPU time per delivered message, in µs; null when a process could not be measured. */
export interface CpuPerMessage {
  /** The server: Roster's runtime process (HTTP and WebSocket APIs, stream poller, fan-out, `@connections`), or etcd. */
  server: number | null;
  /** The store under Roster: DynamoDB Local's JVM (etcd has none apart from itself). */
  store: number | null;
  /** The bench process: the subscribers' WebSocket (or gRPC watch) clients parsing every message. */
  clients: number | null;
}

export interface FanoutResult {
  subscribers: number;
  registrations: number;
  /** Every subscriber received every registration's event. */
  allReceived: boolean;
  /** (subscriber, registration) pairs that never arrived within the timeout. */
  missing: number;
  /** From sending the PUT to the last subscriber having the event. */
  allMs: Summary;
  /** From sending the PUT to the median subscriber having the event. */
  medianSubscriberMs: Summary;
  /** Messages delivered (subscribers × registrations that arrived). */
  messages: number;
  cpuUsPerMessage: CpuPerMessage;
}

/** Registrations sent and awaited before the timed ones, at every size, for Roster and etcd alike. */
export const WARM_UP_REGISTRATIONS = 3;

/** Arrival times (performance.now()) of one registration at every subscriber; undefined where it never arrived. */
export type WaitAll = (key: string, timeoutMs: number) => Promise<(number | undefined)[]>;

export interface Timed {
  all: number[];
  median: number[];
  missing: number;
  messages: number;
}

/**
 * Sends `registrations` registrations one at a time (`register(i)` resolves
 * once the write is acknowledged and returns the key subscribers see) and
 * waits for every subscriber to have each before the next. `cpu` starts
 * counting after WARM_UP_REGISTRATIONS untimed warm-up registrations.
 */
export async function timeFanout(registrations: number, timeoutMs: number, register: (i: number) => Promise<string>, waitAll: WaitAll, cpu?: CpuMeter): Promise<Timed> {
  const timed: Timed = { all: [], median: [], missing: 0, messages: 0 };
  // Untimed registrations first (indexes -1, -2, -3): connections, JIT and execution environments warm, on both
  // sides alike. One is not enough at 1,000 subscribers: the page function's environment gets its first pages then,
  // and its first two or three events still run partly unoptimised (docs/measured/bench.md, "Warm-up").
  for (let w = 1; w <= WARM_UP_REGISTRATIONS; w++) await waitAll(await register(-w), timeoutMs);
  cpu?.begin();
  for (let i = 0; i < registrations; i++) {
    // A random pause puts each registration at a random phase of the stream poll (or etcd's batching).
    await sleep(50 + Math.random() * 100);
    const t0 = performance.now();
    const key = await register(i);
    const arrivals = await waitAll(key, timeoutMs);
    const times = arrivals.filter((a) => a !== undefined).map((a) => a - t0);
    timed.missing += arrivals.length - times.length;
    timed.messages += times.length;
    if (times.length === arrivals.length) {
      times.sort((a, b) => a - b);
      timed.all.push(times.at(-1) ?? Number.NaN);
      timed.median.push(times[Math.floor(times.length / 2)] ?? Number.NaN);
    }
  }
  return timed;
}

export interface StormGroupTimed {
  /** Per registration: from sending it to the last subscriber of the group having it. */
  lagMs: Summary;
  missing: number;
  /** Events delivered (subscribers × registrations that arrived). */
  events: number;
}

export interface StormTimed {
  groups: StormGroupTimed[];
  /** From the first send to the last arrival anywhere. */
  totalMs: number;
}

/**
 * Sends `registrations` registrations with `parallel` in flight (`register(i)`
 * resolves once the write is acknowledged and returns the key subscribers
 * see), then waits for every subscriber of every group to have each.
 */
export async function timeStorm(
  registrations: number,
  parallel: number,
  timeoutMs: number,
  register: (i: number) => Promise<string>,
  groups: WaitAll[],
): Promise<StormTimed> {
  const started = performance.now();
  const sent: { key: string; at: number }[] = new Array(registrations);
  await mapLimit(Array.from({ length: registrations }), parallel, async (_, i) => {
    const at = performance.now();
    sent[i] = { key: await register(i), at };
  });
  let lastArrival = started;
  // Every group waits from the same moment, so one slow group does not shorten another's timeout.
  const timed = await Promise.all(
    groups.map(async (waitAll): Promise<StormGroupTimed> => {
      const lags: number[] = [];
      let missing = 0;
      let events = 0;
      const arrivals = await Promise.all(sent.map((s) => waitAll(s.key, timeoutMs)));
      arrivals.forEach((times, i) => {
        const got = times.filter((t) => t !== undefined);
        missing += times.length - got.length;
        events += got.length;
        if (got.length === times.length && got.length > 0) {
          const last = Math.max(...got);
          lastArrival = Math.max(lastArrival, last);
          lags.push(last - (sent[i] as { at: number }).at);
        }
      });
      return { lagMs: summarize(lags, 0), missing, events };
    }),
  );
  return { groups: timed, totalMs: Math.round(lastArrival - started) };
}

/** A process whose CPU time (µs so far) can be read; undefined when it cannot. */
export type CpuSource = () => number | undefined;

/**
 * CPU time per delivered message of each process involved, net of its idle
 * rate (timers, polls) measured just before the work. CPU time, not wall
 * time: it stays comparable on a machine that is busy with other work.
 */
export class CpuMeter {
  private idleRate: Partial<Record<keyof CpuPerMessage, number>> = {};
  private startAt = 0;
  private start: Partial<Record<keyof CpuPerMessage, number>> = {};

  constructor(private readonly sources: Record<keyof CpuPerMessage, CpuSource | undefined>) {}

  private read(): Partial<Record<keyof CpuPerMessage, number>> {
    const out: Partial<Record<keyof CpuPerMessage, number>> = {};
    for (const [name, source] of Object.entries(this.sources) as [keyof CpuPerMessage, CpuSource | undefined][]) {
      const value = source?.();
      if (value !== undefined) out[name] = value;
    }
    return out;
  }

  /** Measures each process's CPU rate while nothing is asked of it (µs per ms). */
  async measureIdle(ms: number): Promise<void> {
    const before = this.read();
    const t0 = performance.now();
    await sleep(ms);
    const after = this.read();
    const elapsed = performance.now() - t0;
    for (const name of Object.keys(after) as (keyof CpuPerMessage)[]) {
      const b = before[name];
      const a = after[name];
      if (a !== undefined && b !== undefined) this.idleRate[name] = (a - b) / elapsed;
    }
  }

  begin(): void {
    this.startAt = performance.now();
    this.start = this.read();
  }

  /** µs per message since `begin()`, less the idle rate over the same time. */
  end(messages: number): CpuPerMessage {
    const elapsed = performance.now() - this.startAt;
    const now = this.read();
    const per = (name: keyof CpuPerMessage): number | null => {
      const a = now[name];
      const b = this.start[name];
      if (a === undefined || b === undefined || messages === 0) return null;
      const net = Math.max(0, a - b - (this.idleRate[name] ?? 0) * elapsed);
      return Math.round(net / messages);
    };
    return { server: per('server'), store: per('store'), clients: per('clients') };
  }
}

/** The bench process's own CPU time (µs). */
export const ownCpu: CpuSource = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

export function fanoutResult(subscribers: number, registrations: number, timed: Timed, cpu: CpuPerMessage): FanoutResult {
  return {
    subscribers,
    registrations,
    allReceived: timed.missing === 0,
    missing: timed.missing,
    allMs: summarize(timed.all),
    medianSubscriberMs: summarize(timed.median),
    messages: timed.messages,
    cpuUsPerMessage: cpu,
  };
}

export interface PosterCost {
  posts: number;
  /** CPU time of one PostToConnection on the poster's side (µs): what each subscriber costs the fan-out's Lambda. */
  cpuUsPerPost: number;
  /** Size of the message posted (bytes). */
  messageBytes: number;
}

/** A loopback HTTP endpoint in a process of its own that answers every POST with 200, as `@connections` does. */
const ENDPOINT_SCRIPT = `
const server = require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-length': '0' }); res.end(); }); });
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

/**
 * The fan-out's own CPU per post, alone: the signed poster
 * (functions/core/poster.ts) posting a membership event to an
 * endpoint in another process, 128 at a time, measured as the bench
 * process's CPU time. This is the figure that sizes the fan-out on AWS
 * (docs/how-it-works/fanout-sizing.md); the runtime's figure also pays for the local
 * `@connections` endpoint and WebSocket server, API Gateway's work on AWS.
 */
export async function measurePoster(posts: number): Promise<PosterCost> {
  const endpoint = startChild(process.execPath, ['-e', ENDPOINT_SCRIPT]);
  const { posterFor, payloadOf } = await import('../functions/core/poster.ts');
  const { createManagementClient } = await import('../functions/core/aws.ts');
  try {
    const port = Number((await endpoint.waitForLine((line) => line.startsWith('port '), 10_000)).slice(5));
    const url = `http://127.0.0.1:${port}/live`;
    const api = posterFor(createManagementClient(url, true), url);
    const event = JSON.stringify({ type: 'NODE_REGISTERED', clusterId: 'c1', revision: 42, node: { key: 'c1/n1', clusterId: 'c1', nodeId: 'n1', status: 'UP', metadata: { zone: 'eu-west-1a' }, leaseSeconds: 15, incarnation: 1, registeredAt: new Date().toISOString(), lastKeepaliveAt: new Date().toISOString(), expiresAt: new Date().toISOString(), revision: 42 }, at: new Date().toISOString() });
    const payload = payloadOf(event);
    const ids = Array.from({ length: 1000 }, (_, i) => `L0SM9cOF${String(i).padStart(7, '0')}=`);
    const run = (n: number) => mapLimit(Array.from({ length: n }), 128, (_, i) => api.post(ids[i % ids.length] as string, payload));
    try {
      await run(Math.min(posts, 5000)); // warm: JIT, sockets, signing key
      const before = process.cpuUsage();
      await run(posts);
      const used = process.cpuUsage(before);
      return { posts, cpuUsPerPost: Math.round((used.user + used.system) / posts), messageBytes: payload.body.length };
    } finally {
      api.close();
    }
  } finally {
    await endpoint.kill();
  }
}
