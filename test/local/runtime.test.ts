/**
 * `startRuntime` in process (as `roster serve` and embedders use it), against
 * the shared DynamoDB Local: the handler configuration it sets, the
 * `@connections` endpoint living only on its own loopback port, one runtime
 * per process, and a clean stop.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, inject, test } from 'vitest';
import WebSocket from 'ws';
import { silentLog } from '../../local/log.ts';
import { RuntimeStartError, startRuntime, type Runtime } from '../../local/runtime.ts';

let runtime: Runtime;
const tableName = `roster-inproc-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  runtime = await startRuntime({ port: 0, dynamodbEndpoint: inject('dynamodbEndpoint'), tableName, log: silentLog, sweepIntervalSeconds: 0.5 });
});

afterAll(async () => {
  await runtime?.stop();
});

test('the handlers are configured through process.env before their first use', () => {
  expect(process.env).toMatchObject({
    TABLE_NAME: tableName,
    DYNAMODB_ENDPOINT: inject('dynamodbEndpoint'),
    WEBSOCKET_CALLBACK_URL: runtime.callbackUrl,
    SWEEP_INTERVAL_SECONDS: '0.5',
    DISCONNECT_GRACE_SECONDS: '2',
    DEFAULT_LEASE_SECONDS: '15',
    SWEEP_LOOP_SECONDS: '0',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  });
  expect(runtime.httpUrl).toBe(`http://127.0.0.1:${runtime.port}`);
  expect(runtime.wsUrl).toBe(`ws://127.0.0.1:${runtime.port}/ws`);
  expect(runtime.callbackUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  expect(runtime.callbackUrl).not.toBe(runtime.httpUrl);
});

test('the sweeper runs on its timer (health shows a recent sweep)', async () => {
  const deadline = Date.now() + 10_000;
  let lag: number | undefined;
  while (Date.now() < deadline) {
    const health = (await (await fetch(`${runtime.httpUrl}/v1/health`)).json()) as { sweeper: { lagSeconds?: number } };
    lag = health.sweeper.lagSeconds;
    if (lag !== undefined) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(lag).toBeDefined();
  expect(lag).toBeLessThan(5);
});

test('the public port does not serve @connections; the callback port does', async () => {
  const ws = new WebSocket(`${runtime.wsUrl}?clusterId=c1`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const onPublic = await fetch(`${runtime.httpUrl}/@connections/AAAAAAAAAAAAAAA=`, { method: 'POST', body: 'x' });
  expect(onPublic.status).toBe(404);
  expect(((await onPublic.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  const unknown = await fetch(`${runtime.callbackUrl}/@connections/AAAAAAAAAAAAAAA=`, { method: 'POST', body: 'x' });
  expect(unknown.status).toBe(410);
  expect(unknown.headers.get('x-amzn-errortype')).toBe('GoneException');
  ws.terminate();
});

test('a process runs one runtime: a second start is refused with a clear error', async () => {
  await expect(startRuntime({ port: 0, dynamodbEndpoint: inject('dynamodbEndpoint') })).rejects.toBeInstanceOf(RuntimeStartError);
});

test('stop() closes the port and is idempotent', async () => {
  const { httpUrl } = runtime;
  await Promise.all([runtime.stop(), runtime.stop()]);
  await expect(fetch(`${httpUrl}/v1/health`)).rejects.toThrow();
});
