/**
 * The Roster side of the bench: keepalive throughput against the raw store,
 * fan-out, crash and hang detection with real agent processes, and the soak.
 * Every scenario runs against the local runtime the bench started
 * (bench/run.ts), uses its own cluster ids, and is bounded in time.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'node:http';
import type { DynamoDBDocumentClient, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { createDocumentClient } from '../functions/core/aws.ts';
import { readConfig } from '../functions/core/config.ts';
import type { Deps } from '../functions/core/deps.ts';
import { keepalive as coreKeepalive } from '../functions/core/registry.ts';
import { BenchHttp, mustRegister } from './http.ts';
import { mapLimit } from '../functions/core/concurrency.ts';
import { CpuMeter, fanoutResult, ownCpu, timeFanout, timeStorm, type CpuPerMessage, type FanoutResult, type StormGroupTimed, type WaitAll } from './fanout.ts';
import { ROSTER_BIN, cpuMicros, failEach, rssBytes, sleep, startChild, treeCpuMicros, type Child } from './procs.ts';
import { Histogram, summarize, type Summary } from './stats.ts';
import { Subscriber } from './subscriber.ts';

export interface RosterTarget {
  httpUrl: string;
  wsUrl: string;
  tableName: string;
  dynamodbEndpoint: string;
  /** The runtime's process (for RSS). */
  runtimePid: number;
  /** DynamoDB Local's process (for RSS). */
  dynamodbPid: number | undefined;
}

export type Progress = (line: string) => void;

const uid = (prefix: string): string => `${prefix}-${randomUUID().slice(0, 8)}`;
const mib = (bytes: number | undefined): number => (bytes === undefined ? Number.NaN : Number((bytes / 1024 / 1024).toFixed(1)));

// ─── 1. Keepalive throughput ────────────────────────────────────────────────

export interface ThroughputSide {
  requests: number;
  errors: number;
  perSecond: number;
  latencyMs: Summary;
}

export interface ThroughputResult {
  concurrency: number;
  durationSeconds: number;
  /** POST …/keepalive through the runtime (HTTP → API Gateway-shaped event → handler → UpdateItem). */
  roster: ThroughputSide;
  /**
   * The store's own limit: the keepalive's very UpdateItem (expression and
   * values from the core's `keepalive()`), sent to the same DynamoDB Local as
   * a bare HTTP request, without the AWS SDK's per-request work.
   */
  raw: ThroughputSide;
  /** The same UpdateItem through the AWS SDK client the handlers use, from the bench process. */
  rawSdk: ThroughputSide;
  /** roster.perSecond / raw.perSecond. */
  ratio: number;
  /** roster.perSecond / rawSdk.perSecond. */
  ratioSdk: number;
}

/** `concurrency` workers call `op` back to back for `durationMs`; latencies of successful calls are recorded. */
async function hammer(concurrency: number, durationMs: number, op: (worker: number) => Promise<boolean>): Promise<ThroughputSide> {
  const histogram = new Histogram();
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        let ok: boolean;
        try {
          ok = await op(worker);
        } catch {
          ok = false;
        }
        if (ok) histogram.record(performance.now() - t0);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return { requests: histogram.count, errors, perSecond: Math.round(histogram.count / elapsed), latencyMs: histogram.summary(2) };
}

class Captured extends Error {
  constructor(readonly input: UpdateCommandInput) {
    super('captured');
  }
}

/** The exact UpdateItem input the core's keepalive sends now, without sending it. */
async function keepaliveInput(config: Deps['config'], clusterId: string, nodeId: string): Promise<UpdateCommandInput> {
  const capture = {
    send: (command: { input: UpdateCommandInput }) => Promise.reject(new Captured(command.input)),
  } as unknown as DynamoDBDocumentClient;
  try {
    await coreKeepalive({ db: capture, config, now: Date.now }, clusterId, nodeId);
  } catch (err) {
    if (err instanceof Captured) return err.input;
    throw err;
  }
  throw new Error('the core keepalive sent nothing');
}

/**
 * A bare DynamoDB JSON-protocol client for one operation: DynamoDB Local
 * reads the access key from the Authorization header but does not check the
 * signature, so no signing, retries or middleware stand between the bench
 * and the engine.
 */
function bareUpdateItem(endpoint: string, maxSockets: number): { send(input: UpdateCommandInput): Promise<boolean>; close(): void } {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const headers = {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': 'DynamoDB_20120810.UpdateItem',
    authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
  };
  return {
    send(input) {
      const body = JSON.stringify({
        ...input,
        Key: marshall(input.Key ?? {}),
        ExpressionAttributeValues: marshall(input.ExpressionAttributeValues ?? {}, { removeUndefinedValues: true }),
      });
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: Number(url.port),
            method: 'POST',
            path: '/',
            agent,
            headers: { ...headers, 'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''), 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.once('end', () => resolve(res.statusCode === 200));
            res.once('error', reject);
          },
        );
        req.once('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}

export async function keepaliveThroughput(
  target: RosterTarget,
  options: { concurrency: number; durationMs: number; warmupMs: number },
  progress: Progress,
): Promise<ThroughputResult> {
  const { concurrency, durationMs, warmupMs } = options;
  const clusterId = uid('tp');
  const nodes = Array.from({ length: concurrency }, (_, i) => `n${i}`);
  const http = new BenchHttp(target.httpUrl, concurrency);
  // The handlers' own client configuration (retry mode, attempts, connection pool), pointed at the same engine.
  const config = readConfig({ TABLE_NAME: target.tableName, DYNAMODB_ENDPOINT: target.dynamodbEndpoint });
  const deps: Deps = { db: createDocumentClient(config), config, now: Date.now };
  const bare = bareUpdateItem(target.dynamodbEndpoint, concurrency);
  try {
    await mapLimit(nodes, 16, (nodeId) => mustRegister(http, clusterId, nodeId, 3600));
    const viaRoster = async (worker: number) => (await http.keepalive(clusterId, nodes[worker] as string)).status === 200;
    const viaSdk = async (worker: number) => {
      await coreKeepalive(deps, clusterId, nodes[worker] as string);
      return true;
    };
    const viaBare = async (worker: number) => bare.send(await keepaliveInput(config, clusterId, nodes[worker] as string));
    // DynamoDB Local's JVM needs a few seconds of load before it reaches full speed.
    progress(`throughput: warming up (${(3 * warmupMs) / 1000} s)`);
    await hammer(concurrency, warmupMs, viaBare);
    await hammer(concurrency, warmupMs, viaSdk);
    await hammer(concurrency, warmupMs, viaRoster);
    progress(`throughput: bare UpdateItem to DynamoDB Local, ${concurrency} workers, ${durationMs / 1000} s`);
    const raw = await hammer(concurrency, durationMs, viaBare);
    progress(`throughput: UpdateItem through the AWS SDK, ${concurrency} workers, ${durationMs / 1000} s`);
    const rawSdk = await hammer(concurrency, durationMs, viaSdk);
    progress(`throughput: Roster keepalive over HTTP, ${concurrency} workers, ${durationMs / 1000} s`);
    const roster = await hammer(concurrency, durationMs, viaRoster);
    return {
      concurrency,
      durationSeconds: durationMs / 1000,
      roster,
      raw,
      rawSdk,
      ratio: Number((roster.perSecond / raw.perSecond).toFixed(3)),
      ratioSdk: Number((roster.perSecond / rawSdk.perSecond).toFixed(3)),
    };
  } finally {
    http.close();
    bare.close();
    deps.db.destroy();
  }
}

// ─── 2. Fan-out ─────────────────────────────────────────────────────────────

/** Opens `count` subscribers to `clusterId`, `parallel` handshakes at a time; `batch` opts every one in to batched messages. */
export async function openSubscribers(wsUrl: string, clusterId: string, count: number, options: { parallel?: number; batch?: boolean; keepAll?: boolean } = {}): Promise<Subscriber[]> {
  const opened: Subscriber[] = [];
  try {
    await mapLimit(Array.from({ length: count }), options.parallel ?? 25, async () => {
      opened.push(await Subscriber.open(wsUrl, clusterId, { batch: options.batch, keepAll: options.keepAll }));
    });
  } catch (err) {
    await closeAll(opened);
    throw err;
  }
  return opened;
}

export async function closeAll(subscribers: Subscriber[]): Promise<void> {
  await mapLimit(subscribers.splice(0), 100, (s) => s.close());
}

/** The bench's view of the runtime's processes, for CPU per message. */
function rosterCpuMeter(target: RosterTarget): CpuMeter {
  const dynamodbPid = target.dynamodbPid;
  return new CpuMeter({
    // The runtime and its page-function processes (the fan-out's parallel pages).
    server: () => treeCpuMicros(target.runtimePid),
    store: dynamodbPid === undefined ? undefined : () => cpuMicros(dynamodbPid),
    clients: ownCpu,
  });
}

/** Arrival times of `type` for `nodeId` at every subscriber. */
const arrivalsAt = (subscribers: Subscriber[], type: string): WaitAll => async (nodeId, timeoutMs) =>
  (await Promise.all(subscribers.map((s) => s.waitFor(type, nodeId, timeoutMs)))).map((a) => a?.at);

export async function fanout(target: RosterTarget, options: { subscribers: number; registrations: number; timeoutMs: number }, progress: Progress): Promise<FanoutResult> {
  const clusterId = uid(`fo${options.subscribers}`);
  const http = new BenchHttp(target.httpUrl, 4);
  progress(`fan-out: opening ${options.subscribers} WebSocket subscribers`);
  const subscribers = await openSubscribers(target.wsUrl, clusterId, options.subscribers, { parallel: options.subscribers > 1000 ? 50 : 25 });
  try {
    const cpu = rosterCpuMeter(target);
    await cpu.measureIdle(2000);
    progress(`fan-out: ${options.registrations} registrations → ${options.subscribers} subscribers`);
    const register = async (i: number) => {
      await mustRegister(http, clusterId, `r${i}`, 3600);
      return `r${i}`;
    };
    const timed = await timeFanout(options.registrations, options.timeoutMs, register, arrivalsAt(subscribers, 'NODE_REGISTERED'), cpu);
    return fanoutResult(options.subscribers, options.registrations, timed, cpu.end(timed.messages));
  } finally {
    await closeAll(subscribers);
    http.close();
  }
}

export interface StormGroup {
  subscribers: number;
  /** Whether these subscribers asked for batched messages (`batch=true`). */
  batch: boolean;
  /** Every subscriber received every event. */
  allReceived: boolean;
  missing: number;
  /** Subscribers that saw a node's events out of revision order (goal 0). */
  outOfOrder: number;
  /** WebSocket messages that carried the events (fewer than the events with batching). */
  messagesReceived: number;
  /** Per registration: from sending the PUT to the last subscriber of the group having its event. */
  lagMs: Summary;
}

export interface StormResult {
  registrations: number;
  nodes: number;
  /** PUTs in flight at once. */
  parallel: number;
  /** From the first PUT to the last event at the last subscriber. */
  totalMs: number;
  groups: StormGroup[];
  /** CPU time per delivered event (not per message: a batched message carries several). */
  cpuUsPerEvent: CpuPerMessage;
}

/**
 * A registration storm: `registrations` PUTs in one cluster, `parallel` at a
 * time — each of `registrations / 2` nodes registers (NODE_REGISTERED) and
 * then registers again with new metadata (NODE_UPDATED) — to `subscribers`,
 * of which `plain` take one event per message and the others ask for batched
 * messages, as the SDK and the console do. Checks that everyone gets every
 * event, each node's events in revision order, and times the last
 * subscriber's lag per registration, for each kind.
 */
export async function storm(
  target: RosterTarget,
  options: { subscribers: number; plain: number; registrations: number; parallel: number; timeoutMs: number },
  progress: Progress,
): Promise<StormResult> {
  const clusterId = uid('storm');
  const http = new BenchHttp(target.httpUrl, options.parallel);
  const nodes = Math.ceil(options.registrations / 2);
  const half = Math.min(options.plain, options.subscribers);
  progress(`storm: opening ${options.subscribers} WebSocket subscribers (${options.subscribers - half} of them batched)`);
  const plain = await openSubscribers(target.wsUrl, clusterId, half, { keepAll: true });
  const batched = await openSubscribers(target.wsUrl, clusterId, options.subscribers - half, { keepAll: true, batch: true }).catch(async (err: unknown) => {
    await closeAll(plain);
    throw err;
  });
  try {
    const cpu = rosterCpuMeter(target);
    await cpu.measureIdle(2000);
    progress(`storm: ${options.registrations} registrations (${nodes} nodes, each registered then updated), ${options.parallel} in flight`);
    cpu.begin();
    // A node's second PUT goes out only after its first was answered, so its two events have a known order.
    const first = new Map<number, Promise<unknown>>();
    const register = async (i: number): Promise<string> => {
      const n = i % nodes;
      const update = i >= nodes;
      if (update) await first.get(n);
      const put = http.send('PUT', `/v1/clusters/${clusterId}/nodes/s${n}`, { leaseSeconds: 3600, ...(update ? { metadata: { v: '2' } } : {}) });
      if (!update) first.set(n, put.catch(() => undefined));
      const reply = await put;
      if (reply.status !== 200 && reply.status !== 201) throw new Error(`storm: PUT s${n} answered ${reply.status}: ${reply.body}`);
      return `${update ? 'NODE_UPDATED' : 'NODE_REGISTERED'}/s${n}`;
    };
    const waitIn = (group: Subscriber[]): WaitAll => async (key, timeoutMs) => {
      const [type, nodeId] = key.split('/') as [string, string];
      return (await Promise.all(group.map((s) => s.waitFor(type, nodeId, timeoutMs)))).map((a) => a?.at);
    };
    const timed = await timeStorm(options.registrations, options.parallel, options.timeoutMs, register, [waitIn(plain), waitIn(batched)]);
    const events = timed.groups.reduce((sum, g) => sum + g.events, 0);
    const groups = [plain, batched].map((subs, i): StormGroup => {
      const t = timed.groups[i] as StormGroupTimed;
      return {
        subscribers: subs.length,
        batch: i === 1,
        allReceived: t.missing === 0,
        missing: t.missing,
        outOfOrder: subs.filter((s) => !s.inNodeOrder()).length,
        messagesReceived: subs.reduce((sum, s) => sum + s.messages, 0),
        lagMs: t.lagMs,
      };
    });
    return { registrations: options.registrations, nodes, parallel: options.parallel, totalMs: timed.totalMs, groups, cpuUsPerEvent: cpu.end(events) };
  } finally {
    await closeAll([...plain, ...batched]);
    http.close();
  }
}

// ─── 3–4. Crash and hang detection with real agent processes ───────────────

/** A detection scenario's size, the same for Roster's agents and etcd's nodes so the two compare. */
export interface DetectionOptions {
  kind: 'crash' | 'hang';
  trials: number;
  observers: number;
  leaseSeconds: number;
  timeoutMs: number;
}

export interface DetectionResult {
  kind: 'crash' | 'hang';
  /** Agents killed (crash) or stopped (hang). */
  trials: number;
  observers: number;
  leaseSeconds: number;
  /** Every observer received NODE_DOWN for every agent. */
  allObserved: boolean;
  /** From the signal to the last observer having NODE_DOWN. */
  detectionMs: Summary;
  /** Hang only: from the node's last keepalive (the server's record) to the last observer having NODE_DOWN. */
  fromLastKeepaliveMs?: Summary;
  /** NODE_DOWN reasons seen, by count. */
  reasons: Record<string, number>;
}

function startAgent(target: RosterTarget, clusterId: string, nodeId: string, leaseSeconds: number): Child {
  return startChild(process.execPath, [
    ROSTER_BIN,
    'agent',
    clusterId,
    nodeId,
    '--lease',
    String(leaseSeconds),
    '--json',
    '--url',
    target.httpUrl,
    '--ws-url',
    target.wsUrl,
  ]);
}

const isBoundConnected = (line: string): boolean => line.includes('"type":"connected"') && line.includes('"bound":true');

/** A detection scenario's result from the times observed; Roster's and etcd's are summed up alike so they compare. */
export function detectionResult(
  options: DetectionOptions,
  observers: number,
  times: number[],
  reasons: Record<string, number>,
  fromKeepalive?: number[],
): DetectionResult {
  return {
    kind: options.kind,
    trials: options.trials,
    observers,
    leaseSeconds: options.leaseSeconds,
    allObserved: times.length === options.trials,
    detectionMs: summarize(times, 0),
    ...(fromKeepalive === undefined ? {} : { fromLastKeepaliveMs: summarize(fromKeepalive, 0) }),
    reasons,
  };
}

/**
 * Starts `trials` agents (real `roster agent` processes, bound connections),
 * waits until every observer has seen them register, then sends `signal` to
 * them one by one at random intervals and times NODE_DOWN at every observer.
 * Every agent is SIGKILLed at the end, stopped or not.
 */
export async function agentDetection(
  target: RosterTarget,
  options: DetectionOptions,
  progress: Progress,
): Promise<DetectionResult> {
  const { kind, trials, leaseSeconds } = options;
  const clusterId = uid(kind);
  const http = new BenchHttp(target.httpUrl, 4);
  const observers = await openSubscribers(target.wsUrl, clusterId, options.observers);
  const agents: Child[] = [];
  try {
    progress(`${kind}: starting ${trials} roster agent processes (lease ${leaseSeconds} s)`);
    for (let i = 0; i < trials; i++) agents.push(startAgent(target, clusterId, `a${i}`, leaseSeconds));
    await Promise.all(agents.map((a) => a.waitForLine(isBoundConnected, 60_000)));
    await Promise.all(agents.map((_, i) => Promise.all(observers.map((o) => o.waitFor('NODE_REGISTERED', `a${i}`, 10_000)))));

    progress(`${kind}: ${kind === 'crash' ? 'SIGKILL' : 'SIGSTOP'} each agent at a random moment; waiting for NODE_DOWN at ${observers.length} observers`);
    const results = await failEach(agents, kind, async (i, t0): Promise<{ fromSignal?: number; fromKeepalive?: number; reasons: string[] }> => {
      const agent = agents[i] as Child;
      const nodeId = `a${i}`;
      let lastKeepaliveAt: number | undefined;
      if (kind === 'hang') {
        // A keepalive already on the wire when the process stopped may still land; read the record just after.
        await sleep(200);
        const reply = await http.send('GET', `/v1/clusters/${clusterId}/nodes/${nodeId}`);
        const node = (JSON.parse(reply.body) as { node?: { lastKeepaliveAt?: string } }).node;
        lastKeepaliveAt = node?.lastKeepaliveAt === undefined ? undefined : Date.parse(node.lastKeepaliveAt);
      }
      const arrivals = await Promise.all(observers.map((o) => o.waitFor('NODE_DOWN', nodeId, options.timeoutMs)));
      const reasons = arrivals.map((a) => a?.reason ?? 'missing');
      if (arrivals.some((a) => a === undefined)) return { reasons };
      const last = Math.max(...arrivals.map((a) => (a as { at: number }).at));
      const lastWall = Math.max(...arrivals.map((a) => (a as { wallAt: number }).wallAt));
      agent.signal('SIGKILL');
      return {
        fromSignal: last - t0,
        fromKeepalive: lastKeepaliveAt === undefined ? undefined : lastWall - lastKeepaliveAt,
        reasons,
      };
    });
    const reasons: Record<string, number> = {};
    for (const r of results) for (const reason of r.reasons) reasons[reason] = (reasons[reason] ?? 0) + 1;
    const fromSignal = results.flatMap((r) => (r.fromSignal === undefined ? [] : [r.fromSignal]));
    const fromKeepalive = results.flatMap((r) => (r.fromKeepalive === undefined ? [] : [r.fromKeepalive]));
    return detectionResult(options, observers.length, fromSignal, reasons, kind === 'hang' ? fromKeepalive : undefined);
  } finally {
    await Promise.all(agents.map((a) => a.kill()));
    await closeAll(observers);
    http.close();
  }
}

// ─── 6. Soak ────────────────────────────────────────────────────────────────

export interface SoakResult {
  nodes: number;
  leaseSeconds: number;
  keepaliveSeconds: number;
  durationSeconds: number;
  keepalives: number;
  /** Keepalives answered with anything but 200 (or not answered). */
  keepaliveErrors: number;
  /** Nodes that had to register again after a 404 (the server thought them gone). */
  reRegistrations: number;
  /** NODE_DOWN events a subscriber received for nodes that never stopped keeping alive (goal 0). */
  falseDowns: number;
  /** Healthy nodes in the list at the end (should be all). */
  healthyAtEnd: number;
  keepaliveLatencyMs: Summary;
  /** Keepalive requests per second the runtime served. */
  keepalivesPerSecond: number;
  runtimeRssMiB: { start: number; max: number; end: number };
  dynamodbLocalRssMiB: { start: number; max: number; end: number };
}

/** What the soak's nodes counted between them. */
interface SoakTally {
  histogram: Histogram;
  errors: number;
  reRegistrations: number;
}

/**
 * One soak node, behaving like the SDK's keepalive loop: keep alive `keepaliveMs` after the
 * previous keepalive finished (the first one at a random phase), and register again on 404.
 * Kept apart from `soak` so the node's loop reads on its own.
 */
async function keepAliveUntil(http: BenchHttp, clusterId: string, nodeId: string, leaseSeconds: number, keepaliveMs: number, deadline: number, tally: SoakTally): Promise<void> {
  let wait = Math.random() * keepaliveMs;
  for (;;) {
    if (performance.now() + wait >= deadline) return;
    await sleep(wait);
    wait = keepaliveMs;
    const t0 = performance.now();
    try {
      const reply = await http.keepalive(clusterId, nodeId);
      if (reply.status === 200) {
        tally.histogram.record(performance.now() - t0);
        continue;
      }
      tally.errors++;
      if (reply.status === 404) {
        tally.reRegistrations++;
        await mustRegister(http, clusterId, nodeId, leaseSeconds);
      }
    } catch {
      tally.errors++;
    }
  }
}

/** Runs each call when fewer than `limit` are in flight: the soak's fleet starts up spread out, each node keeping alive as soon as its own registration is done. */
function inFlightLimit(limit: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    while (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Resident memory of the runtime and of DynamoDB Local, sampled every second until `stop`: a leak shows as max and end well above start. */
function watchMemory(target: RosterTarget): { stop(): Pick<SoakResult, 'runtimeRssMiB' | 'dynamodbLocalRssMiB'> } {
  const read = () => ({ runtime: rssBytes(target.runtimePid), dynamodb: target.dynamodbPid === undefined ? undefined : rssBytes(target.dynamodbPid) });
  const start = read();
  const max = { runtime: 0, dynamodb: 0 };
  const sample = () => {
    const now = read();
    if (now.runtime !== undefined) max.runtime = Math.max(max.runtime, now.runtime);
    if (now.dynamodb !== undefined) max.dynamodb = Math.max(max.dynamodb, now.dynamodb);
    return now;
  };
  const sampler = setInterval(sample, 1000);
  return {
    stop() {
      clearInterval(sampler);
      const end = sample();
      return {
        runtimeRssMiB: { start: mib(start.runtime), max: mib(max.runtime), end: mib(end.runtime) },
        dynamodbLocalRssMiB: { start: mib(start.dynamodb), max: mib(max.dynamodb), end: mib(end.dynamodb) },
      };
    },
  };
}

export async function soak(
  target: RosterTarget,
  options: { nodes: number; leaseSeconds: number; keepaliveMs: number; durationMs: number },
  progress: Progress,
): Promise<SoakResult> {
  const { nodes, leaseSeconds, keepaliveMs, durationMs } = options;
  const clusterId = uid('soak');
  const http = new BenchHttp(target.httpUrl, 128);
  const watcher = await Subscriber.open(target.wsUrl, clusterId, { keepAll: true });
  const ids = Array.from({ length: nodes }, (_, i) => `s${i}`);
  const tally: SoakTally = { histogram: new Histogram(), errors: 0, reRegistrations: 0 };
  const memory = watchMemory(target);
  try {
    const started = performance.now();
    const deadline = started + durationMs;
    progress(`soak: ${nodes} nodes register (32 at a time), then each keeps alive every ${keepaliveMs / 1000} s, for ${durationMs / 1000} s in all`);
    let lastReport = started;
    const reporter = setInterval(() => {
      const now = performance.now();
      if (now - lastReport < 30_000) return;
      lastReport = now;
      progress(`soak: ${Math.round((now - started) / 1000)} s, ${tally.histogram.count} keepalives, ${tally.errors} errors, ${watcher.count('NODE_DOWN')} NODE_DOWN`);
    }, 1000);
    // At most 32 registrations in flight, as a fleet starting up would spread them.
    const registering = inFlightLimit(32);
    try {
      await Promise.all(
        ids.map(async (nodeId) => {
          await registering(() => mustRegister(http, clusterId, nodeId, leaseSeconds));
          await keepAliveUntil(http, clusterId, nodeId, leaseSeconds, keepaliveMs, deadline, tally);
        }),
      );
    } finally {
      clearInterval(reporter);
    }
    const elapsed = (performance.now() - started) / 1000;
    const rss = memory.stop();
    const list = await http.send('GET', `/v1/clusters/${clusterId}/nodes`);
    const healthyAtEnd = (JSON.parse(list.body) as { nodes?: unknown[] }).nodes?.length ?? 0;
    // Events still in flight for the last second of the run are counted too.
    await sleep(1500);
    return {
      nodes,
      leaseSeconds,
      keepaliveSeconds: keepaliveMs / 1000,
      durationSeconds: durationMs / 1000,
      keepalives: tally.histogram.count,
      keepaliveErrors: tally.errors,
      reRegistrations: tally.reRegistrations,
      falseDowns: watcher.received.filter((e) => e.type === 'NODE_DOWN').length,
      healthyAtEnd,
      keepaliveLatencyMs: tally.histogram.summary(1),
      keepalivesPerSecond: Math.round(tally.histogram.count / elapsed),
      ...rss,
    };
  } finally {
    memory.stop();
    await watcher.close();
    http.close();
  }
}
