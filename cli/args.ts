/**
 * Parsing a command's arguments: `parse` over node:util's parseArgs (with
 * -h/--help for every command), and the checks of values every command
 * reads alike — ids, numbers, key=value metadata — each failing with a
 * UsageError that says what was expected.
 */
import { ID_RULE, isValidId } from '@roster/contract';
import { parseArgs } from 'node:util';
import { UsageError } from './command.ts';

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

/** Repeated `--flag key=value` values (`--meta`, `cdk synth`'s `-c`) as one record; a later key wins. */
export function keyValues(flag: string, pairs: string[] | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} takes key=value, not "${pair}"`);
    values[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return values;
}
