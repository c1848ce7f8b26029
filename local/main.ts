/**
 * `npm start` / `roster serve`: the whole information center on one machine.
 *
 * `serve(argv)` parses the flags, starts the runtime, prints the two URLs once
 * it is ready, and stops everything on SIGINT, SIGTERM or SIGHUP (a second
 * signal stops at once). It never throws for a user error: it prints one
 * clear message, sets `process.exitCode` and returns.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LEASE_MAX_SECONDS, LEASE_MIN_SECONDS } from '../functions/core/config.ts';
import { JavaMissingError } from './dynamodb-local.ts';
import { startEngine, type Engine } from './engine.ts';
import { RuntimeStartError } from './errors.ts';
import { DEFAULTS, type RuntimeOptions } from './options.ts';
import type { Runtime } from './runtime.ts';

export const USAGE = `Usage: roster serve [flags]   (npm start -- [flags])

Runs the whole Roster information center on this machine: the HTTP API, the
WebSocket API, DynamoDB Local, the stream fan-out and the sweeper, with the
same handlers as on AWS, as the stack's synthesized template defines them:
each function's IAM role, the stages' throttles, the event source mapping and
the authorizers are the template's. Prints the URLs once ready; Ctrl-C stops
everything.

Flags:
  --port N                 port on 127.0.0.1; 0 picks a free one (default ${DEFAULTS.port})
  --data-dir DIR           persist DynamoDB Local's data in DIR (default: in memory)
  --dynamodb-endpoint URL  use a DynamoDB you already run instead of starting DynamoDB Local
  --table NAME             table name; created if missing (default ${DEFAULTS.tableName})
  --template FILE          run this synthesized template (cdk synth writes cdk.out/Roster.template.json);
                           default: this repository's CDK app, synthesized with the settings below
  -c, --context KEY=VALUE  CDK context for that synthesis, as cdk deploy -c takes it (repeatable),
                           e.g. -c httpRateLimit=2000 -c httpBurstLimit=4000
  --sweep-interval S       seconds between sweeps for expired nodes (default ${DEFAULTS.sweepIntervalSeconds})
  --disconnect-grace S     lease left to a node whose bound WebSocket dropped (default ${DEFAULTS.disconnectGraceSeconds})
  --default-lease S        lease of a registration that names none, ${LEASE_MIN_SECONDS}..${LEASE_MAX_SECONDS} (default ${DEFAULTS.defaultLeaseSeconds})
  --poll-interval-ms MS    stream poll interval of an idle shard (default ${DEFAULTS.pollIntervalMs}, Lambda's)
  --auth                   require tokens, with the same authorizers as on AWS; prints an admin token
  --auth-secret-file FILE  the token signing secret (created if missing; default DIR/auth-secret
                           with --data-dir, else a new one each run)
  --auth-cache-ttl S       seconds the HTTP authorizer's results are cached, as on AWS (default ${DEFAULTS.authCacheTtlSeconds})
  --iam-log FILE           append every AWS call a function makes, and IAM's decision, to FILE (JSON lines)
  --no-iam                 do not evaluate the functions' calls against their roles (on AWS they always are)
  --no-throttle            do not apply the stages' throttles and the account's quota (on AWS they always apply)
  -v, --verbose            log every request and the handlers' INFO lines, and a metrics summary a minute
  --no-metrics             do not collect metrics (GET /metrics is then empty); for measuring their cost
  --fault-injection        accept stalls and failures from a loopback control endpoint (roster robustness
                           only; prints "Faults    URL"); never use it for anything else
  -h, --help               show this help

DynamoDB Local needs Java 17 or newer.
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function number(flag: string, raw: string | undefined, opts: { integer?: boolean; min: number; max: number }): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || (opts.integer && !Number.isInteger(value)) || value < opts.min || value > opts.max) {
    const kind = opts.integer ? 'a whole number' : 'a number';
    throw new UsageError(`--${flag} must be ${kind} from ${opts.min} to ${opts.max}, not "${raw}"`);
  }
  return value;
}

/** Parses `serve` flags into runtime options, or 'help'. Throws `UsageError` for anything wrong. */
export function parseServeArgs(argv: string[]): RuntimeOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        'dynamodb-endpoint': { type: 'string' },
        table: { type: 'string' },
        'sweep-interval': { type: 'string' },
        'disconnect-grace': { type: 'string' },
        'default-lease': { type: 'string' },
        'poll-interval-ms': { type: 'string' },
        auth: { type: 'boolean' },
        'auth-secret-file': { type: 'string' },
        'auth-cache-ttl': { type: 'string' },
        template: { type: 'string' },
        context: { type: 'string', short: 'c', multiple: true },
        'iam-log': { type: 'string' },
        'no-iam': { type: 'boolean' },
        'no-throttle': { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        'no-metrics': { type: 'boolean' },
        'fault-injection': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  if (values.help) return 'help';
  if (values['data-dir'] !== undefined && values['dynamodb-endpoint'] !== undefined) {
    throw new UsageError('--data-dir and --dynamodb-endpoint exclude each other (the data directory belongs to the DynamoDB Local the runtime starts)');
  }
  if (values['data-dir'] === '') throw new UsageError('--data-dir needs a directory');
  if ((values['auth-secret-file'] !== undefined || values['auth-cache-ttl'] !== undefined) && !values.auth) {
    throw new UsageError('--auth-secret-file and --auth-cache-ttl go with --auth');
  }
  if (values['auth-secret-file'] === '') throw new UsageError('--auth-secret-file needs a file');
  const settingFlags = ['sweep-interval', 'disconnect-grace', 'default-lease', 'auth-cache-ttl', 'context'] as const;
  const given = settingFlags.filter((flag) => values[flag] !== undefined);
  if (values.template !== undefined && given.length > 0) {
    throw new UsageError(`--template runs a synthesized template as it is; ${given.map((f) => `--${f}`).join(', ')} belong to its synthesis (cdk synth -c …)`);
  }
  const context: Record<string, string> = {};
  for (const pair of values.context ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--context takes KEY=VALUE, not "${pair}"`);
    context[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return {
    port: number('port', values.port, { integer: true, min: 0, max: 65535 }),
    dataDir: values['data-dir'],
    dynamodbEndpoint: values['dynamodb-endpoint'],
    tableName: values.table,
    sweepIntervalSeconds: number('sweep-interval', values['sweep-interval'], { min: 0.05, max: 60 }),
    disconnectGraceSeconds: number('disconnect-grace', values['disconnect-grace'], { min: 0, max: LEASE_MAX_SECONDS }),
    defaultLeaseSeconds: number('default-lease', values['default-lease'], { integer: true, min: LEASE_MIN_SECONDS, max: LEASE_MAX_SECONDS }),
    pollIntervalMs: number('poll-interval-ms', values['poll-interval-ms'], { integer: true, min: 10, max: 60_000 }),
    auth: values.auth ?? false,
    authSecretFile: values['auth-secret-file'],
    authCacheTtlSeconds: number('auth-cache-ttl', values['auth-cache-ttl'], { integer: true, min: 0, max: 3600 }),
    templateFile: values.template,
    context,
    iamLogFile: values['iam-log'],
    iam: !(values['no-iam'] ?? false),
    throttle: !(values['no-throttle'] ?? false),
    verbose: values.verbose ?? false,
    metrics: !(values['no-metrics'] ?? false),
    faultInjection: values['fault-injection'] ?? false,
  };
}

/** A start-up failure as one message for the user; the stack only with --verbose. */
export function describeStartError(err: unknown, verbose: boolean): string {
  if (err instanceof JavaMissingError || err instanceof RuntimeStartError) return err.message;
  const message = err instanceof Error ? err.message : String(err);
  if (verbose && err instanceof Error && err.stack) return `could not start: ${err.stack}`;
  return `could not start: ${message.split('\n')[0]}${verbose ? '' : ' (run with --verbose for details)'}`;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** A second signal this long after the first stops at once instead of gracefully. */
const FORCE_AFTER_MS = 1000;

export async function serve(argv: string[]): Promise<void> {
  let options: RuntimeOptions | 'help';
  try {
    options = parseServeArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`roster serve: ${err.message}\nRun "roster serve --help" for the flags.\n`);
    process.exitCode = 2;
    return;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }

  // Signal handlers come first, so Ctrl-C during start-up still stops DynamoDB Local.
  let signalled = false;
  let firstSignalAt = 0;
  let onStop: (() => void) | undefined;
  const onSignal = () => {
    if (signalled) {
      // npm, tsx and `timeout` relay signals, so one Ctrl-C can arrive twice: only a later one forces.
      if (Date.now() - firstSignalAt < FORCE_AFTER_MS) return;
      process.stderr.write('roster serve: stopping now\n');
      process.exit(1); // the runtime's exit hook kills DynamoDB Local
    }
    signalled = true;
    firstSignalAt = Date.now();
    onStop?.();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    let runtime: Runtime;
    try {
      // DynamoDB Local's JVM is the slowest part of the start: it starts while the runtime's modules load.
      const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
      const engine: Promise<Engine> | undefined = options.dynamodbEndpoint === undefined ? startEngine({ dataDir }) : undefined;
      engine?.catch(() => {});
      const { startRuntime } = await import('./runtime.ts');
      runtime = await startRuntime({ ...options, engine });
    } catch (err) {
      process.stderr.write(`roster serve: ${describeStartError(err, options.verbose ?? false)}\n`);
      process.exitCode = 1;
      return;
    }
    if (!signalled) {
      // One write, so whoever waits for the ready lines also has the token line (the one place a
      // token is printed: it is the operator's own credential, asked for with --auth).
      const tokenLine = runtime.adminToken ? `Admin token ${runtime.adminToken}\n` : '';
      const faultsLine = runtime.faultsUrl ? `Faults    ${runtime.faultsUrl}\n` : '';
      process.stdout.write(`HTTP API  ${runtime.httpUrl}\nWebSocket ${runtime.wsUrl}\n${tokenLine}${faultsLine}`);
      if (!runtime.adminToken) {
        process.stderr.write(
          `roster serve: auth is OFF: anything that can reach 127.0.0.1:${runtime.port} may register, deregister and read every cluster ` +
            '(the server listens on loopback only); start with --auth to require tokens\n',
        );
      }
      const stoppedBySignal = new Promise<void>((resolve) => {
        onStop = resolve;
        if (signalled) resolve();
      });
      const failure = await Promise.race([stoppedBySignal.then(() => undefined), runtime.failed]);
      // The runtime has logged the failure and stopped itself.
      if (failure) process.exitCode = 1;
    }
    try {
      await runtime.stop();
    } catch (err) {
      process.stderr.write(`roster serve: stopping failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}
