// Bundles the client SDK (client/index.ts) into dist/client/index.js with
// esbuild and prints its size, raw and gzipped. `ws` stays external: it is the
// SDK's one dependency, installed next to it. `npm run build` runs this.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { stdout } from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('../', import.meta.url));
const outfile = 'dist/client/index.js';

await build({
  absWorkingDir: root,
  entryPoints: ['client/index.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['ws'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const code = await readFile(new URL(`../${outfile}`, import.meta.url));
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
stdout.write(`client bundle ${outfile}: ${kib(code.length)} raw, ${kib(gzipSync(code).length)} gzipped (ws external)\n`);
