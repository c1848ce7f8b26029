/**
 * What every `roster` command shares: errors and exit codes, where the
 * information center is (flags, --outputs, environment), argument parsing,
 * and plain-text output. A command is a `Command`: a summary, its help text,
 * and a function returning the exit code; `cli/main.ts` lists them.
 */
import { ID_RULE, isObject, isValidId } from '@roster/contract';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

export { table } from '../bench/table.ts';

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

/** `url` (from `source`) if it is a URL of one of `schemes`; a usage error that shows the right form otherwise. */
function checkedUrl(url: string | undefined, source: string, schemes: readonly string[]): string | undefined {
  if (url === undefined) return undefined;
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol.slice(0, -1);
  } catch {
    protocol = undefined;
  }
  if (protocol !== undefined && schemes.includes(protocol)) return url;
  const example = `${schemes[0]}://${url.replace(/^[a-z+.-]*:\/\//i, '') || 'localhost:4000'}`;
  throw new UsageError(`${source} must be ${/^h/.test(schemes[0] ?? '') ? 'an' : 'a'} ${schemes.map((s) => `${s}://`).join(' or ')} URL such as ${example}, not "${url}"`);
}

/** Flags win over --outputs, which wins over the environment, which wins over the defaults. */
export async function resolveTarget(flags: TargetFlags): Promise<Target> {
  const fromFile = flags.outputs === undefined ? {} : await readOutputs(flags.outputs, flags.stack);
  const env = process.env;
  const httpUrl =
    checkedUrl(flags.url, '--url', ['http', 'https']) ?? fromFile.httpUrl ?? checkedUrl(env.ROSTER_URL || undefined, 'ROSTER_URL', ['http', 'https']);
  let wsUrl =
    checkedUrl(flags['ws-url'], '--ws-url', ['ws', 'wss']) ?? fromFile.wsUrl ?? checkedUrl(env.ROSTER_WS_URL || undefined, 'ROSTER_WS_URL', ['ws', 'wss']);
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

/**
 * `--nodes -5` as `--nodes=-5`: parseArgs reads a value that starts with a
 * dash as a flag and calls it ambiguous; a number is what was meant, and the
 * command's own check then says what is wrong with it.
 */
function joinNegativeNumbers(argv: string[], options: OptionSpec): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (name !== undefined && options?.[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/** Every command takes `-h`/`--help`; `parse` adds it to the command's own options. */
const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

export function parse<O extends OptionSpec>(argv: string[], commandOptions: O, positionals: string[]) {
  const options = { ...commandOptions, ...HELP_OPTION };
  let parsed;
  try {
    parsed = parseArgs({ args: joinNegativeNumbers(argv, options), options, allowPositionals: true, strict: true });
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

/** A cluster or node id given on the command line, checked before anything is sent. */
export function checkId(what: 'cluster' | 'node', id: string): string {
  if (!isValidId(id)) throw new UsageError(`<${what}> must be ${ID_RULE}, not "${id}"`);
  return id;
}

export function positiveNumber(flag: string, raw: string | undefined, integer: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${flag} must be a positive ${integer ? 'whole ' : ''}number, not "${raw}"`);
  }
  return value;
}

export function wholeNumber(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, not "${raw}"`);
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

// ─── The command line ──────────────────────────────────────────────────────

export interface Cli {
  /** Every command of this build of the CLI. */
  commands: Record<string, Command>;
  /** What `--version` prints. */
  version: string;
  /** Commands of the full CLI this build lacks, and one sentence on where to run them. */
  elsewhere?: { names: readonly string[]; where: string };
}

function usage(cli: Cli): string {
  const names = Object.keys(cli.commands);
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((name) => `  ${name.padEnd(width)}  ${cli.commands[name]?.summary ?? ''}`);
  const elsewhere = cli.elsewhere ? `\n${cli.elsewhere.where}\n` : '';
  return `Usage: roster <command> [arguments] [flags]

Commands:
${lines.join('\n')}

Run "roster <command> --help" for a command's flags; "roster --version" for the version.
${elsewhere}`;
}

/**
 * Runs one command line; resolves to the exit code. Errors are one line on
 * stderr: a usage error exits 2 with a pointer to --help, anything else 1
 * (or the CliError's own code).
 */
export async function runMain(argv: string[], cli: Cli): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    out(cli.version);
    return 0;
  }
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const topic = name === 'help' && rest[0] !== undefined && Object.hasOwn(cli.commands, rest[0]) ? cli.commands[rest[0]] : undefined;
    // A command with no help text of its own prints it when run with --help (serve).
    if (topic) return topic.help === '' ? topic.run(['--help']) : showHelp(topic);
    (name === undefined ? process.stderr : process.stdout).write(usage(cli));
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(cli.commands, name) ? cli.commands[name] : undefined;
  if (!command) {
    if (cli.elsewhere?.names.includes(name)) {
      process.stderr.write(`roster: "${name}" is not in this CLI. ${cli.elsewhere.where}\n`);
      return 2;
    }
    process.stderr.write(`roster: unknown command "${name}"\n\n${usage(cli)}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`roster ${name}: ${err.message}\nRun "roster ${name} --help" for usage.\n`);
      return 2;
    }
    process.stderr.write(`roster ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof CliError ? err.exitCode : 1;
  }
}

// ─── Output ────────────────────────────────────────────────────────────────

/** `--help`: the command's help on stdout, exit 0 — every command answers it the same way. */
export function showHelp(command: Command): number {
  process.stdout.write(command.help);
  return 0;
}

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


