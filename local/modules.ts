/**
 * Where a module of this repository is, as this process can load it. The
 * CLI and the runtime run from a bundle (bin/bundle.js) or, with
 * ROSTER_BUNDLE=off or no esbuild, from the TypeScript sources through tsx;
 * the handler modules the runtime imports and the scripts it forks must come
 * from the same place, so that they share its modules (one `Scope` class).
 */
import { fileURLToPath } from 'node:url';

// Replaced by the bundle's own URL when bin/bundle.js builds this module; no such global exists under tsx.
declare const ROSTER_BUNDLE_ROOT: string | undefined;
const BUNDLE_ROOT = typeof ROSTER_BUNDLE_ROOT === 'string' ? new URL(ROSTER_BUNDLE_ROOT) : undefined;
const REPO_ROOT = new URL('../', import.meta.url);

/** A module by its path in the repository (`functions/http/register.ts`): its compiled copy in the bundle, or its source. */
export function moduleUrl(repoPath: string): string {
  return BUNDLE_ROOT ? new URL(repoPath.replace(/\.ts$/, '.mjs'), BUNDLE_ROOT).href : new URL(repoPath, REPO_ROOT).href;
}

/** What `node` is given to run a script of the repository in a child process: its file, and the loader flags it needs. */
export function scriptToRun(repoPath: string): { file: string; execArgv: string[] } {
  return { file: fileURLToPath(moduleUrl(repoPath)), execArgv: BUNDLE_ROOT ? [] : ['--import', 'tsx'] };
}
