/**
 * `roster cost`: the command over the cost model (bench/cost.ts).
 */
import { cloudMapCost, defaults, etcdCost, renderCost, rosterCost, rosterDetection, type CostInput } from '../bench/cost.ts';
import { PRICES } from '../bench/prices.ts';
import { MEASURED_UNITS, unitsFromReport } from '../bench/units.ts';
import { UsageError, out, parse, positiveNumber, showHelp, type Command } from './kit.ts';

export const costCommand: Command = {
  summary: 'estimate the monthly AWS cost of a deployment, beside Cloud Map and etcd',
  help: `Usage: roster cost --nodes N [--keepalive S] [--subscribers M] [--churn R] [flags]

Prints the monthly AWS cost of Roster by component (HTTP API, WebSocket
messages and connection minutes, Lambda requests and GB-s, DynamoDB writes
and reads, the sweeper) for a workload, and the same workload on AWS Cloud
Map and on a self-hosted three-node etcd, with the detection time of each.
Prices and their sources: bench/prices.ts. DynamoDB units and the fan-out's
CPU per post are measured ones: bench/units.ts, or --units from your own run.

  --nodes N          nodes (each keeps alive, holds a bound connection and refreshes its list)
  --keepalive S      seconds between keepalives; the lease is 3 × S (default 5)
  --subscribers M    WebSocket watchers besides the nodes (default 0)
  --churn R          node restarts per hour (default: nodes / 24, once a day each)
  --clusters C       clusters the nodes are spread over (default 1)
  --refresh S        seconds between each client's list refresh (default 30, the SDK's)
  --ping S           seconds between each connection's ping (default 60, the SDK's)
  --lambda-ms MS     billed duration of a keepalive invocation (default 10)
  --item-kb KB       size of a node item (default: the bench's, about 0.3 KB)
  --units FILE       take the measured units from a roster bench --json report
                     (scenarios capacity and fanout) instead of bench/units.ts
  --json             print the estimate as JSON
  -h, --help         show this help
`,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        nodes: { type: 'string' },
        keepalive: { type: 'string' },
        subscribers: { type: 'string' },
        churn: { type: 'string' },
        clusters: { type: 'string' },
        refresh: { type: 'string' },
        ping: { type: 'string' },
        'lambda-ms': { type: 'string' },
        'item-kb': { type: 'string' },
        units: { type: 'string' },
        json: { type: 'boolean' },
      },
      [],
    );
    if (parsed.help) return showHelp(this);
    const v = parsed.values;
    const nodes = positiveNumber('nodes', v.nodes, true);
    if (nodes === undefined) throw new UsageError('--nodes is required');
    let units = MEASURED_UNITS;
    if (v.units !== undefined) {
      try {
        units = await unitsFromReport(v.units);
      } catch (err) {
        throw new UsageError(`--units ${v.units}: ${(err as Error).message}`);
      }
    }
    const base = defaults(nodes, units);
    const subscribersRaw = v.subscribers === '0' ? 0 : positiveNumber('subscribers', v.subscribers, true);
    const churnRaw = v.churn === '0' ? 0 : positiveNumber('churn', v.churn, false);
    const input: CostInput = {
      nodes,
      keepaliveSeconds: positiveNumber('keepalive', v.keepalive, false) ?? base.keepaliveSeconds,
      subscribers: subscribersRaw ?? base.subscribers,
      churnPerHour: churnRaw ?? base.churnPerHour,
      clusters: positiveNumber('clusters', v.clusters, true) ?? base.clusters,
      refreshSeconds: positiveNumber('refresh', v.refresh, false) ?? base.refreshSeconds,
      pingSeconds: positiveNumber('ping', v.ping, false) ?? base.pingSeconds,
      keepaliveLambdaMs: positiveNumber('lambda-ms', v['lambda-ms'], false) ?? base.keepaliveLambdaMs,
      itemKb: positiveNumber('item-kb', v['item-kb'], false) ?? base.itemKb,
    };
    if (input.keepaliveSeconds * 3 < 2 || input.keepaliveSeconds * 3 > 3600) throw new UsageError('--keepalive must make a lease (3 × S) of 2..3600 seconds');
    const estimate = rosterCost(input, units);
    if (v.json) {
      out(JSON.stringify({ ...estimate, alternatives: [cloudMapCost(input), etcdCost(input)], detection: rosterDetection(input), prices: PRICES }, null, 2));
    } else {
      for (const line of renderCost(estimate)) out(line);
    }
    return 0;
  },
};
