/**
 * What the handlers write to CloudWatch Logs on Lambda for the requests every
 * client makes at its own rhythm (functions/core/observe.ts `isRoutine`): a
 * successful keepalive, ping or unchanged list writes nothing of its own —
 * no request line at INFO, no metric document — and its counts reach
 * CloudWatch in the next document, at most a minute later or with the next
 * request that is not routine. Everything else is written as before. The
 * handlers run as on Lambda (EMF on stdout, Powertools' JSON lines) against
 * DynamoDB Local; the EMF sink's clock is the test's.
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { EmfSink, METRICS_NAMESPACE, ROUTINE_PUBLISH_EVERY_MS } from '../../functions/core/metrics.ts';
import { isRoutine } from '../../functions/core/observe.ts';
import { Scope } from '../../functions/core/scope.ts';
import { invokeHttp, wsMessage } from '../support/events.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
beforeAll(async () => {
  table = await createTestTable();
});

interface Written {
  lines: Record<string, unknown>[];
  /** The EMF documents among them, each as `{ metric: value, …labels }` with its dimension sets. */
  metrics: { values: Record<string, unknown>; dimensions: string[][] }[];
  /** The request lines among them. */
  requests: Record<string, unknown>[];
}

/** Runs `fn` in a scope as on Lambda and returns what it wrote to stdout. */
function onLambda(sink: EmfSink) {
  let scope: Scope | undefined;
  afterAll(() => scope?.dispose());
  return async <T>(fn: () => Promise<T>): Promise<{ result: T; written: Written }> => {
    scope ??= new Scope({
      env: { AWS_LAMBDA_FUNCTION_NAME: 'Roster-HttpApiKeepaliveHandler', TABLE_NAME: table.tableName, DYNAMODB_ENDPOINT: table.endpoint, ROSTER_AUTH: 'off', POWERTOOLS_LOG_LEVEL: 'INFO' },
      metrics: sink,
    });
    const current = scope;
    const chunks: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk));
      return true;
    });
    let result: T;
    try {
      result = await current.run(fn);
    } finally {
      stdout.mockRestore();
    }
    const lines = chunks
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const metrics = lines
      .filter((l) => '_aws' in l)
      .map((l) => {
        const { _aws, ...values } = l as { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] } };
        expect(_aws.CloudWatchMetrics.every((d) => d.Namespace === METRICS_NAMESPACE)).toBe(true);
        return { values, dimensions: _aws.CloudWatchMetrics.flatMap((d) => d.Dimensions) };
      });
    return { result, written: { lines, metrics, requests: lines.filter((l) => l.message === 'request') } };
  };
}

const node = (c: string, n: string) => `/v1/clusters/${c}/nodes/${n}`;

describe('which successes are routine', () => {
  test('a keepalive or ping answered 200 and any 304; not a registration, a full list, a $connect or any refusal', () => {
    const keepalive = 'POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive';
    expect(isRoutine(keepalive, 200)).toBe(true);
    expect(isRoutine('ping', 200)).toBe(true);
    expect(isRoutine('GET /v1/clusters/{clusterId}/nodes', 304)).toBe(true);
    expect(isRoutine('GET /v1/clusters/{clusterId}/nodes', 200)).toBe(false);
    expect(isRoutine('PUT /v1/clusters/{clusterId}/nodes/{nodeId}', 200)).toBe(false);
    expect(isRoutine('$connect', 200)).toBe(false);
    expect(isRoutine(keepalive, 404)).toBe(false);
    expect(isRoutine(keepalive, 409)).toBe(false);
    expect(isRoutine('ping', 500)).toBe(false);
  });
});

describe('on Lambda', () => {
  let now = 1_000_000;
  const run = onLambda(new EmfSink(() => now));
  const c = `routine-${Date.now()}`;

  test('a registration writes its line and its metrics at once', async () => {
    const { result, written } = await run(() => invokeHttp({ method: 'PUT', path: node(c, 'n1'), body: {} }));
    expect(result.status).toBe(201);
    expect(written.requests).toHaveLength(1);
    expect(written.requests[0]).toMatchObject({ level: 'INFO', status: 201, outcome: 'OK' });
    expect(written.metrics.map((m) => m.values)).toContainEqual(expect.objectContaining({ Requests: 1, status: '2xx' }));
  });

  test('successful keepalives, pings and unchanged lists write nothing of their own', async () => {
    const { result: list } = await run(() => invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes` }));
    const etag = list.headers.etag as string;
    now += 1_000;
    for (let i = 0; i < 3; i++) {
      const { result, written } = await run(() => invokeHttp({ method: 'POST', path: `${node(c, 'n1')}/keepalive`, body: {} }));
      expect(result.status).toBe(200);
      expect(written.lines).toEqual([]);
    }
    const unchanged = await run(() => invokeHttp({ method: 'GET', path: `/v1/clusters/${c}/nodes`, headers: { 'if-none-match': etag } }));
    expect(unchanged.result.status).toBe(304);
    expect(unchanged.written.lines).toEqual([]);
    const ping = await run(() => wsMessage('conn-routine', JSON.stringify({ action: 'ping' })));
    expect(ping.result.statusCode).toBe(200);
    expect(ping.written.lines).toEqual([]);
  });

  test('a minute after the last document, the next routine request writes what was held: the sums', async () => {
    now += ROUTINE_PUBLISH_EVERY_MS;
    const { written } = await run(() => invokeHttp({ method: 'POST', path: `${node(c, 'n1')}/keepalive`, body: {} }));
    expect(written.requests).toEqual([]);
    const values = written.metrics.map((m) => m.values);
    // Four keepalives; 2xx: four keepalives and a ping (the full list was no routine request: written at once); 304: one.
    expect(values).toContainEqual(expect.objectContaining({ Keepalives: 4 }));
    expect(values).toContainEqual(expect.objectContaining({ Requests: 5, status: '2xx' }));
    expect(values).toContainEqual(expect.objectContaining({ Requests: 1, status: '3xx' }));
    // Routine requests leave their latency to API Gateway's IntegrationLatency.
    expect(values.filter((v) => 'RequestLatency' in v)).toEqual([]);
    // Each labelled series with its own dimension set, as before.
    expect(written.metrics.find((m) => m.values.status === '3xx')?.dimensions).toEqual([['service', 'status']]);
  });

  test('a refused keepalive writes its line and every count held so far at once', async () => {
    now += 1_000;
    await run(() => invokeHttp({ method: 'POST', path: `${node(c, 'n1')}/keepalive`, body: {} }));
    const { result, written } = await run(() => invokeHttp({ method: 'POST', path: `${node(c, 'ghost')}/keepalive`, body: {} }));
    expect(result.status).toBe(404);
    expect(written.requests).toHaveLength(1);
    expect(written.requests[0]).toMatchObject({ level: 'INFO', status: 404, outcome: 'NODE_NOT_FOUND' });
    const values = written.metrics.map((m) => m.values);
    expect(values).toContainEqual(expect.objectContaining({ Keepalives: 1 }));
    expect(values).toContainEqual(expect.objectContaining({ Requests: 1, status: '2xx' }));
    expect(values).toContainEqual(expect.objectContaining({ Requests: 1, status: '4xx' }));
    expect(values).toContainEqual(expect.objectContaining({ KeepaliveFailures: 1, code: 'NODE_NOT_FOUND' }));
  });
});
