import { fileURLToPath } from 'node:url';
import { CONSOLE_HTML_FILE_NAME, consoleResponse, loadConsolePage, readConsoleConfig, type ConsolePage } from '../core/console-page.ts';
import { httpHandler } from '../core/http-handler.ts';
import { currentScope, perScope } from '../core/scope.ts';

/**
 * GET /console (and GET /) — the web console: one self-contained HTML document.
 * On Lambda the document is `console.html` next to this bundle (the stack's
 * bundling writes it there); the local runtime points `CONSOLE_HTML_FILE` at its own build.
 */
/** The loaded page, once per execution environment (per local runtime: each has its own console build). */
const pages = perScope((): { page?: Promise<ConsolePage> } => ({}));

export const handler = httpHandler('console', async (event) => {
  const cache = pages();
  cache.page ??= loadConsolePage(readConsoleConfig(currentScope().env, fileURLToPath(new URL(`./${CONSOLE_HTML_FILE_NAME}`, import.meta.url))));
  // A failed load is not cached: the next request tries again.
  const loaded = await cache.page.catch((err: unknown) => {
    cache.page = undefined;
    throw err;
  });
  return consoleResponse(loaded, event.headers);
});
