/**
 * The target flags every command that talks to an information center
 * shares: where it is (--url, --ws-url, or a `cdk deploy --outputs-file`
 * file, or the environment) and the token to send it.
 */
import { isObject } from '@roster/contract';
import { readFile } from 'node:fs/promises';
import { CliError, UsageError } from './command.ts';

export const DEFAULT_URL = 'http://127.0.0.1:4000';
export const DEFAULT_WS_URL = 'ws://127.0.0.1:4000/ws';

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
