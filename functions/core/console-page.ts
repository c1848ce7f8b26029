/**
 * The web console's page: the one HTML document `console/build.ts` produces,
 * with the WebSocket URL written in, served with strict security headers.
 *
 * The Content-Security-Policy allows exactly the page's own inline script and
 * stylesheet (by hash), requests to its own origin and to the WebSocket API's
 * origin, and nothing else: no external origin, no framing, no form posts,
 * no `<base>`. The hashes are taken from the document itself, so they cannot
 * drift from what the build inlined.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type { HttpResult } from './http-handler.ts';

/** Where the built document carries the WebSocket URL (`<meta name="roster-ws-url">`). */
export const CONSOLE_WS_URL_PLACEHOLDER = '%ROSTER_WS_URL%';
/** The built document's file name, next to the handler's bundle on Lambda. */
export const CONSOLE_HTML_FILE_NAME = 'console.html';

export interface ConsoleConfig {
  /** The built document. */
  htmlFile: string;
  /** ws:// or wss:// URL of the WebSocket API. */
  webSocketUrl: string;
}

/**
 * Reads the console's configuration: `WEBSOCKET_URL` (required), and
 * `CONSOLE_HTML_FILE` (the local runtime's build; on Lambda the file next to the bundle).
 */
export function readConsoleConfig(env: NodeJS.ProcessEnv, defaultHtmlFile: string): ConsoleConfig {
  const webSocketUrl = env.WEBSOCKET_URL;
  if (!webSocketUrl) throw new Error('Configuration error: WEBSOCKET_URL is not set');
  let url: URL;
  try {
    url = new URL(webSocketUrl);
  } catch {
    throw new Error(`Configuration error: WEBSOCKET_URL=${webSocketUrl} is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error(`Configuration error: WEBSOCKET_URL=${webSocketUrl} must be a ws:// or wss:// URL`);
  return { htmlFile: env.CONSOLE_HTML_FILE || defaultHtmlFile, webSocketUrl: url.href };
}

export interface ConsolePage {
  html: string;
  gzipped: Buffer;
  etag: string;
  headers: Record<string, string>;
}

const sha256 = (text: string): string => `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;

const escapeAttribute = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The page for `built` (the build's output) talking to the WebSocket API at `webSocketUrl`. */
export function consolePage(built: string, webSocketUrl: string): ConsolePage {
  const ws = new URL(webSocketUrl);
  if (!built.includes(CONSOLE_WS_URL_PLACEHOLDER)) throw new Error('the console document has no WebSocket URL placeholder');
  const html = built.replace(CONSOLE_WS_URL_PLACEHOLDER, () => escapeAttribute(ws.href));
  const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)?.[1];
  const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1];
  if (script === undefined || style === undefined) throw new Error('the console document lacks its inline script or stylesheet');
  const csp = [
    "default-src 'none'",
    `script-src '${sha256(script)}'`,
    `style-src '${sha256(style)}'`,
    // 'self' is the HTTP API; the WebSocket API has its own origin on AWS (and ws: needs naming for older browsers).
    `connect-src 'self' ${ws.origin}`,
    // The favicon is an inline SVG.
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  const etag = `"${createHash('sha256').update(html).digest('base64url').slice(0, 27)}"`;
  return {
    html,
    gzipped: gzipSync(html, { level: 9 }),
    etag,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': csp,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // For browsers older than CSP's frame-ancestors.
      'x-frame-options': 'DENY',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'permissions-policy': 'camera=(), microphone=(), geolocation=()',
      // Revalidate every time (cheap with the ETag): a deployment changes the page at once.
      'cache-control': 'no-cache',
      etag,
      vary: 'accept-encoding',
    },
  };
}

/** Reads and prepares the page once per process (a Lambda cold start). */
export async function loadConsolePage(config: ConsoleConfig): Promise<ConsolePage> {
  let built: string;
  try {
    built = await readFile(config.htmlFile, 'utf8');
  } catch (err) {
    throw new Error(`the console document ${config.htmlFile} could not be read`, { cause: err });
  }
  return consolePage(built, config.webSocketUrl);
}

/** Whether an `Accept-Encoding` header accepts gzip (and does not refuse it with `q=0`). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** The response for one request: 304 when the browser has this page, gzipped when it accepts gzip. */
export function consoleResponse(page: ConsolePage, requestHeaders: Record<string, string | undefined>): HttpResult {
  if (requestHeaders['if-none-match']?.split(',').some((tag) => tag.trim() === page.etag)) {
    // A 304 carries the validators and policies, not the body's type.
    const headers = Object.fromEntries(Object.entries(page.headers).filter(([name]) => name !== 'content-type'));
    return { statusCode: 304, headers };
  }
  if (acceptsGzip(requestHeaders['accept-encoding'])) {
    return {
      statusCode: 200,
      headers: { ...page.headers, 'content-encoding': 'gzip' },
      body: page.gzipped.toString('base64'),
      isBase64Encoded: true,
    };
  }
  return { statusCode: 200, headers: page.headers, body: page.html };
}
