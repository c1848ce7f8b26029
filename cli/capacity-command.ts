/**
 * `roster capacity`: the command over the capacity planner (bench/planner.ts).
 * The planner and the workload model load when the command runs (they bring
 * the core's modules and the AWS SDK): `roster --help` and the other commands
 * do not pay for them.
 */
import type { StackSettings } from '../bench/stack-settings.ts';
import { keyValues, parse, positiveNumber } from './args.ts';
import { CliError, type Command, showHelp, UsageError } from './command.ts';
import { out } from './output.ts';
import { WORKLOAD_OPTIONS, workloadFrom, workloadHelp } from './workload-flags.ts';

async function stackSettings(template: string | undefined, context: Record<string, string>): Promise<StackSettings> {
  const { settingsFromFile, synthesizedSettings, TemplateError } = await import('../bench/stack-settings.ts');
  if (template !== undefined && Object.keys(context).length > 0) throw new UsageError('--context applies to the stack synthesized here; a --template is already synthesized (pass -c to cdk synth)');
  try {
    return template === undefined ? await synthesizedSettings(context) : await settingsFromFile(template);
  } catch (err) {
    if (err instanceof TemplateError) throw new UsageError(`--template ${template}: ${err.message}`);
    // A context value the app refuses (infra/roster-app.ts checks each one) is a usage mistake too.
    if (err instanceof Error && /^Context value|^Context values|^Configuration error/.test(err.message)) throw new UsageError(err.message);
    throw new CliError(`could not synthesize the stack: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export const capacityCommand: Command = {
  summary: "hold a workload against AWS's limits: each limit's load, use and breaking point",
  help: `Usage: roster capacity --nodes N --clusters C [--subscribers M] [flags]

For each limit a Roster deployment meets on AWS — the stage throttles of
each route, the account's API Gateway quota (shared with every @connections
post), new WebSocket connections, Lambda concurrency and request rate,
DynamoDB per partition key, per hot item and per table, the new table's warm
throughput, the stream shard of a cluster's fan-out, a sweep against its
interval, a full list against Lambda's 6 MB and the HTTP API's 10 MB — prints
the load, the limit, the utilization, the node count at which it breaks
(the clusters fixed), and what lifts it: a stack setting, a Service Quotas
increase (named, with the figure to ask for) or only a change of design.
Marks the first limit to break. The workload is the one \`roster cost\`
prices (the same flags); the stack's settings are its synthesized template's.

${workloadHelp("the stack's default lease / 3, as the SDK does")}
  --metadata-kb KB   node metadata, added to each item and each node of a list (default 0)
  --template FILE    read the stack's settings from a synthesized template
                     (cdk.out/Roster.template.json) instead of synthesizing
                     the stack in this checkout (a few seconds the first
                     time; kept in node_modules/.cache/roster/templates)
  -c, --context K=V  a CDK context value for the synthesized stack, as
                     \`cdk deploy -c\` takes it (repeat for more)
  --concurrency N    the account's Lambda concurrency, if raised (default 1000)
  --api-rate N       the account's API Gateway throttle, if raised (default 10000)
  --json             print the plan as JSON (breaksAtNodes: null = never, 0 = at any size)
  -h, --help         show this help
`,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        ...WORKLOAD_OPTIONS,
        'metadata-kb': { type: 'string' },
        template: { type: 'string' },
        context: { type: 'string', short: 'c', multiple: true },
        concurrency: { type: 'string' },
        'api-rate': { type: 'string' },
        json: { type: 'boolean' },
      },
      [],
    );
    if (parsed.help) return showHelp(this);
    const { DEFAULT_ACCOUNT, plan, renderPlan, stackKeepaliveSeconds } = await import('../bench/planner.ts');
    const { workloadDefaults } = await import('../bench/workload.ts');
    const v = parsed.values;
    const metadataKb = v['metadata-kb'] === '0' ? 0 : (positiveNumber('metadata-kb', v['metadata-kb'], false) ?? 0);
    if (metadataKb > 4) throw new UsageError('--metadata-kb must be at most 4: the contract allows 4 KiB of metadata');
    const account = {
      ...DEFAULT_ACCOUNT,
      lambdaConcurrency: positiveNumber('concurrency', v.concurrency, true) ?? DEFAULT_ACCOUNT.lambdaConcurrency,
      apiGatewayRate: positiveNumber('api-rate', v['api-rate'], true) ?? DEFAULT_ACCOUNT.apiGatewayRate,
    };
    // Check the workload's flags before the (slower) stack.
    await workloadFrom(v, workloadDefaults);
    const settings = await stackSettings(v.template, keyValues('context', v.context));
    const { workload, units } = await workloadFrom(v, (nodes, u) => ({ ...workloadDefaults(nodes, u), keepaliveSeconds: stackKeepaliveSeconds(settings) }));
    const result = plan(workload, settings, { units, account, metadataKb });
    if (v.json) out(JSON.stringify(result, null, 2));
    else for (const line of renderPlan(result)) out(line);
    return 0;
  },
};
