/**
 * The web console for the local runtime: built in-process at start-up (so
 * `npm start` needs no build step) or read from the cache a build left in
 * `node_modules/.cache/roster/console/`, named by a hash of its sources (the
 * console, the contract it imports, the lock file: a change to any is a new
 * name), then written to a temporary file of each
 * runtime that its console handler reads (`CONSOLE_HTML_FILE`), and removed
 * when the runtime stops.
 * The handler gets the runtime's own WebSocket URL (`WEBSOCKET_URL`).
 *
 * A console that cannot be built (esbuild missing from a production-only
 * install) does not stop the runtime: `/` and `/console` then answer 500 and
 * this warning says why.
 */
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSOLE_HTML_FILE_NAME } from '../functions/core/console-page.ts';
import type { RuntimeLog } from './log.ts';
import { hashSources } from './source-hash.ts';
import { REPO_ROOT } from './template/source.ts';

/** What the console document is built from. */
const CONSOLE_SOURCES = ['console', 'contract', 'functions/core/console-page.ts', 'package-lock.json'];

export interface LocalConsole {
  /** The environment the console handler reads. */
  environment: Record<string, string>;
  remove(): Promise<void>;
}

/**
 * The console document, built once per process and shared by every runtime
 * in it (it is the same for each: the WebSocket URL is filled in when it is
 * served). Once only, also because esbuild's API runs one service process per
 * Node process: stopping it (so that no child is left behind) while another
 * runtime's build still ran would leave that build waiting forever.
 */
let consoleHtml: Promise<string> | undefined;

async function buildOnce(): Promise<string> {
  const cacheDir = join(REPO_ROOT, 'node_modules', '.cache', 'roster', 'console');
  const cached = join(cacheDir, `${hashSources(REPO_ROOT, CONSOLE_SOURCES, /\.(ts|json|css|html)$/)}.html`);
  try {
    return await readFile(cached, 'utf8');
  } catch {
    // Not built from these sources yet.
  }
  // Imported on demand: only the console build needs esbuild.
  const [{ buildConsole }, esbuild] = await Promise.all([import('../console/build.ts'), import('esbuild')]);
  let html: string;
  try {
    html = (await buildConsole()).html;
  } finally {
    await esbuild.stop();
  }
  // Written whole or not at all: another runtime starting now may be reading it. A cache that cannot be
  // written (a read-only install) only means the next start builds again.
  const partial = `${cached}.${process.pid}.tmp`;
  try {
    await mkdir(cacheDir, { recursive: true });
    await writeFile(partial, html);
    await rename(partial, cached);
  } catch {
    await rm(partial, { force: true });
  }
  return html;
}

export async function prepareLocalConsole(log: RuntimeLog): Promise<LocalConsole | undefined> {
  let dir: string | undefined;
  try {
    consoleHtml ??= buildOnce();
    const html = await consoleHtml.catch((err: unknown) => {
      // A failed build is not kept: the next runtime tries again.
      consoleHtml = undefined;
      throw err;
    });
    dir = await mkdtemp(join(tmpdir(), 'roster-console-'));
    const file = join(dir, CONSOLE_HTML_FILE_NAME);
    await writeFile(file, html);
    const made = dir;
    return { environment: { CONSOLE_HTML_FILE: file }, remove: () => rm(made, { recursive: true, force: true }) };
  } catch (err) {
    if (dir) await rm(dir, { recursive: true, force: true });
    log.warn('the web console could not be built; / and /console will answer 500', { error: err as Error });
    return undefined;
  }
}

/** The console handler's environment for a runtime listening on `port`. */
export const consoleEnvironment = (port: number, built: LocalConsole | undefined): Record<string, string> => ({
  WEBSOCKET_URL: `ws://127.0.0.1:${port}/ws`,
  ...built?.environment,
});
