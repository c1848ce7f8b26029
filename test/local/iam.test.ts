/**
 * Least privilege, derived from running the functions, not from a list kept
 * by hand: a local runtime with auth on runs every function of the template
 * (every HTTP and WebSocket route, both authorizers, the fan-out with its
 * page function, the sweeper), and records each AWS call a function makes
 * with IAM's decision for it (`iamLogFile`, one JSON line per distinct call).
 * Every call any function made must be allowed by its own role as the
 * template states it, and every function must have been seen making its calls.
 *
 * Before issue 21 the sweeper's role allowed `dynamodb:Query` only on the
 * expiry index while the sweeper queries the base table: this test fails on
 * that grant (the sweeper's base-table Query is recorded as refused).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import WebSocket from 'ws';
import { localRegion } from '../../functions/core/aws.ts';
import type { IamRecord } from '../../local/iam/gate.ts';
import { silentLog } from '../../local/log.ts';
import { startRuntime, type Runtime } from '../../local/runtime.ts';
import { readDeployment } from '../../local/template/deployment.ts';
import { loadTemplate } from '../../local/template/source.ts';
import { eventually } from '../support/wait.ts';

/** More subscribers than one page (functions/core/fanout-sizing.ts PAGE_SIZE), so the fan-out hands pages to the page function. */
const WATCHERS = 520;

let dir: string;
let runtime: Runtime;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'roster-iam-'));
  runtime = await startRuntime({
    port: 0,
    dynamodbEndpoint: inject('dynamodbEndpoint'),
    tableName: `roster-iam-${randomUUID().slice(0, 8)}`,
    log: silentLog,
    auth: true,
    sweepIntervalSeconds: 0.5,
    disconnectGraceSeconds: 1,
    iamLogFile: join(dir, 'iam.jsonl'),
  });
});

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  await runtime?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${runtime.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${runtime.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

function open(query: string): Promise<{ ws: WebSocket; messages: string[] }> {
  const ws = new WebSocket(`${runtime.wsUrl}?${query}&token=${runtime.adminToken}`);
  sockets.push(ws);
  const messages: string[] = [];
  ws.on('message', (d) => messages.push(d.toString()));
  return new Promise((resolve, reject) => ws.once('open', () => resolve({ ws, messages })).once('error', reject));
}

/** Every function of the template at work: each route, both authorizers, the fan-out and its pages, the sweeper. */
async function exercise(): Promise<void> {
  const c = `c-${randomUUID().slice(0, 8)}`;
  const watchers: { ws: WebSocket; messages: string[] }[] = [];
  for (let i = 0; i < WATCHERS; i += 40) watchers.push(...(await Promise.all(Array.from({ length: Math.min(40, WATCHERS - i) }, () => open(`clusterId=${c}`)))));
  expect(await call('PUT', `/v1/clusters/${c}/nodes/bound`, { leaseSeconds: 60 })).toBe(201);
  const bound = await open(`clusterId=${c}&nodeId=bound`);
  bound.ws.send(JSON.stringify({ action: 'subscribe', clusterId: `${c}-other` }));
  bound.ws.send(JSON.stringify({ action: 'unsubscribe', clusterId: `${c}-other` }));
  bound.ws.send(JSON.stringify({ action: 'ping' }));
  bound.ws.send(JSON.stringify({ action: 'no-such-action' }));
  await eventually(() => bound.messages.length >= 4, 20_000, 'answers to subscribe, unsubscribe, ping and the unknown action');
  // A node with a short lease that nobody keeps alive: the sweeper declares it down.
  expect(await call('PUT', `/v1/clusters/${c}/nodes/short`, { leaseSeconds: 2 })).toBe(201);
  expect(await call('POST', `/v1/clusters/${c}/nodes/short/keepalive`, {})).toBe(200);
  for (const path of [`/v1/clusters/${c}/nodes/short`, `/v1/clusters/${c}/nodes`, `/v1/clusters/${c}/nodes?status=all`, '/v1/clusters', '/v1/health', '/v1/openapi.json', '/']) {
    expect(await call('GET', path), path).toBe(200);
  }
  expect(await call('GET', '/v1/no-such-route')).toBe(404);
  // A cluster of one watcher: one page, which the fan-out posts itself.
  const small = await open(`clusterId=${c}-small`);
  expect(await call('PUT', `/v1/clusters/${c}-small/nodes/one`, {})).toBe(201);
  await eventually(() => small.messages.some((m) => m.includes('"NODE_REGISTERED"')), 20_000, 'the small cluster\'s watcher got its event');
  // Every watcher gets the registrations (pages of the fan-out) and the sweeper's NODE_DOWN.
  await eventually(() => watchers.every((w) => w.messages.some((m) => m.includes('"NODE_DOWN"') && m.includes('"short"'))), 60_000, 'NODE_DOWN of short at every watcher');
  bound.ws.close();
  expect(await call('DELETE', `/v1/clusters/${c}/nodes/bound`)).toBe(204);
}

test('every AWS call every function makes is allowed by its own role in the template, and every function made its calls', { timeout: 180_000 }, async () => {
  await exercise();
  const { template } = await loadTemplate({});
  const deployment = readDeployment(template, { region: localRegion(), account: '000000000000', stackName: 'Roster', partition: 'aws' }, runtime.tableName);
  const records = await eventually(
    async () => {
      const lines = (await readFile(join(dir, 'iam.jsonl'), 'utf8')).trim().split('\n');
      const parsed = lines.map((line) => JSON.parse(line) as IamRecord);
      // The $disconnect of the bound connection is the last call: wait for it.
      const disconnect = [...deployment.functions.values()].find((f) => f.entry === 'functions/ws/disconnect.ts')?.logicalId;
      return parsed.some((r) => r.function === disconnect) && parsed;
    },
    20_000,
    '$disconnect in the IAM log',
  );
  // Nothing refused: a function whose role lacks a grant it uses fails here, with the call named.
  expect(records.filter((r) => !r.allowed)).toEqual([]);
  const made = (fn: string, prefix: string) => records.some((r) => r.function === fn && r.action.startsWith(prefix));
  for (const fn of deployment.functions.values()) {
    // Each function that is told about a resource used it: the table, the secret, the page function, the connections.
    if (fn.environment.TABLE_NAME && fn.entry !== 'functions/stream/fanout-page.ts') expect(made(fn.logicalId, 'dynamodb:'), `${fn.entry} made DynamoDB calls`).toBe(true);
    if (fn.environment.TOKEN_SECRET_ARN) expect(made(fn.logicalId, 'secretsmanager:GetSecretValue'), `${fn.entry} read the token secret`).toBe(true);
    if (fn.environment.FANOUT_PAGE_FUNCTION) expect(made(fn.logicalId, 'lambda:InvokeFunction'), `${fn.entry} invoked the page function`).toBe(true);
    if (fn.environment.WEBSOCKET_CALLBACK_URL) expect(made(fn.logicalId, 'execute-api:ManageConnections'), `${fn.entry} posted to connections`).toBe(true);
  }
  // The sweeper reads clusters and nodes from the base table as well as the expiry index.
  const sweeper = deployment.schedule.functionId;
  expect(records).toContainEqual({ function: sweeper, action: 'dynamodb:Query', resource: deployment.table.arn, allowed: true });
});
