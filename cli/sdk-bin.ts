#!/usr/bin/env node
/**
 * `roster` as the @roster/client package ships it: the commands that need
 * only the SDK (`nodes`, `watch`, `agent`). client/tsdown.config.ts bundles
 * this file into the package's `dist/roster.mjs`, which is its `bin`; the SDK
 * itself stays an import of the installed package (never a second copy), and
 * the version is the package's.
 *
 * So wherever the SDK is installed, `npx roster` finds this bin in
 * node_modules/.bin and never goes to the npm registry, where an unrelated
 * package holds the name `roster`. The server, the bench and the token
 * commands need the repository (and the AWS SDK, DynamoDB Local): in a clone,
 * `npx roster` is the full CLI (cli/main.ts).
 */
import clientPackage from '@roster/client/package.json' with { type: 'json' };
import { runMain } from './command.ts';
import { NODE_COMMANDS } from './node-commands.ts';

const code = await runMain(process.argv.slice(2), {
  commands: NODE_COMMANDS,
  version: `roster ${clientPackage.version} (${clientPackage.name}; node ${process.version})`,
  elsewhere: {
    names: ['serve', 'bench', 'cost', 'robustness', 'token'],
    where: `serve, bench, cost, robustness and token are the repository's CLI: run them as npx roster … in a clone of ${clientPackage.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}.`,
  },
});
// Idle keep-alive sockets of fetch must not hold the process open.
process.exit(code);
