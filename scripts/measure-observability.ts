/**
 * What logging and metrics cost: keepalive (and register) latency in the
 * local runtime with telemetry off (`--no-metrics`, handlers log at WARN),
 * with metrics on (the default), and with metrics plus a JSON log line per
 * request (`--verbose`). Requests are sent one at a time over a kept-alive
 * connection after a warm-up, so the figures are per-request latency.
 *
 *   npx tsx scripts/measure-observability.ts [--registrations 300] [--keepalives 2000] [--rounds 2]
 *
 * Rounds interleave the configurations so a noisy neighbour does not land on
 * one of them only. Each runtime starts its own DynamoDB Local (Java 17+).
 */
import { parseArgs } from 'node:util';
import { timedFetch as timed } from '../bench/http.ts';
import { percentile } from '../bench/stats.ts';
import { spawnRuntime } from '../local/spawn.ts';

const { values } = parseArgs({
  options: {
    registrations: { type: 'string', default: '300' },
    keepalives: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '2' },
  },
});
const REGISTRATIONS = Number(values.registrations);
const KEEPALIVES = Number(values.keepalives);
const ROUNDS = Number(values.rounds);
const WARMUP = 100;

const CONFIGS = [
  { name: 'telemetry off (--no-metrics)', args: ['--no-metrics'] },
  { name: 'metrics on (default)', args: [] },
  { name: 'metrics + request logs (--verbose)', args: ['--verbose'] },
] as const;



async function measure(args: readonly string[], round: number): Promise<{ register: number[]; keepalive: number[] }> {
  const runtime = await spawnRuntime({ extraArgs: [...args] });
  try {
    const headers = { 'content-type': 'application/json' };
    const nodeUrl = (i: number) => `${runtime.httpUrl}/v1/clusters/measure-${round}/nodes/n${i}`;
    const body = JSON.stringify({ metadata: { zone: 'a' }, leaseSeconds: 3600 });
    for (let i = 0; i < WARMUP; i++) await timed(nodeUrl(-1 - i), { method: 'PUT', headers, body }, 201);
    const register: number[] = [];
    for (let i = 0; i < REGISTRATIONS; i++) register.push(await timed(nodeUrl(i), { method: 'PUT', headers, body }, 201));
    const keepalive: number[] = [];
    for (let i = 0; i < KEEPALIVES; i++) keepalive.push(await timed(`${nodeUrl(i % REGISTRATIONS)}/keepalive`, { method: 'POST', headers, body: '{}' }, 200));
    return { register, keepalive };
  } finally {
    await runtime.stop();
  }
}

const results = new Map<string, { register: number[]; keepalive: number[] }>(CONFIGS.map((c) => [c.name, { register: [], keepalive: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  for (const config of CONFIGS) {
    process.stderr.write(`round ${round + 1}/${ROUNDS}: ${config.name}\n`);
    const r = await measure(config.args, round);
    results.get(config.name)?.register.push(...r.register);
    results.get(config.name)?.keepalive.push(...r.keepalive);
  }
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const base = results.get(CONFIGS[0].name);
const rows: string[] = [];
for (const [name, r] of results) {
  for (const kind of ['keepalive', 'register'] as const) {
    const sorted = [...r[kind]].sort((a, b) => a - b);
    const baseSorted = [...(base?.[kind] ?? [])].sort((a, b) => a - b);
    const d50 = percentile(sorted, 50) - percentile(baseSorted, 50);
    const d99 = percentile(sorted, 99) - percentile(baseSorted, 99);
    const delta = name === CONFIGS[0].name ? '' : `${d50 >= 0 ? '+' : '−'}${fmt(Math.abs(d50))} p50, ${d99 >= 0 ? '+' : '−'}${fmt(Math.abs(d99))} p99`;
    rows.push(`| ${name} | ${kind} | ${sorted.length} | ${fmt(percentile(sorted, 50))} | ${fmt(percentile(sorted, 99))} | ${delta} |`);
  }
}
process.stdout.write(
  `Local runtime, requests one at a time (${ROUNDS} rounds):\n\n| configuration | request | n | p50 | p99 | vs telemetry off |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
