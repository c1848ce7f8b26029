/**
 * The workload flags `roster cost` and `roster capacity` share: the same
 * fleet described the same way (bench/workload.ts), checked the same way.
 */
import { DEFAULT_PING_INTERVAL_SECONDS, DEFAULT_REFRESH_INTERVAL_SECONDS } from '@roster/contract';
import { MEASURED_UNITS, unitsFromReport, type Units } from '../bench/units.ts';
import type { Workload } from '../bench/workload.ts';
import { positiveNumber } from './args.ts';
import { UsageError } from './command.ts';

export const WORKLOAD_OPTIONS = {
  nodes: { type: 'string' },
  'bound-nodes': { type: 'string' },
  keepalive: { type: 'string' },
  subscribers: { type: 'string' },
  churn: { type: 'string' },
  clusters: { type: 'string' },
  refresh: { type: 'string' },
  ping: { type: 'string' },
  'lambda-ms': { type: 'string' },
  'item-kb': { type: 'string' },
  units: { type: 'string' },
} as const;

/** The flags' help lines; `keepaliveDefault` says where the default keepalive comes from. */
export function workloadHelp(keepaliveDefault: string): string {
  return `  --nodes N          nodes (each keeps alive, holds a bound connection and refreshes its list)
  --bound-nodes B    of the nodes, those that hold a bound connection; the
                     others keep alive and refresh over HTTP only (default: all)
  --keepalive S      seconds between keepalives; the lease is 3 × S (default ${keepaliveDefault})
  --subscribers M    WebSocket watchers besides the nodes (default 0)
  --churn R          node restarts per hour (default: nodes / 24, once a day each)
  --clusters C       clusters the nodes are spread over (default 1)
  --refresh S        seconds between each client's list refresh (default ${DEFAULT_REFRESH_INTERVAL_SECONDS}, the SDK's)
  --ping S           seconds between each connection's ping (default ${DEFAULT_PING_INTERVAL_SECONDS}, the SDK's)
  --lambda-ms MS     billed duration of a keepalive invocation (default 10)
  --item-kb KB       size of a node item (default: the bench's, about 0.3 KB)
  --units FILE       take the measured units from a roster bench --json report
                     (scenarios capacity and fanout) instead of bench/units.ts`;
}

type WorkloadValues = { [K in keyof typeof WORKLOAD_OPTIONS]?: string };

/** The workload the flags describe, on top of `base` (the defaults for that many nodes), and the measured units to use. */
export async function workloadFrom(values: WorkloadValues, base: (nodes: number, units: Units) => Workload): Promise<{ workload: Workload; units: Units }> {
  const nodes = positiveNumber('nodes', values.nodes, true);
  if (nodes === undefined) throw new UsageError('--nodes is required');
  let units = MEASURED_UNITS;
  if (values.units !== undefined) {
    try {
      units = await unitsFromReport(values.units);
    } catch (err) {
      throw new UsageError(`--units ${values.units}: ${(err as Error).message}`);
    }
  }
  const b = base(nodes, units);
  const subscribers = values.subscribers === '0' ? 0 : positiveNumber('subscribers', values.subscribers, true);
  const churn = values.churn === '0' ? 0 : positiveNumber('churn', values.churn, false);
  const boundNodes = values['bound-nodes'] === '0' ? 0 : positiveNumber('bound-nodes', values['bound-nodes'], true);
  if (boundNodes !== undefined && boundNodes > nodes) throw new UsageError(`--bound-nodes must be at most --nodes (${nodes})`);
  const workload: Workload = {
    nodes,
    ...(boundNodes === undefined ? {} : { boundNodes }),
    keepaliveSeconds: positiveNumber('keepalive', values.keepalive, false) ?? b.keepaliveSeconds,
    subscribers: subscribers ?? b.subscribers,
    churnPerHour: churn ?? b.churnPerHour,
    clusters: positiveNumber('clusters', values.clusters, true) ?? b.clusters,
    refreshSeconds: positiveNumber('refresh', values.refresh, false) ?? b.refreshSeconds,
    pingSeconds: positiveNumber('ping', values.ping, false) ?? b.pingSeconds,
    keepaliveLambdaMs: positiveNumber('lambda-ms', values['lambda-ms'], false) ?? b.keepaliveLambdaMs,
    itemKb: positiveNumber('item-kb', values['item-kb'], false) ?? b.itemKb,
  };
  if (workload.keepaliveSeconds * 3 < 2 || workload.keepaliveSeconds * 3 > 3600) throw new UsageError('--keepalive must make a lease (3 × S) of 2..3600 seconds');
  if (workload.clusters > workload.nodes) throw new UsageError(`--clusters must be at most --nodes (${workload.nodes}): every cluster has at least one node`);
  return { workload, units };
}
