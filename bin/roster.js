#!/usr/bin/env node
// The `roster` CLI. The repository ships TypeScript sources: they run from a bundle esbuild
// builds on first use (bin/bundle.js), or, with ROSTER_BUNDLE=off or without esbuild, through tsx.
import { register as registerHooks } from 'node:module';
import { pathToFileURL } from 'node:url';
import { bundleDir } from './bundle.js';

// The pinned AWS SDK runs on Node 20; its notice about future releases is noise in a CLI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const bundle = await bundleDir();
const serving = process.argv[2] === 'serve';
// `npm start` goes straight to the server, which starts DynamoDB Local before it loads anything heavy.
const entry = serving ? 'local/main' : 'cli/main';
let main;
if (bundle) {
  main = await import(pathToFileURL(`${bundle}/${entry}.mjs`).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  // The CLI imports the SDK by its package name; in the repository that resolves to the SDK's
  // sources (the `@roster/source` export condition), as it does for tsc and vitest.
  registerHooks('./source-condition.js', import.meta.url);
  main = serving ? await import('../local/main.ts') : await import('../cli/main.ts');
}
if (serving) {
  await main.serve(process.argv.slice(3));
  process.exit(process.exitCode ?? 0);
}
