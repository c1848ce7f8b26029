/**
 * Builds the web console into ONE self-contained HTML document: the
 * TypeScript under `console/src/` bundled and minified by esbuild, and the
 * stylesheet, both inlined into `console/index.html`. One file is what one
 * Lambda response (and one local route) can serve, and it makes no request
 * but to its own API.
 *
 * Who runs it, so that no one has to run a build step by hand:
 * - the local runtime, in-process at start-up (`buildConsole`);
 * - `cdk synth`, as the console function's after-bundling hook, which writes
 *   `console.html` next to the handler's `index.mjs`;
 * - `npm run build`, which prints the sizes.
 *
 * CLI: `tsx console/build.ts [--out FILE]` (default `dist/console/console.html`).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { CONSOLE_WS_URL_PLACEHOLDER } from '../functions/core/console-page.ts';

const CONSOLE_DIR = fileURLToPath(new URL('.', import.meta.url));
const STYLE_MARK = '<!-- roster:style -->';
const SCRIPT_MARK = '<!-- roster:script -->';
/** Browsers the console supports: the last few years of evergreen browsers, desktop and phone. */
const TARGET = ['es2020', 'chrome100', 'firefox100', 'safari15'];

export interface ConsoleBuild {
  html: string;
  /** UTF-8 size of the whole document. */
  bytes: number;
  gzipBytes: number;
  scriptBytes: number;
  styleBytes: number;
}

function once(haystack: string, needle: string, what: string): void {
  const first = haystack.indexOf(needle);
  if (first < 0 || haystack.indexOf(needle, first + 1) >= 0) throw new Error(`console/index.html must contain ${what} exactly once`);
}

export async function buildConsole(): Promise<ConsoleBuild> {
  const common = { absWorkingDir: CONSOLE_DIR, bundle: true, minify: true, write: false, legalComments: 'none', charset: 'utf8', logLevel: 'silent' } as const;
  const [script, style, template] = await Promise.all([
    build({ ...common, entryPoints: ['src/main.ts'], format: 'esm', target: TARGET, tsconfig: 'src/tsconfig.json', platform: 'browser' }),
    build({ ...common, entryPoints: ['src/styles.css'], target: TARGET }),
    readFile(resolve(CONSOLE_DIR, 'index.html'), 'utf8'),
  ]);
  const js = script.outputFiles[0]?.text.trim();
  const css = style.outputFiles[0]?.text.trim();
  if (js === undefined || css === undefined) throw new Error('esbuild produced no output for the console');
  // esbuild escapes these in its output; an inlined script or style must never close its own element early.
  if (/<\/script/i.test(js) || /<\/style/i.test(css)) throw new Error('the console bundle contains a closing </script> or </style>');
  once(template, STYLE_MARK, STYLE_MARK);
  once(template, SCRIPT_MARK, SCRIPT_MARK);
  once(template, CONSOLE_WS_URL_PLACEHOLDER, CONSOLE_WS_URL_PLACEHOLDER);
  // Replacer functions: a `$` in the bundle must not be read as a replacement pattern.
  const html = template
    .replace(STYLE_MARK, () => `<style>${css}</style>`)
    .replace(SCRIPT_MARK, () => `<script type="module">${js}</script>`);
  const bytes = Buffer.byteLength(html);
  return { html, bytes, gzipBytes: gzipSync(html, { level: 9 }).length, scriptBytes: Buffer.byteLength(js), styleBytes: Buffer.byteLength(css) };
}

export async function writeConsole(file: string): Promise<ConsoleBuild> {
  const built = await buildConsole();
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, built.html);
  return built;
}

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

export function describeBuild(file: string, b: ConsoleBuild): string {
  return `console ${file}: ${kib(b.bytes)} raw, ${kib(b.gzipBytes)} gzipped (script ${kib(b.scriptBytes)}, styles ${kib(b.styleBytes)})`;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const out = resolve(values.out ?? resolve(CONSOLE_DIR, '../dist/console/console.html'));
  const built = await writeConsole(out);
  process.stdout.write(`${describeBuild(relative(process.cwd(), out), built)}\n`);
}
