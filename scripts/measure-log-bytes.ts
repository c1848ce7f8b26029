/**
 * What each operation writes to CloudWatch Logs on AWS, in bytes and log
 * events, for `roster cost` (bench/log-bytes.ts holds the figures).
 *
 *   npx tsx scripts/measure-log-bytes.ts [--verbose]    # --verbose also prints every line counted
 *
 * The handlers run here as on Lambda: the environment says Lambda
 * (`AWS_LAMBDA_FUNCTION_NAME`, so metrics go out as EMF, and `_X_AMZN_TRACE_ID`,
 * which Powertools' logger copies into every line), auth required, each call
 * with an authorizer context like the stack's authorizers pass on, against
 * a DynamoDB Local this script starts (Java 17+). What a handler writes to
 * stdout is counted; one line is one log event. Lambda's own START, END and
 * REPORT lines and API Gateway's access log line are not written by the
 * handlers: they are built here in the documented formats (the platform
 * lines as on https://docs.aws.amazon.com/lambda/latest/dg/nodejs-logging.html;
 * the access line from the HTTP stage's format in the synthesized template,
 * with the values of the request just made) and counted the same way.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { synthesizedSettings, type FunctionSettings } from '../bench/stack-settings.ts';
import { EmfSink, ROUTINE_PUBLISH_EVERY_MS } from '../functions/core/metrics.ts';
import { localOverrides } from '../functions/core/aws.ts';
import type { WsEvent, WsResult } from '../functions/core/ws-handler.ts';
import { createTableInput } from '../functions/core/table.ts';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import { httpEvent, wsEvent } from '../test/support/events.ts';

const CLUSTER = 'cluster-0001';
const NODE = 'node-000042';
const SUBJECT = 'node-000042';
/** API Gateway's request and connection ids are 16 characters (e.g. `Kx3VRhXQIAMEVxw=`). */
const gatewayId = (): string => randomUUID().replace(/-/g, '').slice(0, 15) + '=';

const settings = await synthesizedSettings();
const dynamo = await startDynamoDbLocal();
const tableName = `roster-logbytes-${randomUUID().slice(0, 8)}`;
const raw = new DynamoDBClient(localOverrides(dynamo.endpoint));
await raw.send(new CreateTableCommand(createTableInput(tableName)));
raw.destroy();

// As Lambda sets it up (before any handler module is loaded: they read the environment once).
Object.assign(process.env, {
  AWS_LAMBDA_FUNCTION_NAME: 'Roster-HttpApiKeepaliveHandlerFCC5C802-AbCdEfGh1234',
  AWS_REGION: 'us-east-1',
  POWERTOOLS_SERVICE_NAME: 'roster',
  _X_AMZN_TRACE_ID: 'Root=1-674c3a1e-5f3e2b1c9d8a7e6f5a4b3c2d;Parent=53995c3f42cd8ad8;Sampled=0',
  TABLE_NAME: tableName,
  DYNAMODB_ENDPOINT: dynamo.endpoint,
  WEBSOCKET_CALLBACK_URL: 'https://abcdef1234.execute-api.us-east-1.amazonaws.com/live',
});

type Http = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
type Ws = (event: WsEvent) => Promise<WsResult>;
const httpHandler = async (name: string): Promise<Http> => ((await import(`../functions/http/${name}.ts`)) as { handler: Http }).handler;
const wsHandler = async (name: string): Promise<Ws> => ((await import(`../functions/ws/${name}.ts`)) as { handler: Ws }).handler;

interface Written {
  bytes: number;
  lines: number;
  /** What was written (printed with --verbose). */
  text?: string;
}

const verbose = process.argv.includes('--verbose');

/** What `fn` writes to stdout, counted (and kept off the terminal). */
async function captured<T>(fn: () => Promise<T>): Promise<{ result: T; written: Written }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }) as typeof process.stdout.write;
  try {
    const result = await fn();
    const text = chunks.join('');
    return { result, written: { ...count(text), text } };
  } finally {
    process.stdout.write = write;
  }
}

const count = (text: string): Written => ({ bytes: Buffer.byteLength(text), lines: text.split('\n').filter((l) => l !== '').length, text });

/**
 * Lambda's own lines around each invocation. In the text format, START, END and
 * REPORT as on the Node.js logging page. In the JSON format Lambda filters its
 * lines by the function's system log level: START and REPORT are INFO, so at
 * WARN (the stack's default) none is written
 * (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
 */
function platformLines(fn: FunctionSettings | undefined): Written {
  if (fn?.systemLogLevel === 'WARN') return { bytes: 0, lines: 0 };
  const id = randomUUID();
  return count(
    `START RequestId: ${id} Version: $LATEST\n` +
      `END RequestId: ${id}\n` +
      `REPORT RequestId: ${id}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: ${fn?.memoryMb ?? 256} MB\tMax Memory Used: 95 MB\t\n`,
  );
}

/** The HTTP stage's access log line for a request, from the stage's own format. */
function accessLine(routeKey: string, method: string, status: number, responseLength: number): Written {
  const format = settings.httpAccessLogFormat;
  if (format === undefined) return { bytes: 0, lines: 0 };
  const values: Record<string, string> = {
    '$context.requestId': gatewayId(),
    '$context.identity.sourceIp': '203.0.113.10',
    '$context.requestTime': '01/Dec/2026:06:29:00 +0000',
    '$context.httpMethod': method,
    '$context.routeKey': routeKey,
    '$context.status': String(status),
    '$context.protocol': 'HTTP/1.1',
    '$context.responseLength': String(responseLength),
    '$context.responseLatency': '14',
    '$context.integrationLatency': '12',
    '$context.integrationErrorMessage': '-',
    '$context.authorizer.sub': SUBJECT,
    '$context.authorizer.error': '-',
  };
  const line = format.replace(/\$context\.[A-Za-z.]+/g, (name) => values[name] ?? '-');
  return count(`${line}\n`);
}

const claims = { role: 'node', cluster: CLUSTER, sub: SUBJECT, exp: Math.floor(Date.now() / 1000) + 3600 };

async function http(name: string, method: string, path: string, pathParameters: Record<string, string>, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const route = Object.keys(settings.httpFunctions).find((key) => key.startsWith(`${method} `) && new RegExp(`^${key.slice(method.length + 1).replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
  if (!route) throw new Error(`no route for ${method} ${path}`);
  const handler = await httpHandler(name);
  const event = httpEvent({ method, path, body: options.body, headers: options.headers, authorizer: claims }, route, pathParameters);
  event.requestContext.requestId = gatewayId();
  const { result, written } = await captured(() => handler(event));
  return { result, handler: written, access: accessLine(route, method, result.statusCode ?? 200, Buffer.byteLength(result.body ?? '')) };
}

async function ws(name: string, routeKey: string, eventType: WsEvent['requestContext']['eventType'], connectionId: string, extra: { query?: Record<string, string>; body?: string } = {}) {
  const handler = await wsHandler(name);
  const event = wsEvent(connectionId, routeKey, eventType, { ...extra, authorizer: { principalId: SUBJECT, ...claims, exp: String(claims.exp) } });
  event.requestContext.requestId = gatewayId();
  const { result, written } = await captured(() => handler(event));
  return { result, handler: written };
}

const rows: { operation: string; handler: Written; access?: Written; platform: Written }[] = [];
const httpFn = (route: string): FunctionSettings | undefined => settings.httpFunctions[route];
const nodePath = `/v1/clusters/${CLUSTER}/nodes/${NODE}`;
const ids = { clusterId: CLUSTER, nodeId: NODE };

try {
  // A first call of each handler pays for module loading; the figures are those of a warm call.
  const register = (incarnation: number) => http('register', 'PUT', nodePath, ids, { body: { metadata: {}, incarnation } });
  await register(1);
  const registered = await register(2);
  if (registered.result.statusCode !== 200) throw new Error(`re-registration answered ${registered.result.statusCode}`);
  rows.push({ operation: 'register (a restart: NODE_REGISTERED)', handler: registered.handler, access: registered.access, platform: platformLines(httpFn('PUT /v1/clusters/{clusterId}/nodes/{nodeId}')) });

  await http('keepalive', 'POST', `${nodePath}/keepalive`, ids, { body: {} });
  const keepalive = await http('keepalive', 'POST', `${nodePath}/keepalive`, ids, { body: {} });
  if (keepalive.result.statusCode !== 200) throw new Error(`keepalive answered ${keepalive.result.statusCode}`);
  rows.push({ operation: 'keepalive', handler: keepalive.handler, access: keepalive.access, platform: platformLines(httpFn('POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive')) });

  // The keepalive above wrote no metric document: its counts wait in the environment (functions/core/metrics.ts
  // ROUTINE_PUBLISH_EVERY_MS). What an environment writes for them once a minute, through the same sink:
  // Keepalives, and Requests by status class (a document of its own). A list or ping environment writes less.
  let clock = Date.now();
  const held = new EmfSink(() => clock);
  held.count('Keepalives', 1, {});
  held.count('Requests', 1, { status: '2xx' });
  clock += ROUTINE_PUBLISH_EVERY_MS;
  const publish = await captured(() => Promise.resolve(held.flush({ routine: true })));
  rows.push({ operation: "routine counts held a minute (per warm keepalive, list or ping environment, once a minute)", handler: publish.written, platform: { bytes: 0, lines: 0 } });

  const listPath = `/v1/clusters/${CLUSTER}/nodes`;
  const full = await http('list-nodes', 'GET', listPath, { clusterId: CLUSTER });
  const etag = (full.result.headers as Record<string, string> | undefined)?.etag;
  if (full.result.statusCode !== 200 || !etag) throw new Error(`list answered ${full.result.statusCode} without an ETag`);
  const notModified = await http('list-nodes', 'GET', listPath, { clusterId: CLUSTER }, { headers: { 'if-none-match': etag } });
  if (notModified.result.statusCode !== 304) throw new Error(`a conditional list answered ${notModified.result.statusCode}`);
  const listFull = await http('list-nodes', 'GET', listPath, { clusterId: CLUSTER });
  rows.push({ operation: 'list refresh answered 304', handler: notModified.handler, access: notModified.access, platform: platformLines(httpFn('GET /v1/clusters/{clusterId}/nodes')) });
  rows.push({ operation: 'full list (1 node; the line does not grow with the list, the access line only by its length)', handler: listFull.handler, access: listFull.access, platform: platformLines(httpFn('GET /v1/clusters/{clusterId}/nodes')) });

  const wsFn = (route: string): FunctionSettings | undefined => settings.webSocketFunctions[route];
  await ws('ping', 'ping', 'MESSAGE', gatewayId(), { body: '{"action":"ping"}' });
  const ping = await ws('ping', 'ping', 'MESSAGE', gatewayId(), { body: '{"action":"ping"}' });
  rows.push({ operation: 'ping', handler: ping.handler, platform: platformLines(wsFn('ping')) });

  const connection = gatewayId();
  const connect = await ws('connect', '$connect', 'CONNECT', connection, { query: { clusterId: CLUSTER, nodeId: NODE } });
  if (connect.result.statusCode !== 200) throw new Error(`$connect answered ${connect.result.statusCode}`);
  rows.push({ operation: '$connect (bound)', handler: connect.handler, platform: platformLines(wsFn('$connect')) });
  const disconnect = await ws('disconnect', '$disconnect', 'DISCONNECT', connection);
  rows.push({ operation: '$disconnect (bound: the lease cut)', handler: disconnect.handler, platform: platformLines(wsFn('$disconnect')) });

  // The fan-out of one event (the registration above) to a cluster nobody subscribes to any more: the batch line
  // and its metrics. With subscribers the EMF document also carries EventsFannedOut.
  const { GetCommand } = await import('@aws-sdk/lib-dynamodb');
  const { defaultDeps } = await import('../functions/core/deps.ts');
  const { nodeItemKey } = await import('../functions/core/model.ts');
  const item = (await defaultDeps().db.send(new GetCommand({ TableName: tableName, Key: nodeItemKey(CLUSTER, NODE) }))).Item;
  if (!item) throw new Error('the node item is gone');
  const record = {
    eventID: randomUUID(),
    eventName: 'MODIFY',
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: marshall({ pk: item.pk, sk: item.sk }),
      NewImage: marshall({ ...item, ev: 'NODE_REGISTERED' }, { removeUndefinedValues: true, convertEmptyValues: false }),
      SequenceNumber: '100000000000000000001',
      SizeBytes: 400,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/Roster-Table/stream/2026-12-01T00:00:00.000',
  } as unknown as DynamoDBRecord;
  const { handler: fanout } = (await import('../functions/stream/fanout.ts')) as { handler: (e: DynamoDBStreamEvent) => Promise<unknown> };
  const fanoutRun = await captured(() => fanout({ Records: [record] }));
  rows.push({ operation: 'fan-out batch (one event)', handler: fanoutRun.written, platform: platformLines(settings.fanout) });

  // The sweeper: one sweep per invocation here (SWEEP_LOOP_SECONDS is unset); on AWS one invocation sweeps for a minute.
  const { handler: sweeper } = (await import('../functions/sweeper/sweeper.ts')) as { handler: () => Promise<{ down: number }> };
  // The node whose connection dropped above goes down after its grace: let that sweep pass first.
  await sleep(2_200);
  await captured(() => sweeper());
  const idle = await captured(() => sweeper());
  rows.push({ operation: 'sweep that finds nothing (per sweep)', handler: idle.written, platform: { bytes: 0, lines: 0 } });
  // A node whose lease runs out: the sweep that declares it down writes its line and the NodesDown metric.
  await http('register', 'PUT', `/v1/clusters/${CLUSTER}/nodes/node-000043`, { clusterId: CLUSTER, nodeId: 'node-000043' }, { body: { leaseSeconds: 2 } });
  await sleep(2_200);
  const down = await captured(() => sweeper());
  if (down.result.down !== 1) throw new Error(`the sweep declared ${down.result.down} nodes down, not 1`);
  rows.push({ operation: 'sweep that declares one node down', handler: down.written, platform: { bytes: 0, lines: 0 } });
  rows.push({ operation: 'sweeper invocation (once a minute)', handler: { bytes: 0, lines: 0 }, platform: platformLines(settings.sweeper) });
} finally {
  await dynamo.stop();
}

const out = (s: string) => process.stderr.write(`${s}\n`);
if (verbose) for (const r of rows) out(`${r.operation}:\n${[r.access?.text, r.platform.text, r.handler.text].filter(Boolean).join('')}`);
out(`Measured ${new Date().toISOString()} with scripts/measure-log-bytes.ts (${settings.source}); bytes (log events)\n`);
out('| operation | handler | Lambda START/END/REPORT | HTTP access line |');
out('|---|---|---|---|');
for (const r of rows) out(`| ${r.operation} | ${r.handler.bytes} (${r.handler.lines}) | ${r.platform.bytes} (${r.platform.lines}) | ${r.access ? `${r.access.bytes} (${r.access.lines})` : '—'} |`);
