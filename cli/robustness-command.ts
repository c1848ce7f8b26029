/**
 * `roster robustness`: the command. The harness (and the AWS SDK, DynamoDB
 * Local and the client processes it pulls in) loads only when it runs.
 * It lives with the other commands so it parses its flags and reports usage
 * errors as they do (cli/args.ts, cli/command.ts).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parse, wholeNumber } from './args.ts';
import { type Command, showHelp } from './command.ts';

const HELP = `Usage: roster robustness [--seed N] [--duration S] [--clients N] [--runs K] [--json FILE] [--history FILE]
       roster robustness --check FILE

Runs a seeded random schedule of operations and faults against a local
information center (127.0.0.1 only), then checks the recorded history for
six invariants: no false DOWN, detection within bounds, convergence after the
faults stop, per-node revision order, durability of acknowledged writes, and
no 5xx except while the store is unreachable. See docs/measured/robustness.md.

It starts DynamoDB Local on a data directory, the runtime (--fault-injection)
and N client processes using the SDK, each behind its own fault proxy.
Operations: register, re-register with new metadata, deregister, keepalive,
crash (SIGKILL), hang (SIGSTOP/SIGCONT), restart as a new incarnation (also
while the old one hangs), watchers joining and leaving. Faults: a client's
network cut or delayed; DynamoDB Local paused, or killed and restarted; the
runtime killed and restarted; @connections posts failing; the sweeper and the
stream poller stalled. Every process it starts is stopped at the end.

  --seed N         the schedule's seed (default: from the clock; printed)
  --duration S     seconds of operations and faults (default 60); a quiet
                   period of about 15 s and the set-up come on top
  --clients N      client processes, two thirds nodes (default 6)
  --runs K         K runs, with seeds N, N+1, ... (default 1)
  --json FILE      write the reports as JSON to FILE
  --history FILE   keep each run's history (JSON lines) in FILE (with
                   several runs: FILE.<seed>); a failed run keeps its history
                   anyway, in a temporary directory the report names
  --check FILE     check a history written before (no run)
  -h, --help       show this help

Exit code: 0 when every invariant held in every run, 1 otherwise, 2 for a
usage error.
`;

interface Parsed {
  seed: number;
  duration: number | undefined;
  clients: number | undefined;
  runs: number;
  json: string | undefined;
  history: string | undefined;
  check: string | undefined;
}

/** The flags, checked; undefined when --help was asked for. */
function parseFlags(argv: string[]): Parsed | undefined {
  const { help, values } = parse(
    argv,
    {
      seed: { type: 'string' },
      duration: { type: 'string' },
      clients: { type: 'string' },
      runs: { type: 'string' },
      json: { type: 'string' },
      history: { type: 'string' },
      check: { type: 'string' },
    },
    [],
  );
  if (help) return undefined;
  return {
    seed: wholeNumber('seed', values.seed, 0, 2 ** 31 - 1) ?? Date.now() % 1_000_000,
    duration: wholeNumber('duration', values.duration, 5, 24 * 3600),
    clients: wholeNumber('clients', values.clients, 2, 32),
    runs: wholeNumber('runs', values.runs, 1, 1000) ?? 1,
    json: values.json,
    history: values.history,
    check: values.check,
  };
}

export const robustnessCommand: Command = {
  summary: 'seeded fault runs against a local information center, checked for six invariants',
  help: HELP,
  async run(argv) {
    const parsed = parseFlags(argv);
    if (parsed === undefined) return showHelp(this);
    const { runRobustness, checkHistory } = await import('../robustness/run.ts');
    const { renderReport } = await import('../robustness/report.ts');
    if (parsed.check !== undefined) {
      const { parseHistory } = await import('../robustness/history.ts');
      const report = checkHistory(parseHistory(await readFile(parsed.check, 'utf8')));
      process.stdout.write(`${renderReport(report).join('\n')}\n`);
      return report.result.ok ? 0 : 1;
    }
    const { killAllChildren } = await import('../robustness/processes.ts');
    // Ctrl-C: every process the run started dies with it (the exit hook kills them).
    const onSignal = () => {
      process.stderr.write('roster robustness: interrupted; stopping everything it started\n');
      killAllChildren();
      process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const reports = [];
    try {
      for (let i = 0; i < parsed.runs; i++) {
        const seed = parsed.seed + i;
        const historyFile = parsed.history === undefined ? undefined : parsed.runs > 1 ? `${parsed.history}.${seed}` : parsed.history;
        const report = await runRobustness({
          seed,
          durationSeconds: parsed.duration,
          clients: parsed.clients,
          historyFile,
          progress: (line) => process.stderr.write(`roster robustness: ${line}\n`),
        });
        reports.push(report);
        process.stdout.write(`${renderReport(report).join('\n')}\n`);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (parsed.json !== undefined) await writeFile(parsed.json, `${JSON.stringify(reports, null, 2)}\n`);
    return reports.every((r) => r.result.ok) ? 0 : 1;
  },
};
