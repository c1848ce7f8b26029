/**
 * The soak: a fleet of nodes registering, then keeping alive as the SDK does
 * for minutes, with a subscriber watching for NODE_DOWN (goal: none) and the
 * runtime's and DynamoDB Local's resident memory sampled every second (a
 * leak shows as max and end well above start).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Slots } from '../functions/core/concurrency.ts';
import { LoadClient, mustRegister } from './load-client.ts';
import { uid, watchMemory, type Progress, type RosterTarget } from './scenario.ts';
import { Histogram, type Summary } from './stats.ts';
import { Subscriber } from './subscriber.ts';


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
async function keepAliveUntil(http: LoadClient, clusterId: string, nodeId: string, leaseSeconds: number, keepaliveMs: number, deadline: number, tally: SoakTally): Promise<void> {
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

export async function soak(
  target: RosterTarget,
  options: { nodes: number; leaseSeconds: number; keepaliveMs: number; durationMs: number },
  progress: Progress,
): Promise<SoakResult> {
  const { nodes, leaseSeconds, keepaliveMs, durationMs } = options;
  const clusterId = uid('soak');
  const http = new LoadClient(target.httpUrl, 128);
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
    // At most 32 registrations in flight, as a fleet starting up would spread them; each node keeps alive as soon as its own is done.
    const registering = new Slots(32);
    try {
      await Promise.all(
        ids.map(async (nodeId) => {
          await registering.run(() => mustRegister(http, clusterId, nodeId, leaseSeconds));
          await keepAliveUntil(http, clusterId, nodeId, leaseSeconds, keepaliveMs, deadline, tally);
        }),
      );
    } finally {
      clearInterval(reporter);
    }
    const elapsed = (performance.now() - started) / 1000;
    const { runtime: runtimeRssMiB, dynamodbLocal: dynamodbLocalRssMiB } = memory.stop();
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
      runtimeRssMiB,
      dynamodbLocalRssMiB,
    };
  } finally {
    memory.stop();
    await watcher.close();
    http.close();
  }
}
