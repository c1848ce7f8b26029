/**
 * `roster serve` and auth: the banner when auth is off; with `--auth
 * --data-dir DIR` the secret is kept in DIR/auth-secret (owner-only), the
 * printed admin token works, tokens from `roster token create --data-dir DIR`
 * work, and they keep working after a restart with the same directory.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, inject, test } from 'vitest';
import { parseServeArgs } from '../../local/main.ts';
import { runCli } from '../support/processes.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { call } from './support.ts';
import { eventually } from '../support/wait.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'roster-serve-auth-'));
const running = new Set<SpawnedRuntime>();
afterAll(async () => {
  await Promise.all([...running].map((r) => r.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function start(options: Parameters<typeof spawnRuntime>[0]): Promise<SpawnedRuntime> {
  const runtime = await spawnRuntime(options);
  running.add(runtime);
  return runtime;
}

async function stop(runtime: SpawnedRuntime): Promise<void> {
  expect(await runtime.stop()).toBe(0);
  running.delete(runtime);
}

async function tokenCreate(args: string[]): Promise<string> {
  const { code, stdout, stderr } = await runCli(['token', 'create', ...args]);
  if (code !== 0) throw new Error(`roster token create exited ${code}: ${stderr}`);
  return stdout.trim();
}

test('without --auth a line on stderr says auth is off, and requests need no token', async () => {
  const runtime = await start({ dynamodbEndpoint: inject('dynamodbEndpoint') });
  // The banner follows the ready lines.
  await eventually(() => runtime.output().includes('auth is OFF'), 5000, 'the auth-is-off banner');
  expect(runtime.output()).toMatch(/^roster serve: auth is OFF: anything that can reach 127\.0\.0\.1:\d+ may register/m);
  expect(runtime.output()).not.toMatch(/Admin token/);
  expect((await call(runtime.httpUrl, 'PUT', '/v1/clusters/open/nodes/n1', { body: {} })).status).toBe(201);
  await stop(runtime);
});

test('--auth --data-dir keeps the secret in DIR/auth-secret; printed and CLI-made tokens work, and survive a restart', async () => {
  const dataDir = path.join(dir, 'data');
  const first = await start({ dataDir, extraArgs: ['--auth'] });
  const admin = /^Admin token (\S+)$/m.exec(first.output())?.[1];
  expect(admin).toBeDefined();
  expect(statSync(path.join(dataDir, 'auth-secret')).mode & 0o777).toBe(0o600);
  expect(first.output()).not.toMatch(/auth is OFF/);

  expect((await call(first.httpUrl, 'GET', '/v1/clusters', { token: admin })).status).toBe(200);
  expect((await call(first.httpUrl, 'GET', '/v1/clusters')).status).toBe(401);
  const node = await tokenCreate(['--data-dir', dataDir, '--cluster', 'kept', '--role', 'node']);
  expect((await call(first.httpUrl, 'PUT', '/v1/clusters/kept/nodes/n1', { token: node, body: { leaseSeconds: 3600 } })).status).toBe(201);
  expect((await call(first.httpUrl, 'PUT', '/v1/clusters/other/nodes/n1', { token: node, body: {} })).status).toBe(403);
  await stop(first);

  // Same directory: same secret, so the token made before still works (and the node is still there).
  const second = await start({ dataDir, extraArgs: ['--auth'] });
  const got = await call(second.httpUrl, 'GET', '/v1/clusters/kept/nodes/n1', { token: node });
  expect(got.status).toBe(200);
  expect(got.body).toMatchObject({ node: { status: 'UP' } });
  await stop(second);
}, 120_000);

test('the auth flags: --auth-secret-file and --auth-cache-ttl need --auth; the cache TTL is 0..3600', () => {
  expect(parseServeArgs(['--auth', '--auth-cache-ttl', '0', '--auth-secret-file', 'f'])).toMatchObject({ auth: true, authCacheTtlSeconds: 0, authSecretFile: 'f' });
  expect(parseServeArgs([])).toMatchObject({ auth: false });
  expect(() => parseServeArgs(['--auth-cache-ttl', '5'])).toThrow(/go with --auth/);
  expect(() => parseServeArgs(['--auth-secret-file', 'f'])).toThrow(/go with --auth/);
  expect(() => parseServeArgs(['--auth', '--auth-cache-ttl', '3601'])).toThrow(/--auth-cache-ttl must be a whole number from 0 to 3600/);
});
