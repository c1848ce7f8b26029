/**
 * What the latency scripts (measure-auth.ts, measure-observability.ts) share:
 * runtimes started with different flags, each sent registrations and
 * keepalives one at a time after a warm-up, in rounds that interleave the
 * configurations (so a noisy neighbour does not land on one of them only),
 * and a table of p50/p99 against the first configuration.
 */
import { parseArgs } from 'node:util';
import { percentile } from '../bench/stats.ts';
import { spawnRuntime } from '../local/spawn.ts';

/** One request, timed from send to the last byte of the answer; throws unless the status is `expect`. */
async function timed(url: string, init: RequestInit, expect: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, init);
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== expect) throw new Error(`${init.method} ${url}: HTTP ${res.status}, expected ${expect}`);
  return ms;
}

export interface LatencyPlan {
  registrations: number;
  keepalives: number;
  rounds: number;
  /** Registrations sent before the measured ones, to warm the runtime up. */
  warmup: number;
}

/** The plan from `--registrations`, `--keepalives` and `--rounds` (defaults given), and the warm-up. */
export function latencyPlan(defaults: { registrations: number; keepalives: number; warmup: number }): LatencyPlan {
  const { values } = parseArgs({
    options: {
      registrations: { type: 'string', default: String(defaults.registrations) },
      keepalives: { type: 'string', default: String(defaults.keepalives) },
      rounds: { type: 'string', default: '2' },
    },
  });
  return { registrations: Number(values.registrations), keepalives: Number(values.keepalives), rounds: Number(values.rounds), warmup: defaults.warmup };
}

export interface RuntimeConfig {
  name: string;
  /** Flags of `roster serve`. */
  args: readonly string[];
  /** Headers besides the content type, e.g. a bearer token for `cluster`. @default none */
  headers?: (cluster: string) => Promise<Record<string, string>>;
}

export interface Latencies {
  register: number[];
  keepalive: number[];
}

async function measure(config: RuntimeConfig, plan: LatencyPlan, round: number): Promise<Latencies> {
  const runtime = await spawnRuntime({ extraArgs: [...config.args] });
  try {
    const cluster = `measure-${round}`;
    const headers = { 'content-type': 'application/json', ...(await config.headers?.(cluster)) };
    const nodeUrl = (i: number) => `${runtime.httpUrl}/v1/clusters/${cluster}/nodes/n${i}`;
    const body = JSON.stringify({ metadata: { zone: 'a' }, leaseSeconds: 3600 });
    for (let i = 0; i < plan.warmup; i++) await timed(nodeUrl(-1 - i), { method: 'PUT', headers, body }, 201);
    const register: number[] = [];
    for (let i = 0; i < plan.registrations; i++) register.push(await timed(nodeUrl(i), { method: 'PUT', headers, body }, 201));
    const keepalive: number[] = [];
    for (let i = 0; i < plan.keepalives; i++) {
      keepalive.push(await timed(`${nodeUrl(i % plan.registrations)}/keepalive`, { method: 'POST', headers, body: '{}' }, 200));
    }
    return { register, keepalive };
  } finally {
    await runtime.stop();
  }
}

/** Every configuration's latencies over all rounds, by name, in the order of `configs`. */
export async function measureConfigs(configs: readonly RuntimeConfig[], plan: LatencyPlan): Promise<Map<string, Latencies>> {
  const results = new Map<string, Latencies>(configs.map((c) => [c.name, { register: [], keepalive: [] }]));
  for (let round = 0; round < plan.rounds; round++) {
    for (const config of configs) {
      process.stderr.write(`round ${round + 1}/${plan.rounds}: ${config.name}\n`);
      const r = await measure(config, plan, round);
      results.get(config.name)?.register.push(...r.register);
      results.get(config.name)?.keepalive.push(...r.keepalive);
    }
  }
  return results;
}

/** Markdown rows `| configuration | request | n | p50 | p99 | difference to the first configuration |`. */
export function latencyRows(results: Map<string, Latencies>, kinds: readonly (keyof Latencies)[], decimals: number): string[] {
  const fmt = (ms: number) => `${ms.toFixed(decimals)} ms`;
  const signed = (ms: number) => `${ms >= 0 ? '+' : '−'}${fmt(Math.abs(ms))}`;
  const [baseName, base] = [...results][0] ?? [];
  const rows: string[] = [];
  for (const [name, r] of results) {
    for (const kind of kinds) {
      const sorted = [...r[kind]].sort((a, b) => a - b);
      const baseSorted = [...(base?.[kind] ?? [])].sort((a, b) => a - b);
      const p50 = percentile(sorted, 50);
      const p99 = percentile(sorted, 99);
      const delta = name === baseName ? '' : `${signed(p50 - percentile(baseSorted, 50))} p50, ${signed(p99 - percentile(baseSorted, 99))} p99`;
      rows.push(`| ${name} | ${kind} | ${sorted.length} | ${fmt(p50)} | ${fmt(p99)} | ${delta} |`);
    }
  }
  return rows;
}
