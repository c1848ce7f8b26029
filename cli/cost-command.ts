/**
 * `roster cost`: the command over the cost model (bench/cost.ts).
 */
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import type { CostInput } from '../bench/cost.ts';
import { parse, wholeNumber } from './args.ts';
import { type Command, showHelp } from './command.ts';
import { out } from './output.ts';
import { WORKLOAD_OPTIONS, workloadFrom, workloadHelp } from './workload-flags.ts';

export const costCommand: Command = {
  summary: 'estimate the monthly AWS cost of a deployment, beside Cloud Map and etcd',
  help: `Usage: roster cost --nodes N [--keepalive S] [--subscribers M] [--churn R] [flags]

Prints the monthly AWS cost of Roster by component (HTTP API, WebSocket
messages and connection minutes, Lambda requests and GB-s, DynamoDB writes
and reads, the sweeper, CloudWatch Logs) for a workload, and the same
workload on AWS Cloud Map and on a self-hosted three-node etcd, with the
detection time of each. Prices and their sources: bench/prices.ts.
DynamoDB units and the fan-out's CPU per post are measured ones:
bench/units.ts, or --units from your own run; the bytes each operation
logs: bench/log-bytes.ts. \`roster capacity\` holds the same workload
against AWS's limits.

${workloadHelp(`${DEFAULT_LEASE_SECONDS / 3}, the SDK's: a third of the default lease`)}
  --log-retention D  days the log groups keep logs (default 365, the stack's)
  --json             print the estimate as JSON
  -h, --help         show this help
`,
  async run(argv) {
    const parsed = parse(argv, { ...WORKLOAD_OPTIONS, 'log-retention': { type: 'string' }, json: { type: 'boolean' } }, []);
    if (parsed.help) return showHelp(this);
    // The model loads when the command runs (it brings the core's modules and the AWS SDK): `roster --help` does not pay for it.
    const { cloudMapCost, defaults, etcdCost, renderCost, rosterCost, rosterDetection } = await import('../bench/cost.ts');
    const { PRICES } = await import('../bench/prices.ts');
    const v = parsed.values;
    const { workload, units } = await workloadFrom(v, defaults);
    const base = defaults(workload.nodes, units);
    const retention = wholeNumber('log-retention', v['log-retention'], 1, 3653);
    const input: CostInput = { ...workload, logs: retention === undefined ? base.logs : { ...base.logs, retentionDays: retention, accessRetentionDays: retention } };
    const estimate = rosterCost(input, units);
    if (v.json) {
      out(JSON.stringify({ ...estimate, alternatives: [cloudMapCost(input), etcdCost(input)], detection: rosterDetection(input), prices: PRICES }, null, 2));
    } else {
      for (const line of renderCost(estimate)) out(line);
    }
    return 0;
  },
};
