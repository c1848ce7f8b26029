/**
 * `roster capacity`'s prediction for the workload the `scale` scenario ran,
 * beside what it measured: the planner (bench/planner.ts, over the workload
 * model of bench/workload.ts) is given the same fleet — the nodes, those of
 * them that hold a bound connection, one cluster, the stack's default lease
 * and the SDK's intervals, no churn in the steady phase, the storm's
 * restarts — and the stack's settings from its synthesized template, as
 * `roster capacity` takes them. Each figure is the measured one divided by
 * the predicted one; they should agree within 15%.
 */
import { AWS_LIMITS } from './aws-limits.ts';
import { deploymentOf, plan, stackKeepaliveSeconds } from './planner.ts';
import type { ScaleResult } from './scale.ts';
import { synthesizedSettings, type StackSettings } from './stack-settings.ts';
import { MEASURED_UNITS } from './units.ts';
import { eventMessageBytes, operationRates, stormPosts, workloadDefaults, type StormPosts, type Workload } from './workload.ts';

/** How close two figures must be. */
export const AGREEMENT = 0.15;

export interface Compared {
  figure: string;
  measured: number;
  predicted: number;
  /** measured / predicted (null when nothing was predicted). */
  ratio: number | null;
  /** Within AGREEMENT; null when the figure cannot be judged (see `note`). */
  agrees: boolean | null;
  note?: string;
}

export interface ScalePrediction {
  /** The same workload as a `roster capacity` command line. */
  command: string;
  figures: Compared[];
}

const round = (x: number): number => Number(x.toFixed(2));

function compare(figure: string, measured: number, predicted: number, note?: string): Compared {
  const ratio = predicted > 0 ? round(measured / predicted) : null;
  const agrees = note !== undefined ? null : ratio === null ? measured === 0 : Math.abs(ratio - 1) <= AGREEMENT;
  return { figure, measured: round(measured), predicted: round(predicted), ratio, agrees, ...(note === undefined ? {} : { note }) };
}

/**
 * The planner's storm posts (bench/workload.ts `stormPosts`), given the
 * batches the fan-out made here (the observer's messages: every subscriber
 * gets each) rather than those AWS's pace would make: here the downs wait
 * for DynamoDB Local to take each dropped connection's writes, the
 * registrations for one runtime to serve them, and each fan-out invocation
 * for the box, so the storm comes over seconds in many small batches; on AWS
 * it comes within a sweep and the register route's rate. The subscribers
 * are those of the kill (every RosterClient and the observer), less the
 * killed nodes' as their subscriptions are removed, plus each restarted
 * node's once it subscribes again (the timeline, from the stream). What it
 * checks: who gets each batch, and in how many messages.
 */
function stormPostsHere(result: ScaleResult, settings: StackSettings): StormPosts {
  const { timeline } = result.storm;
  const events = timeline.eventsPerSlot.reduce((n, k) => n + k, 0);
  return stormPosts({
    events,
    eventBytes: eventMessageBytes(0),
    batchSize: settings.fanoutMapping.batchSize,
    plain: 0,
    // Subscribed at the kill: the RosterClients (the killed ones leave in the timeline) and the observer.
    batched: result.subscribers + result.stormNodes + 1,
    timeline: { ...timeline, pollMs: AWS_LIMITS.streamIdlePollMs.value, postsPerSecond: settings.detection.fanoutPostsPerSecond },
  });
}

const stormPaceNote = 'the downs within one sweep and the registrations at the register route\'s rate, as on AWS; this box is slower (the row above)';

export async function scalePrediction(result: ScaleResult): Promise<ScalePrediction> {
  const settings = await synthesizedSettings();
  const bound = result.subscribers + result.stormNodes;
  // The steady phase has no restarts; the storm is planned apart (`stormRestarts`).
  const workload: Workload = {
    ...workloadDefaults(result.nodes),
    keepaliveSeconds: stackKeepaliveSeconds(settings),
    boundNodes: bound,
    // The bench's observer: a watcher that is not a node.
    subscribers: 1,
    churnPerHour: 0,
    clusters: 1,
  };
  const p = plan(workload, settings, { stormRestarts: result.stormNodes });
  const load = (id: string): number => p.rows.find((r) => r.id === id)?.load ?? Number.NaN;
  const rates = operationRates(workload, MEASURED_UNITS, deploymentOf(settings));
  const s = result.steady.rates;
  const w = result.steady.writes.perSecond;
  const reconnectNote = `a connection is replaced after 100–115 minutes; this run's are younger`;
  const { starts, gaps } = result.storm.fullListsBy;
  const figures: Compared[] = [
    compare('keepalive requests/s', s.keepalive, load('http-route:keepalive')),
    compare('list requests/s', s.list, load('http-route:list')),
    compare('ping messages/s', s.ping, load('ws-route:ping')),
    compare('$connect/s', s.connect, load('ws-route:$connect'), reconnectNote),
    compare('register requests/s', s.register, load('http-route:register')),
    compare('posts/s (steady)', s.posts, rates.eventMessages),
    compare('node item writes/s', w.node ?? 0, rates.writesAt.node),
    compare('META item writes/s', w.meta ?? 0, rates.writesAt.meta),
    compare('storm: posts, to the batches made here', result.storm.counts.posts, stormPostsHere(result, settings).posts),
    compare('storm: posts at AWS pace (planned)', result.storm.counts.posts, p.storm.batched.posts, stormPaceNote),
    compare('storm: full-list reads at start and on gaps', starts + gaps, p.storm.restarts),
  ];
  const command = `npx roster capacity --nodes ${result.nodes} --bound-nodes ${bound} --clusters 1 --subscribers 1 --churn 0`;
  return { command, figures };
}
