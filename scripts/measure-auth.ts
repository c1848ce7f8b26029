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
import { signToken } from '../functions/core/auth.ts';
import { generateSecret } from '../local/auth-secret.ts';
import { percentile } from '../bench/stats.ts';
import { latencyPlan, latencyRows, measureConfigs, type RuntimeConfig } from './latency.ts';

const PLAN = latencyPlan({ registrations: 500, keepalives: 1000, warmup: 50 });

/** The three configurations; `secretFile` holds `secret`, which signs the tokens of the two with auth. */
function configs(secret: string, secretFile: string): RuntimeConfig[] {
  const token = async (cluster: string) => ({ authorization: `Bearer ${await signToken(secret, { cluster, role: 'node', ttlSeconds: 3600 })}` });
  return [
    { name: 'auth off', args: [] },
    { name: '--auth (cached)', args: ['--auth', '--auth-secret-file', secretFile], headers: token },
    { name: '--auth, cache off', args: ['--auth', '--auth-secret-file', secretFile, '--auth-cache-ttl', '0'], headers: token },
  ];
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
let results;
try {
  results = await measureConfigs(configs(secret, secretFile), PLAN);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const rows = latencyRows(results, ['register', 'keepalive'], 1);
const alone = await authorizerAlone(secret, 20_000);
process.stdout.write(
  `HTTP authorizer handler alone, in process (20,000 verifications of a valid token): p50 ${(percentile(alone, 50) * 1000).toFixed(0)} µs, ` +
    `p99 ${(percentile(alone, 99) * 1000).toFixed(0)} µs\n\n`,
);
process.stdout.write(
  `Local runtime, requests one at a time (${PLAN.rounds} rounds, ${PLAN.registrations} registrations and ${PLAN.keepalives} keepalives per round):\n\n` +
    '| configuration | request | n | p50 | p99 | overhead vs auth off |\n|---|---|---|---|---|---|\n' +
    `${rows.join('\n')}\n`,
);
