/**
 * Crash and hang detection: what a detection scenario is asked and reports,
 * the same for Roster and etcd (etcd.ts) so the two compare, and Roster's
 * scenario with real `roster agent` processes, killed (crash) or stopped
 * (hang) one by one while observers wait for NODE_DOWN.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LoadClient } from './load-client.ts';
import { ROSTER_BIN, failEach, startChild, type Child } from './procs.ts';
import { uid, type Progress, type RosterTarget } from './scenario.ts';
import { summarize, type Summary } from './stats.ts';
import { closeAll, openSubscribers } from './subscriber.ts';

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
  const http = new LoadClient(target.httpUrl, 4);
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
