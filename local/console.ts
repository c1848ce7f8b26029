/**
 * The web console for the local runtime: built in-process at start-up (so
 * `npm start` needs no build step), written to a temporary file of each
 * runtime that its console handler reads (`CONSOLE_HTML_FILE`), and removed
 * when the runtime stops.
 * The handler gets the runtime's own WebSocket URL (`WEBSOCKET_URL`).
 *
 * A console that cannot be built (esbuild missing from a production-only
 * install) does not stop the runtime: `/` and `/console` then answer 500 and
 * this warning says why.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSOLE_HTML_FILE_NAME } from '../functions/core/console-page.ts';
import type { RuntimeLog } from './log.ts';

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
  // Imported on demand: only the console build needs esbuild.
  const [{ buildConsole }, esbuild] = await Promise.all([import('../console/build.ts'), import('esbuild')]);
  try {
    return (await buildConsole()).html;
  } finally {
    await esbuild.stop();
  }
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
