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
import { deploymentOf, plan, stackKeepaliveSeconds } from './planner.ts';
import type { ScaleResult } from './scale.ts';
import { synthesizedSettings } from './stack-settings.ts';
import { MEASURED_UNITS } from './units.ts';
import { operationRates, workloadDefaults, type Workload } from './workload.ts';

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
  const figures: Compared[] = [
    compare('keepalive requests/s', s.keepalive, load('http-route:keepalive')),
    compare('list requests/s', s.list, load('http-route:list')),
    compare('ping messages/s', s.ping, load('ws-route:ping')),
    compare('$connect/s', s.connect, load('ws-route:$connect'), reconnectNote),
    compare('register requests/s', s.register, load('http-route:register')),
    compare('posts/s (steady)', s.posts, rates.eventMessages),
    compare('node item writes/s', w.node ?? 0, rates.writesAt.node),
    compare('META item writes/s', w.meta ?? 0, rates.writesAt.meta),
    compare('storm: posts', result.storm.counts.posts, p.storm.batched.posts),
    compare('storm: full-list reads', result.storm.counts.fullLists, p.storm.restarts),
  ];
  const command = `npx roster capacity --nodes ${result.nodes} --bound-nodes ${bound} --clusters 1 --subscribers 1 --churn 0`;
  return { command, figures };
}
