/**
 * The CLI's --help texts and the documentation's tables agree, both ways:
 * the command table in docs/running-nodes/cli.md lists exactly the commands
 * of `roster --help`, in its order, each with exactly the flags its own
 * `--help` lists; the target table lists the target flags; and the local
 * runtime's flag table (docs/operating/local-runtime.md) lists exactly the
 * flags of `roster serve --help`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { REPO_ROOT, readDoc } from './markdown.ts';

const run = promisify(execFile);

async function help(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['bin/roster.js', ...args, '--help'], { cwd: REPO_ROOT, timeout: 60_000 });
  return stdout;
}

/** The rows of the first table after `heading` in `file`, as cells. */
function table(file: string, heading: string): string[][] {
  const text = readDoc(file);
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`${file} has no heading "${heading}"`);
  const lines = text.slice(start).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows;
}

const flagsIn = (text: string): string[] => [...new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z-]*/g)].map((m) => m[0]))].sort();

/** Flags at the start of a help line (`  --flag …`, `  -v, --verbose …`), i.e. the flags a help text lists. */
function listedFlags(helpText: string): string[] {
  return [...new Set([...helpText.matchAll(/^ {2,}(?:-\w, )?(--[a-z][a-z-]*)/gm)].map((m) => m[1] ?? ''))].filter((f) => f !== '--help').sort();
}

function targetSection(helpText: string): string {
  const at = helpText.indexOf('Target (');
  return at < 0 ? '' : helpText.slice(at);
}

let rootHelp = '';
const commandHelp = new Map<string, string>();

beforeAll(async () => {
  rootHelp = await help([]);
  const commands = [...rootHelp.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1] ?? '');
  // One process each, in parallel: each help is a cold start of the CLI.
  const texts = await Promise.all(commands.map((c) => help(c === 'token' ? ['token', 'create'] : [c])));
  commands.forEach((c, i) => commandHelp.set(c, texts[i] ?? ''));
}, 120_000);

describe('the CLI documentation agrees with --help', () => {
  test('the command table lists the commands of `roster --help`, in its order', () => {
    const documented = table('docs/running-nodes/cli.md', '## Commands').map((row) => /^`([a-z]+)/.exec(row[0] ?? '')?.[1]);
    expect(documented).toEqual([...commandHelp.keys()]);
    expect(documented.length).toBeGreaterThanOrEqual(7);
  });

  test("each command's row names exactly the flags its --help lists (the target flags aside)", () => {
    const mismatches: string[] = [];
    for (const row of table('docs/running-nodes/cli.md', '## Commands')) {
      const command = /^`([a-z]+)/.exec(row[0] ?? '')?.[1] ?? '';
      if (command === 'serve') continue; // its flags are the local runtime's table, below
      const text = commandHelp.get(command) ?? '';
      const target = targetSection(text);
      const listed = listedFlags(text.slice(0, target ? text.indexOf(target) : undefined));
      const documented = flagsIn(row[2] ?? '');
      const missing = listed.filter((f) => !documented.includes(f));
      const unknown = documented.filter((f) => !flagsIn(text).includes(f));
      if (missing.length || unknown.length) mismatches.push(`${command}: not in the table ${missing.join(' ')}; not in --help ${unknown.join(' ')}`);
    }
    expect(mismatches).toEqual([]);
  });

  test('the target table lists the target flags of nodes, watch and agent', () => {
    const documented = table('docs/running-nodes/cli.md', '## Where the information center is').flatMap((row) => flagsIn(row[0] ?? '')).sort();
    for (const command of ['nodes', 'watch', 'agent']) expect(listedFlags(targetSection(commandHelp.get(command) ?? '')), command).toEqual(documented);
  });

  test("the local runtime's flag table lists exactly the flags of `roster serve --help`", () => {
    const documented = table('docs/operating/local-runtime.md', '## Flags').flatMap((row) => flagsIn(row[0] ?? '')).sort();
    expect(documented).toEqual(listedFlags(commandHelp.get('serve') ?? ''));
  });

  test('the comparison can fail: a flag the help does not list is told apart', () => {
    expect(listedFlags('  --port N   port\n  -v, --verbose  log\n  -h, --help  help\n')).toEqual(['--port', '--verbose']);
    expect(flagsIn('`--lease S`, `--meta k=v` (repeat)')).toEqual(['--lease', '--meta']);
  });
});
