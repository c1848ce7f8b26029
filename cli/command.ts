/**
 * What a `roster` command is, and how a command line runs one: a `Command`
 * has a summary, its help text, and a function returning the exit code
 * (`cli/main.ts` lists them); it fails with a `CliError` (exit 1, or its
 * own code) or a `UsageError` (exit 2, with a pointer to --help), which
 * `runMain` turns into one line on stderr.
 */
import { out } from './output.ts';

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

/** `--help`: the command's help on stdout, exit 0 — every command answers it the same way. */
export function showHelp(command: Command): number {
  process.stdout.write(command.help);
  return 0;
}
