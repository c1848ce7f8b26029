/**
 * What the authorizers cost: register and keepalive latency in the local
 * runtime without auth, with `--auth` (the default: results cached per token
 * for 5 minutes, as on AWS), and with `--auth --auth-cache-ttl 0` (the
 * authorizer verifies every request). Requests are sent one at a time from
 * this process over a kept-alive connection, after a warm-up, so the figures
 * are per-request latency, not throughput.
 *
 *   npx tsx scripts/measure-auth.ts [--registrations 500] [--keepalives 1000] [--rounds 2]
 *
 * Rounds interleave the three configurations so that a noisy neighbour on
 * the machine does not land on one of them only. Each runtime starts its own
 * DynamoDB Local (Java 17+).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { signToken } from '../functions/core/auth.ts';
import { generateSecret } from '../local/auth-secret.ts';
import { timedFetch as timed } from '../bench/http.ts';
import { percentile } from '../bench/stats.ts';
import { spawnRuntime } from '../local/spawn.ts';

const { values } = parseArgs({
  options: {
    registrations: { type: 'string', default: '500' },
    keepalives: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
  },
});
const REGISTRATIONS = Number(values.registrations);
const KEEPALIVES = Number(values.keepalives);
const ROUNDS = Number(values.rounds);
const WARMUP = 50;

interface Config {
  name: string;
  args: (secretFile: string) => string[];
  auth: boolean;
}

const CONFIGS: Config[] = [
  { name: 'auth off', args: () => [], auth: false },
  { name: '--auth (cached)', args: (f) => ['--auth', '--auth-secret-file', f], auth: true },
  { name: '--auth, cache off', args: (f) => ['--auth', '--auth-secret-file', f, '--auth-cache-ttl', '0'], auth: true },
];



async function measure(config: Config, secret: string, secretFile: string, round: number): Promise<{ register: number[]; keepalive: number[] }> {
  const runtime = await spawnRuntime({ extraArgs: config.args(secretFile) });
  try {
    const cluster = `measure-${round}`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (config.auth) headers.authorization = `Bearer ${await signToken(secret, { cluster, role: 'node', ttlSeconds: 3600 })}`;
    const nodeUrl = (i: number) => `${runtime.httpUrl}/v1/clusters/${cluster}/nodes/n${i}`;
    const body = JSON.stringify({ metadata: { zone: 'a' }, leaseSeconds: 3600 });

    for (let i = 0; i < WARMUP; i++) await timed(nodeUrl(-1 - i), { method: 'PUT', headers, body }, 201);
    const register: number[] = [];
    for (let i = 0; i < REGISTRATIONS; i++) register.push(await timed(nodeUrl(i), { method: 'PUT', headers, body }, 201));
    const keepalive: number[] = [];
    for (let i = 0; i < KEEPALIVES; i++) {
      keepalive.push(await timed(`${nodeUrl(i % REGISTRATIONS)}/keepalive`, { method: 'POST', headers, body: '{}' }, 200));
    }
    return { register, keepalive };
  } finally {
    await runtime.stop();
  }
}

/**
 * The authorizer's own work, in this process: the HTTP authorizer handler
 * verifying a valid token (an HS256 HMAC and the claim checks), i.e. what an
 * authorizer invocation costs besides Lambda's own overhead, and what a cache
 * miss adds locally.
 */
async function authorizerAlone(secret: string, calls: number): Promise<number[]> {
  const { Scope } = await import('../functions/core/scope.ts');
  const { handler: authorizer } = await import('../functions/auth/http-authorizer.ts');
  // As the local runtime runs it: in a scope holding the secret.
  const handler = new Scope({ env: {}, tokenSecret: secret }).bind(authorizer);
  const token = await signToken(secret, { cluster: 'c1', role: 'node', ttlSeconds: 3600 });
  const event = { headers: { authorization: `Bearer ${token}` }, identitySource: [`Bearer ${token}`], routeKey: 'PUT /v1/clusters/{clusterId}/nodes/{nodeId}' };
  const times: number[] = [];
  for (let i = 0; i < calls + 500; i++) {
    const t0 = performance.now();
    const result = await handler(event as unknown as Parameters<typeof handler>[0]);
    const ms = performance.now() - t0;
    if (!result.isAuthorized || 'denied' in result.context) throw new Error('the authorizer refused a valid token');
    if (i >= 500) times.push(ms);
  }
  return times.sort((a, b) => a - b);
}

const dir = mkdtempSync(path.join(tmpdir(), 'roster-measure-auth-'));
const secretFile = path.join(dir, 'secret');
const secret = generateSecret();
writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
const results = new Map<string, { register: number[]; keepalive: number[] }>(CONFIGS.map((c) => [c.name, { register: [], keepalive: [] }]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const config of CONFIGS) {
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${config.name}\n`);
      const r = await measure(config, secret, secretFile, round);
      const into = results.get(config.name);
      into?.register.push(...r.register);
      into?.keepalive.push(...r.keepalive);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const signed = (ms: number) => `${ms >= 0 ? '+' : '−'}${fmt(Math.abs(ms))}`;
const rows: string[] = [];
const base = results.get('auth off');
for (const [name, r] of results) {
  for (const kind of ['register', 'keepalive'] as const) {
    const sorted = [...r[kind]].sort((a, b) => a - b);
    const baseSorted = [...(base?.[kind] ?? [])].sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const delta = name === 'auth off' ? '' : `${signed(p50 - percentile(baseSorted, 50))} p50, ${signed(p99 - percentile(baseSorted, 99))} p99`;
    rows.push(`| ${name} | ${kind} | ${sorted.length} | ${fmt(p50)} | ${fmt(p99)} | ${delta} |`);
  }
}
const alone = await authorizerAlone(secret, 20_000);
process.stdout.write(
  `HTTP authorizer handler alone, in process (20,000 verifications of a valid token): p50 ${(percentile(alone, 50) * 1000).toFixed(0)} µs, ` +
    `p99 ${(percentile(alone, 99) * 1000).toFixed(0)} µs\n\n`,
);
process.stdout.write(
  `Local runtime, requests one at a time (${ROUNDS} rounds, ${REGISTRATIONS} registrations and ${KEEPALIVES} keepalives per round):\n\n` +
    '| configuration | request | n | p50 | p99 | overhead vs auth off |\n|---|---|---|---|---|---|\n' +
    `${rows.join('\n')}\n`,
);
