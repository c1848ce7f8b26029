#!/usr/bin/env node
// The `roster` CLI. The repository ships TypeScript sources; tsx runs them directly.
import { register as registerHooks } from 'node:module';
import { register } from 'tsx/esm/api';

// The pinned AWS SDK runs on Node 20; its notice about future releases is noise in a CLI.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
// The CLI imports the SDK by its package name; in the repository that resolves to the SDK's
// sources (the `@roster/source` export condition), as it does for tsc and vitest.
registerHooks('./source-condition.js', import.meta.url);
if (process.argv[2] === 'serve') {
  // `npm start`: straight to the server, which starts DynamoDB Local before it loads anything heavy.
  const { serve } = await import('../local/main.ts');
  await serve(process.argv.slice(3));
  process.exit(process.exitCode ?? 0);
}
await import('../cli/main.ts');
