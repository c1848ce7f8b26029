/**
 * How long `npm start` takes to be ready (its two URL lines), with the stack's
 * template already in the cache and with the template synthesized for this
 * start (the cache file removed first: what the first start after a change of
 * infra/, functions/ or contract/ pays). Each start runs DynamoDB Local too,
 * as `npm start` does.
 *
 *   npx tsx scripts/measure-start.ts [--rounds 3]
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, templateKey } from '../local/template/source.ts';
import { spawnRuntime } from '../local/spawn.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
const rounds = Number(values.rounds);
const cacheFile = path.join(REPO_ROOT, 'node_modules', '.cache', 'roster', 'templates', `${templateKey({})}.json`);

async function readyMs(cold: boolean): Promise<number> {
  if (cold) await rm(cacheFile, { force: true });
  const runtime = await spawnRuntime({ readyTimeoutMs: 120_000 });
  await runtime.stop();
  return runtime.readyMs;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const results = { cached: [] as number[], synthesized: [] as number[] };
// Interleaved, so a change in the machine's load falls on both.
for (let i = 0; i < rounds; i++) {
  results.synthesized.push(await readyMs(true));
  results.cached.push(await readyMs(false));
}
for (const [name, xs] of Object.entries(results)) {
  process.stdout.write(`${name.padEnd(12)} ready in ${xs.map((x) => `${Math.round(x)} ms`).join(', ')} (median ${Math.round(median(xs))} ms)\n`);
}
