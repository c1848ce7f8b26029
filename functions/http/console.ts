import { fileURLToPath } from 'node:url';
import { CONSOLE_HTML_FILE_NAME, consoleResponse, loadConsolePage, readConsoleConfig, type ConsolePage } from '../core/console-page.ts';
import { httpHandler } from '../core/http.ts';

/**
 * GET /console (and GET /) — the web console: one self-contained HTML document.
 * On Lambda the document is `console.html` next to this bundle (the stack's
 * bundling writes it there); the local runtime points `CONSOLE_HTML_FILE` at its own build.
 */
let page: Promise<ConsolePage> | undefined;

export const handler = httpHandler('console', async (event) => {
  page ??= loadConsolePage(readConsoleConfig(process.env, fileURLToPath(new URL(`./${CONSOLE_HTML_FILE_NAME}`, import.meta.url))));
  // A failed load is not cached: the next request tries again.
  const loaded = await page.catch((err: unknown) => {
    page = undefined;
    throw err;
  });
  return consoleResponse(loaded, event.headers);
});
