/**
 * The console function (`functions/http/console.ts`): its page is one HTML
 * document built by `console/build.ts`. The after-bundling hook writes it as
 * `console.html` next to the handler's `index.mjs`, so it is part of the
 * function's asset (and of its hash): a changed console deploys a new
 * function version, and nothing built is ever committed.
 */
import path from 'node:path';
import type { ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { CONSOLE_HTML_FILE_NAME } from '../functions/core/console-page.ts';
import { PROJECT_ROOT, type RosterFunctionProps } from './function.ts';

/** The module under `functions/http/` that serves the console. */
export const CONSOLE_HANDLER = 'console';

/** Single-quoted for a POSIX shell. */
const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

const hooks: ICommandHooks = {
  beforeBundling: () => [],
  beforeInstall: () => [],
  afterBundling: (_inputDir, outputDir) => [
    // tsx (a dependency) runs the TypeScript build script; esbuild is the one that bundles the handlers.
    `node --import tsx ${quote(path.join(PROJECT_ROOT, 'console', 'build.ts'))} --out ${quote(path.join(outputDir, CONSOLE_HTML_FILE_NAME))}`,
  ],
};

export const CONSOLE_FUNCTION_PROPS: Pick<RosterFunctionProps, 'commandHooks' | 'memorySize'> = {
  commandHooks: hooks,
  // It returns a document it holds in memory: the smallest size is plenty.
  memorySize: 128,
};
