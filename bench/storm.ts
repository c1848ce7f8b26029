/**
 * The registration storm: many registrations at once in one cluster, to
 * subscribers of which some take one event per message and the others ask
 * for batched messages; checks that everyone gets every event in each node's
 * revision order, and times the last subscriber's lag (fanout.ts's
 * `timeStorm`).
 */
import { timeStorm, type CpuPerMessage, type StormGroupTimed, type WaitAll } from './fanout.ts';
import { LoadClient } from './load-client.ts';
import { rosterCpuMeter, uid, type Progress, type RosterTarget } from './scenario.ts';
import type { Summary } from './stats.ts';
import { arrivalsAt, closeAll, openSubscribers, type Subscriber } from './subscriber.ts';

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
  const http = new LoadClient(target.httpUrl, options.parallel);
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
      const put = http.registration(clusterId, `s${n}`, { leaseSeconds: 3600, ...(update ? { metadata: { v: '2' } } : {}) });
      if (!update) first.set(n, put.catch(() => undefined));
      const reply = await put;
      if (reply.status !== 200 && reply.status !== 201) throw new Error(`storm: PUT s${n} answered ${reply.status}: ${reply.body}`);
      return `${update ? 'NODE_UPDATED' : 'NODE_REGISTERED'}/s${n}`;
    };
    const waitIn = (group: Subscriber[]): WaitAll => (key, timeoutMs) => {
      const [type, nodeId] = key.split('/') as [string, string];
      return arrivalsAt(group, type, nodeId, timeoutMs);
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
