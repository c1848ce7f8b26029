/**
 * Builds the API reference from the contract documents, so that it is never written twice:
 *
 *   npm run docs                          # writes docs/reference/http-api.html and websocket-api.html
 *   npx tsx scripts/build-api-reference.ts --out-dir DIR   # the same pages into DIR (test/docs-reference.test.ts)
 *
 * The generator is Redocly CLI's `build-docs` (@redocly/cli, a devDependency): one maintained tool
 * that renders both OpenAPI 3.1 (contract/openapi.json) and AsyncAPI 3 (contract/asyncapi.json,
 * whose shared schemas are references into openapi.json) with Redoc. `--inlineBundle` puts Redoc's
 * script into each page, so a page opened from disk works offline and loads nothing from a CDN
 * (the one exception is Redocly's logo, an image, which simply does not show offline); telemetry
 * is off (scripts/redocly.yaml for the page, REDOCLY_TELEMETRY for the CLI). The output is
 * byte-for-byte the same for the same documents, which is what lets a test compare it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The pages of the reference: the document each is built from, and its file name. */
export const REFERENCE_PAGES = [
  { source: 'contract/openapi.json', page: 'http-api.html', title: 'Roster HTTP API (v1) — reference' },
  { source: 'contract/asyncapi.json', page: 'websocket-api.html', title: 'Roster WebSocket API (v1) — reference' },
] as const;

export const REFERENCE_DIR = path.join(ROOT, 'docs', 'reference');

function redoclyBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@redocly/cli/package.json')), 'bin', 'cli.js');
}

/** Builds every page into `outDir`; throws with the generator's own output when a build fails. */
export function buildApiReference(outDir: string): string[] {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const { source, page, title } of REFERENCE_PAGES) {
    const output = path.join(outDir, page);
    const args = [redoclyBin(), 'build-docs', source, '--output', output, '--title', title, '--inlineBundle', '--config', 'scripts/redocly.yaml', '--lint-config', 'off'];
    const result = spawnSync(process.execPath, args, {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
      timeout: 120_000,
    });
    if (result.status !== 0) throw new Error(`build-docs ${source} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}${result.stderr}`);
    written.push(output);
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } } });
  for (const file of buildApiReference(values['out-dir'] ? path.resolve(values['out-dir']) : REFERENCE_DIR)) {
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
