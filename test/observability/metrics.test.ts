/**
 * The counters an operator relies on move by exactly what happened. Part one
 * drives a real local runtime (with --auth) through register, keepalive, a
 * refused keepalive, expiry, a 410 clean-up and auth denials, reading
 * `GET /metrics` before and after. Part two produces a fan-out failure end to
 * end (the @connections endpoint fails a post) and reads the same Prometheus
 * registry the runtime serves. Part three runs a WebSocket handler as on
 * Lambda, whose DynamoDB call fails, and reads the embedded-metric-format
 * document it writes: the series the WebSocket 5xx alarm watches.
 */
import { randomUUID } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createDocumentClient, createManagementClient } from '../../functions/core/aws.ts';
import { connect } from '../../functions/core/subscriptions.ts';
import { posterFor } from '../../functions/core/poster.ts';
import { fanOut } from '../../functions/core/fanout.ts';
import { METRICS_NAMESPACE, METRICS_SERVICE_DIMENSION, requestLabels, REQUESTS_METRIC } from '../../functions/core/metrics.ts';
import { subscriptionPk, subscriptionSk } from '../../functions/core/model.ts';
import { register } from '../../functions/core/registry.ts';
import { Scope } from '../../functions/core/scope.ts';
import { startManagementApi } from '../../local/management-api.ts';
import { PrometheusSink } from '../../local/metrics.ts';
import { call, startAuthRuntime, type AuthRuntime } from '../auth/support.ts';
import { wsMessage } from '../support/events.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable } from '../support/table.ts';
import { delta, parseSamples, type Samples } from '../support/metrics.ts';
import { eventually } from '../support/wait.ts';

describe('GET /metrics of the local runtime', () => {
  let rt: AuthRuntime;
  beforeAll(async () => {
    rt = await startAuthRuntime(['--sweep-interval', '0.5']);
  });
  afterAll(async () => {
    await rt?.stop();
  });

  const scrape = async (): Promise<Samples> => {
    const res = await fetch(`${rt.httpUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return parseSamples(await res.text());
  };

  it('moves each counter by exactly what the requests did', async () => {
    const cluster = `metrics-${randomUUID().slice(0, 8)}`;
    const node = await rt.mint(cluster, 'node');
    const reader = await rt.mint(cluster, 'reader');
    const path = (n: string) => `/v1/clusters/${cluster}/nodes/${n}`;
    const before = await scrape();

    // A connection that is long gone but still has a subscription record: the fan-out finds it with a 410.
    const db = createDocumentClient({ dynamodbEndpoint: inject('dynamodbEndpoint') });
    await db.send(
      new PutCommand({
        TableName: rt.tableName,
        Item: { pk: subscriptionPk(cluster), sk: subscriptionSk('long-gone'), connectionId: 'long-gone', connectedAt: 0, ttl: Math.ceil(Date.now() / 1000) + 3600 },
      }),
    );
    db.destroy();
    // And a live subscriber, which receives every event.
    const watcher = new WebSocket(`${rt.wsUrl}?clusterId=${cluster}&token=${reader}`);
    const events: string[] = [];
    watcher.on('message', (data: Buffer) => events.push(JSON.parse(data.toString()).type as string));
    await new Promise((resolve, reject) => watcher.once('open', resolve).once('error', reject));

    expect((await call(rt.httpUrl, 'PUT', path('a'), { token: node, body: {} })).status).toBe(201);
    expect((await call(rt.httpUrl, 'PUT', path('b'), { token: node, body: { leaseSeconds: 2 } })).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await call(rt.httpUrl, 'POST', `${path('a')}/keepalive`, { token: node, body: {} })).status).toBe(200);
    expect((await call(rt.httpUrl, 'POST', `${path('ghost')}/keepalive`, { token: node, body: {} })).status).toBe(404);
    expect((await call(rt.httpUrl, 'PUT', path('c'), { token: reader, body: {} })).status).toBe(403);
    expect((await call(rt.httpUrl, 'GET', path('a'), { authorization: 'Bearer not-a-token' })).status).toBe(401);

    // b expires (lease 2 s) and the sweeper marks it DOWN; wait for what the subscriber sees.
    await eventually(() => events.includes('NODE_DOWN'), 30_000, () => `NODE_DOWN; got ${events.join(', ')}`);
    expect(events).toEqual(['NODE_REGISTERED', 'NODE_REGISTERED', 'NODE_DOWN']);
    watcher.close();
    // The fan-out counts its deliveries when its batch is done, which may be just after the
    // subscriber has the message: wait for the count rather than racing it.
    let after = await scrape();
    await eventually(async () => {
      after = await scrape();
      return delta(after, before, 'roster_events_fanned_out_total') >= 3 && delta(after, before, 'roster_gone_connections_total') >= 1;
    }, 10_000, 'the fan-out to count its three deliveries and the 410');

    expect(delta(after, before, 'roster_registrations_total{event="NODE_REGISTERED"}')).toBe(2);
    expect(delta(after, before, 'roster_keepalives_total')).toBe(3);
    expect(delta(after, before, 'roster_keepalive_failures_total{code="NODE_NOT_FOUND"}')).toBe(1);
    expect(delta(after, before, 'roster_nodes_down_total{reason="expired"}')).toBe(1);
    expect(delta(after, before, 'roster_nodes_swept_total')).toBe(1);
    expect(delta(after, before, 'roster_authorizer_denials_total{code="FORBIDDEN"}')).toBe(1);
    expect(delta(after, before, 'roster_authorizer_denials_total{code="UNAUTHORIZED"}')).toBe(1);
    // Three events, each to the live subscriber; the stale connection answered 410 once and was removed.
    expect(delta(after, before, 'roster_events_fanned_out_total')).toBe(3);
    expect(delta(after, before, 'roster_gone_connections_total')).toBe(1);
    expect(delta(after, before, 'roster_sweep_duration_ms_count')).toBeGreaterThan(0);
    expect(delta(after, before, 'roster_stream_batch_age_ms_count')).toBeGreaterThan(0);
    expect(delta(after, before, 'roster_requests_total{status="4xx"}')).toBeGreaterThanOrEqual(3);
    // API Gateway's own count, by API, route key and status: what the handlers never see (the authorizer's refusals, the posts).
    const gateway = (api: string, route: string, status: number) => delta(after, before, `roster_gateway_requests_total{api="${api}",route="${route}",status="${status}"}`);
    const nodeRoute = '/v1/clusters/{clusterId}/nodes/{nodeId}';
    expect(gateway('http', `PUT ${nodeRoute}`, 201)).toBe(2);
    expect(gateway('http', `PUT ${nodeRoute}`, 403)).toBe(1);
    expect(gateway('http', `POST ${nodeRoute}/keepalive`, 200)).toBe(3);
    expect(gateway('http', `POST ${nodeRoute}/keepalive`, 404)).toBe(1);
    expect(gateway('http', `GET ${nodeRoute}`, 401)).toBe(1);
    expect(gateway('websocket', '$connect', 200)).toBe(1);
    expect(gateway('connections', 'POST @connections', 200)).toBe(3);
    expect(gateway('connections', 'POST @connections', 410)).toBe(1);
  });
});

describe('a fan-out failure', () => {
  it('counts the record reported for retry in the registry /metrics serves', async () => {
    const table = await createTestTable();
    const sink = new PrometheusSink();
    // The fan-out records into the sink of the scope it runs in, as in a local runtime.
    const scope = new Scope({ env: {}, metrics: sink });
    const management = await startManagementApi(
      { post: () => Promise.reject(new Error('injected fault')), info: () => undefined, disconnect: () => false },
      { debug() {}, info() {}, warn() {}, error() {} },
    );
    const stream = new StreamReader(table.endpoint, table.tableName);
    try {
      await connect(table.deps, 'conn-1', { clusterId: 'c1' });
      await stream.mark();
      await register(table.deps, 'c1', 'n1', {});
      const records = await stream.next();
      const poster = posterFor(createManagementClient(management.url, true), management.url);
      const result = await scope.run(() => fanOut({ ...table.deps, poster }, records));
      poster.close();
      expect(result.batchItemFailures).toHaveLength(1);
      const samples = parseSamples(await sink.text());
      expect(samples.get('roster_fanout_failures_total')).toBe(1);
      expect(samples.get('roster_events_fanned_out_total')).toBe(0);
    } finally {
      stream.close();
      await management.close();
    }
  });
});

/** One embedded-metric-format document as CloudWatch reads it from a function's stdout. */
interface EmfDocument {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}

describe('a WebSocket handler that answers 500 itself', () => {
  it('counts Requests with status 5xx in the EMF document it writes: the series the WebSocket 5xx alarm watches (test/infra/observability.unit.test.ts)', async () => {
    // The handler runs as on Lambda (AWS_LAMBDA_FUNCTION_NAME: metrics in EMF on stdout) against a table that does not
    // exist, so DynamoDB Local itself fails subscribe's write (ResourceNotFoundException): no mock, a real store error.
    const scope = new Scope({
      env: {
        AWS_LAMBDA_FUNCTION_NAME: 'Roster-WebSocketApiSubscribeHandler',
        TABLE_NAME: `roster-test-missing-${randomUUID().slice(0, 8)}`,
        DYNAMODB_ENDPOINT: inject('dynamodbEndpoint'),
        ROSTER_AUTH: 'off',
        // The handler logs the failure with its stack, as it should; not into the test's output.
        POWERTOOLS_LOG_LEVEL: 'SILENT',
      },
    });
    const written: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    let result;
    try {
      result = await scope.run(() => wsMessage('conn-emf', JSON.stringify({ action: 'subscribe', clusterId: 'c1' })));
    } finally {
      stdout.mockRestore();
      scope.dispose();
    }
    // What the client sees: the contract's opaque 500, which neither Lambda's Errors nor API Gateway's ExecutionError counts.
    expect(result.statusCode).toBe(500);
    expect(JSON.parse(String(result.body))).toMatchObject({ type: 'ERROR', error: { code: 'INTERNAL' } });

    const documents = written
      .join('')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((doc): doc is EmfDocument => '_aws' in doc);
    const requests = documents.filter((doc) => doc._aws.CloudWatchMetrics.some((m) => m.Metrics.some((metric) => metric.Name === REQUESTS_METRIC)));
    expect(requests).toHaveLength(1);
    const [doc] = requests as [EmfDocument];
    const expected = { ...METRICS_SERVICE_DIMENSION, ...requestLabels(500) };
    expect(doc._aws.CloudWatchMetrics).toEqual([{ Namespace: METRICS_NAMESPACE, Dimensions: [expect.arrayContaining(Object.keys(expected))], Metrics: [{ Name: REQUESTS_METRIC, Unit: 'Count' }] }]);
    expect(doc._aws.CloudWatchMetrics[0]?.Dimensions[0]).toHaveLength(Object.keys(expected).length);
    expect(doc).toMatchObject({ ...expected, [REQUESTS_METRIC]: 1 });
  });
});
