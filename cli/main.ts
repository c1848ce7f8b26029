/**
 * The `roster` command line (run by bin/roster.js).
 *
 * The CLI stands above everything else in the repository: it uses the SDK
 * (@roster/client, by its package name, as users do), the bench, the local
 * runtime and the token helpers, and nothing imports it.
 *
 * Each command is an entry of COMMANDS: a one-line summary, its help text,
 * and a function that returns the exit code (`Command`, from command.ts).
 * A command of its own module is added there with one line; anything not in
 * COMMANDS prints the usage and exits 2.
 * Errors are one line on stderr: a usage error exits 2, anything else 1
 * (`runMain`, command.ts). `nodes`, `watch` and `agent` (node-commands.ts) are
 * also the @roster/client package's own `roster` bin (sdk-bin.ts).
 */
import rootPackage from '../package.json' with { type: 'json' };
import { benchCommand } from './bench-command.ts';
import { capacityCommand } from './capacity-command.ts';
import { costCommand } from './cost-command.ts';
import { type Command, runMain } from './command.ts';
import { agentCommand, nodesCommand, watchCommand } from './node-commands.ts';
import { robustnessCommand } from './robustness-command.ts';
import { tokenCommand } from './token-command.ts';

const serveCommand: Command = {
  summary: 'run the information center on this machine (roster serve --help)',
  help: '',
  async run(argv) {
    // Loaded only here: the server side pulls in the AWS SDK, which the client commands never need.
    const { serve } = await import('../local/main.ts');
    await serve(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  },
};

/** Every command. */
const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  nodes: nodesCommand,
  watch: watchCommand,
  agent: agentCommand,
  bench: benchCommand,
  cost: costCommand,
  capacity: capacityCommand,
  robustness: robustnessCommand,
  token: tokenCommand,
};

const code = await runMain(process.argv.slice(2), { commands: COMMANDS, version: `roster ${rootPackage.version} (node ${process.version})` });
// Idle keep-alive sockets of fetch (and the server's, for `serve`) must not hold the process open.
process.exit(code);
