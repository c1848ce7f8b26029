/**
 * What every `roster` command shares: errors and exit codes, where the
 * information center is (flags, --outputs, environment), argument parsing,
 * and plain-text output. A command is a `Command`: a summary, its help text,
 * and a function returning the exit code; `client/cli.ts` lists them.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isObject } from './wire.ts';

export const DEFAULT_URL = 'http://127.0.0.1:4000';
export const DEFAULT_WS_URL = 'ws://127.0.0.1:4000/ws';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A mistake in how the command was called: exit 2 and point at --help. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

// ─── Targets ───────────────────────────────────────────────────────────────

export const TARGET_HELP = `Target (where the information center is):
  --url URL          HTTP API (env ROSTER_URL; default ${DEFAULT_URL})
  --ws-url URL       WebSocket API (env ROSTER_WS_URL; default ${DEFAULT_WS_URL},
                     or /ws on the --url host, the local runtime's layout)
  --outputs FILE     take both from \`cdk deploy --outputs-file FILE\`
  --stack NAME       the stack to use when FILE has several
  --token TOKEN      bearer token (env ROSTER_TOKEN)`;

export const TARGET_OPTIONS = {
  url: { type: 'string' },
  'ws-url': { type: 'string' },
  outputs: { type: 'string' },
  stack: { type: 'string' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface TargetFlags {
  url?: string;
  'ws-url'?: string;
  outputs?: string;
  stack?: string;
  token?: string;
}

export interface Target {
  httpUrl: string;
  wsUrl: string;
  token: string | undefined;
}

/**
 * The outputs of one stack in a `cdk deploy --outputs-file` file
 * (`{ "<Stack>": { "HttpApiUrl", "WebSocketUrl", "TableName", … } }`): the
 * only stack that has `key`, or `stack` when given.
 */
export async function stackOutputs(file: string, stack: string | undefined, key: string, hint = ''): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new CliError(`cannot read --outputs ${file}: ${reason}`);
  }
  if (!isObject(parsed)) throw new CliError(`--outputs ${file} is not a CDK outputs file`);
  const stacks = Object.entries(parsed).filter(
    (entry): entry is [string, Record<string, unknown>] => isObject(entry[1]) && typeof entry[1][key] === 'string',
  );
  const chosen = stack === undefined ? stacks : stacks.filter(([name]) => name === stack);
  if (chosen.length === 0) throw new CliError(`--outputs ${file} has no stack${stack === undefined ? '' : ` ${stack}`} with a ${key}${hint}`);
  if (chosen.length > 1) throw new UsageError(`--outputs ${file} has several stacks (${chosen.map(([n]) => n).join(', ')}); choose one with --stack`);
  return (chosen[0] as [string, Record<string, unknown>])[1];
}

/** The HTTP and WebSocket URLs from a `cdk deploy --outputs-file` file. */
export async function readOutputs(file: string, stack: string | undefined): Promise<{ httpUrl?: string; wsUrl?: string }> {
  const outputs = await stackOutputs(file, stack, 'HttpApiUrl');
  return {
    httpUrl: outputs.HttpApiUrl as string,
    wsUrl: typeof outputs.WebSocketUrl === 'string' ? outputs.WebSocketUrl : undefined,
  };
}

/** Flags win over --outputs, which wins over the environment, which wins over the defaults. */
export async function resolveTarget(flags: TargetFlags): Promise<Target> {
  const fromFile = flags.outputs === undefined ? {} : await readOutputs(flags.outputs, flags.stack);
  const env = process.env;
  const httpUrl = flags.url ?? fromFile.httpUrl ?? (env.ROSTER_URL || undefined);
  let wsUrl = flags['ws-url'] ?? fromFile.wsUrl ?? (env.ROSTER_WS_URL || undefined);
  if (wsUrl === undefined && httpUrl !== undefined) {
    const derived = new URL(httpUrl);
    derived.protocol = derived.protocol === 'https:' ? 'wss:' : 'ws:';
    derived.pathname = '/ws';
    wsUrl = derived.toString();
  }
  return { httpUrl: httpUrl ?? DEFAULT_URL, wsUrl: wsUrl ?? DEFAULT_WS_URL, token: flags.token ?? (env.ROSTER_TOKEN || undefined) };
}

// ─── Parsing helpers ─────────────────────────────────────────────────────────

export type OptionSpec = NonNullable<Parameters<typeof parseArgs>[0]>['options'];

export function parse<O extends OptionSpec>(argv: string[], options: O, positionals: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // Node's messages go on to explain `--`; the first sentence is the useful part.
    const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    throw new UsageError(message.split(/\.\s/)[0] || 'invalid arguments');
  }
  const values = parsed.values as Record<string, unknown>;
  if (values.help) return { help: true as const, values: parsed.values, args: [] };
  if (parsed.positionals.length !== positionals.length) {
    const missing = positionals.slice(parsed.positionals.length);
    if (missing.length > 0) throw new UsageError(`missing ${missing.map((p) => `<${p}>`).join(' ')}`);
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals.length]}"`);
  }
  return { help: false as const, values: parsed.values, args: parsed.positionals };
}

export function positiveNumber(flag: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${flag} must be a positive ${integer ? 'whole ' : ''}number, not "${raw}"`);
  }
  return value;
}

export function metadataOf(pairs: string[] | undefined): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--meta takes key=value, not "${pair}"`);
    metadata[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return metadata;
}

// ─── Output ────────────────────────────────────────────────────────────────

export const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export function metadataText(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export function ago(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (Number.isNaN(seconds)) return '-';
  if (seconds < 0) return `in ${-seconds}s`;
  return seconds < 120 ? `${seconds}s ago` : `${Math.round(seconds / 60)}m ago`;
}

export function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length))) ?? [];
  return rows.map((row) =>
    row
      .map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** One JSON line per event; `change` lists node ids only, so a large cluster does not flood the output. */
