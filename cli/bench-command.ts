/**
 * `roster bench`: the command over bench/run.ts. The scenarios (and the AWS SDK, ws and etcd3
 * they pull in) are loaded only when the command runs, so the other CLI
 * commands start as quickly as before.
 */
import { writeFile } from 'node:fs/promises';
import { JavaMissingError } from '../local/dynamodb-local.ts';
import { parse, positiveNumber } from './args.ts';
import { CliError, type Command, showHelp, UsageError } from './command.ts';
import { out } from './output.ts';

const NAMES = ['throughput', 'fanout', 'storm', 'crash', 'hang', 'etcd', 'soak', 'scale', 'capacity'];

export const benchCommand: Command = {
  summary: 'measure detection, fan-out, throughput, a soak and a 10,000-node cluster with a storm on a local runtime, beside etcd',
  help: `Usage: roster bench [--quick] [--json FILE] [--scenarios LIST] [--soak-seconds S]
                    [--scale-nodes N] [--scale-subscribers M]

Starts DynamoDB Local and a local runtime (127.0.0.1 only) and measures, in
one run, on this machine:

  throughput  N workers keeping alive as fast as possible through Roster, and
              the same UpdateItem straight to DynamoDB Local; the ratio
  fanout      one registration → N WebSocket subscribers (N = 1, 100, 1,000,
              10,000): time until all have it, p50/p99, and the CPU time
              per delivered message of the runtime, DynamoDB Local and the
              subscribers (process CPU time, net of their idle rate)
  storm       500 registrations at once in one cluster → 1,000 subscribers,
              900 of them batched (as the SDK is) and 100 plain: all
              delivered in per-node order, the last subscriber's lag
              p50/p99/max for each kind
  crash       real \`roster agent\` processes SIGKILLed: time until every
              observer has NODE_DOWN (lease 15 s)
  hang        agents SIGSTOPped (connection stays open): time to NODE_DOWN
  etcd        fanout (same sizes), crash and hang on etcd (a prefix watch per subscriber,
              a lease with keepalive per node, the same lease), if \`etcd\`
              is installed (the bench never installs it)
  soak        2,000 simulated nodes, lease 10 s, keepalive every 3 s, for
              5 minutes: false NODE_DOWN, keepalive p99, runtime RSS
  scale       10,000 nodes in one cluster run by the SDK in child processes
              (1,000 RosterClients watching, 1,000 more killed and restarted
              at once after a steady minute): false NODE_DOWN, crash
              detection, time until every list equals the server's, each
              route's requests (the runtime's /metrics), posts, the busiest
              item's writes/s, the longest sweep, RSS; beside roster
              capacity's prediction for the same workload (7 minutes at
              1,000 nodes; longer at 10,000)
  capacity    DynamoDB's ConsumedCapacity (INDEXES) of each hot operation,
              the sweeper's read units under a keepalive load, full sweeps
              of 10,000 nodes (last: it leaves those nodes behind)

A full run takes 25 minutes or more, 5 of them the soak and 7 or more the
scale; every child process (runtime, DynamoDB Local, agents, etcd, the
scale's clients) is stopped at the end, also on Ctrl-C.

  --quick              a small version of each scenario (about a minute),
                       for CI smoke tests; its timings are not judged
  --json FILE          also write the report as JSON to FILE
  --scenarios LIST     comma-separated subset of: ${NAMES.join(', ')}
                       (etcd compares the Roster scenarios chosen with it)
  --soak-seconds S     soak duration (default 300; --quick: 6)
  --scale-nodes N      the scale scenario's nodes (default 10000; --quick: 200)
  --scale-subscribers M
                       its watching RosterClients (default 1000; --quick: 20);
                       with its storm at most N
  --scale-storm K      the RosterClients killed and restarted in its storm
                       (default a tenth of N)
  -h, --help           show this help
`,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        quick: { type: 'boolean' },
        json: { type: 'string' },
        scenarios: { type: 'string' },
        'soak-seconds': { type: 'string' },
        'scale-nodes': { type: 'string' },
        'scale-subscribers': { type: 'string' },
        'scale-storm': { type: 'string' },
      },
      [],
    );
    if (parsed.help) return showHelp(this);
    const { runBench, Cleanups, SCENARIOS, PLANS, scaleOptions, ScaleSizeError } = await import('../bench/run.ts');
    const { renderReport } = await import('../bench/report.ts');
    let scenarios: (typeof SCENARIOS)[number][] | undefined;
    if (parsed.values.scenarios !== undefined) {
      const names = parsed.values.scenarios.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const unknown = names.filter((n) => !(SCENARIOS as readonly string[]).includes(n));
      if (unknown.length > 0 || names.length === 0) throw new UsageError(`--scenarios takes a comma-separated list of ${SCENARIOS.join(', ')}`);
      scenarios = names as (typeof SCENARIOS)[number][];
    }
    const soakSeconds = positiveNumber('soak-seconds', parsed.values['soak-seconds'], false);
    const scaleNodes = positiveNumber('scale-nodes', parsed.values['scale-nodes'], true);
    const scaleSubscribers = positiveNumber('scale-subscribers', parsed.values['scale-subscribers'], true);
    const scaleStorm = positiveNumber('scale-storm', parsed.values['scale-storm'], true);
    try {
      scaleOptions(parsed.values.quick ? PLANS.quick : PLANS.full, { scaleNodes, scaleSubscribers, scaleStorm });
    } catch (err) {
      if (err instanceof ScaleSizeError) throw new UsageError(err.message);
      throw err;
    }

    // Ctrl-C stops every child process before exiting; a second one exits at once.
    const cleanups = new Cleanups();
    let interrupted = false;
    const onSignal = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.stderr.write('roster bench: interrupted; stopping everything it started\n');
      void cleanups.run().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const report = await runBench(
        {
          quick: parsed.values.quick ?? false,
          scenarios,
          soakSeconds,
          scaleNodes,
          scaleSubscribers,
          scaleStorm,
          progress: (line) => process.stderr.write(`roster bench: ${line}\n`),
        },
        cleanups,
      );
      for (const line of renderReport(report)) out(line);
      if (parsed.values.json !== undefined) {
        try {
          await writeFile(parsed.values.json, `${JSON.stringify(report, null, 2)}\n`);
        } catch (err) {
          throw new CliError(`cannot write --json ${parsed.values.json}: ${(err as Error).message}`);
        }
      }
      return 0;
    } catch (err) {
      // The bench always starts its own DynamoDB Local: `roster serve`'s way around a missing Java does not apply.
      if (err instanceof JavaMissingError) throw new CliError(err.requirement);
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
