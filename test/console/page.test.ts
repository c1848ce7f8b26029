/**
 * The console's build (console/build.ts) and its page response
 * (functions/core/console-page.ts): one self-contained document, a CSP whose
 * hashes are exactly those of its inline script and stylesheet, gzip and 304.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from 'vitest';
import { buildConsole, describeBuild, type ConsoleBuild } from '../../console/build.ts';
import { CONSOLE_WS_URL_PLACEHOLDER, acceptsGzip, consolePage, consoleResponse, readConsoleConfig } from '../../functions/core/console-page.ts';

let built: ConsoleBuild;
beforeAll(async () => {
  built = await buildConsole();
  console.info(describeBuild('(in memory)', built));
});

const sha = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('the console build', () => {
  test('is one document with its script and styles inlined, loading nothing from anywhere', () => {
    expect(built.html.startsWith('<!doctype html>')).toBe(true);
    expect(built.html).toContain(CONSOLE_WS_URL_PLACEHOLDER);
    expect(built.html.match(/<script/g)).toHaveLength(1);
    expect(built.html.match(/<style/g)).toHaveLength(1);
    expect(built.html).not.toMatch(/<script[^>]+src=|<link[^>]+rel="stylesheet"|@import|@font-face|url\(\s*['"]?https?:/i);
    // No absolute http(s) URL at all in the code (the SVG favicon's namespace is a name, not a request).
    const urls = [...built.html.matchAll(/https?:\/\/[^\s"'`)]+/g)].map((m) => m[0]);
    expect(urls.filter((u) => u !== 'http://www.w3.org/2000/svg')).toEqual([]);
  });

  test('stays under 100 KB gzipped', () => {
    expect(built.gzipBytes).toBeLessThan(100 * 1024);
  });
});

describe('the page response', () => {
  const WS = 'wss://abc123.execute-api.eu-west-1.amazonaws.com/live';

  test('writes the WebSocket URL in and allows exactly the inline script, the styles, self and the WebSocket origin', () => {
    const page = consolePage(built.html, WS);
    expect(page.html).toContain(`<meta name="roster-ws-url" content="${WS}">`);
    const script = /<script type="module">([\s\S]*?)<\/script>/.exec(page.html)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(page.html)?.[1] ?? '';
    expect(page.headers['content-security-policy']).toBe(
      [
        "default-src 'none'",
        `script-src ${sha(script)}`,
        `style-src ${sha(style)}`,
        "connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com",
        'img-src data:',
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
    );
    expect(page.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    });
  });

  test('escapes the URL as an attribute value', () => {
    const page = consolePage(built.html, 'ws://127.0.0.1:4000/ws?a="><script>');
    expect(page.html).toContain('content="ws://127.0.0.1:4000/ws?a=%22%3E%3Cscript%3E"');
  });

  test('is gzipped when the browser accepts it, 304 when it has it, plain otherwise', () => {
    const page = consolePage(built.html, WS);
    const gz = consoleResponse(page, { 'accept-encoding': 'gzip, deflate, br' });
    expect(gz).toMatchObject({ statusCode: 200, isBase64Encoded: true, headers: { 'content-encoding': 'gzip', vary: 'accept-encoding' } });
    expect(gunzipSync(Buffer.from(String(gz.body), 'base64')).toString('utf8')).toBe(page.html);
    expect(consoleResponse(page, {}).body).toBe(page.html);
    const notModified = consoleResponse(page, { 'if-none-match': page.etag });
    expect(notModified.statusCode).toBe(304);
    expect(notModified.body).toBeUndefined();
    expect(acceptsGzip('gzip;q=0, identity')).toBe(false);
    expect(acceptsGzip('br;q=1, *;q=0.1')).toBe(true);
  });

  test('needs a ws(s) WEBSOCKET_URL', () => {
    expect(() => readConsoleConfig({}, 'x.html')).toThrow(/WEBSOCKET_URL is not set/);
    expect(() => readConsoleConfig({ WEBSOCKET_URL: 'https://a.example/live' }, 'x.html')).toThrow(/ws:\/\/ or wss:\/\//);
    expect(readConsoleConfig({ WEBSOCKET_URL: WS, CONSOLE_HTML_FILE: '/tmp/c.html' }, 'x.html')).toEqual({ htmlFile: '/tmp/c.html', webSocketUrl: WS });
    expect(readConsoleConfig({ WEBSOCKET_URL: WS }, 'x.html').htmlFile).toBe('x.html');
  });
});
