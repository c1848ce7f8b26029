/**
 * Every handler on events shaped exactly like the examples on AWS's
 * documentation pages (test/fixtures/aws/, each file names its page), with
 * tokens required as on AWS, against DynamoDB Local. Only what a route needs
 * is replaced (path, path parameters, body, query string, the authorizer's
 * values); every other field stays as the page shows it. The WebSocket
 * authorizer context is stringified, as API Gateway passes it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken, type ClaimsContext } from '../../functions/core/auth.ts';
import { CONSOLE_WS_URL_PLACEHOLDER } from '../../functions/core/console-page.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES } from '../../functions/core/routes.ts';
import { Scope } from '../../functions/core/scope.ts';
import type { WsEvent, WsResult } from '../../functions/core/ws-handler.ts';
import { generateSecret } from '../../local/auth-secret.ts';
import { REPO_ROOT } from '../support/runtime.ts';
import { createTestTable } from '../support/table.ts';

interface Fixture<E> {
  source: string | string[];
  event: E;
}
const fixture = <E>(name: string): Fixture<E> =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'aws', name), 'utf8')) as Fixture<E>;
const clone = <T>(value: T): T => structuredClone(value);

const secret = generateSecret();
const cluster = `aws-shape-${Date.now().toString(36)}`;
const exp = Math.floor(Date.now() / 1000) + 3600;
const admin: ClaimsContext = { role: 'admin', cluster: '*', sub: 'ops', exp };
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), 'roster-aws-shapes-'));
  const consolePage = path.join(scratch, 'console.html');
  // The smallest document the console handler serves (the real one is built by console/build.ts; test/console covers it).
  writeFileSync(
    consolePage,
    `<!doctype html><html><head><meta name="roster-ws-url" content="${CONSOLE_WS_URL_PLACEHOLDER}"><style>body{}</style></head><body><script type="module">void 0</script></body></html>`,
  );
  await createTestTable({
    // Tokens required, as on AWS (the stack never sets ROSTER_AUTH).
    ROSTER_AUTH: 'required',
    WEBSOCKET_CALLBACK_URL: 'http://127.0.0.1:9/live',
    CONSOLE_HTML_FILE: consolePage,
    WEBSOCKET_URL: 'wss://abcdef123.execute-api.us-east-1.amazonaws.com/live',
  });
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** The authorizers run where they get the signing secret: in a scope that holds it, as in the local runtime. */
const withSecret = new Scope({ env: {}, tokenSecret: secret });

type HttpHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

/** The documentation's payload 2.0 event, turned into a request for one route with a Lambda authorizer's (typed) context. */
function httpEventFor(method: string, routeKey: string, rawPath: string, params: Record<string, string> | undefined, body?: unknown): APIGatewayProxyEventV2 {
  const event = clone(fixture<APIGatewayProxyEventV2 & { requestContext: { authorizer?: unknown } }>('http-api-v2-event.json').event);
  event.routeKey = routeKey;
  event.rawPath = rawPath;
  // No query string on these routes: API Gateway then leaves queryStringParameters out.
  event.rawQueryString = '';
  delete event.queryStringParameters;
  event.pathParameters = params;
  event.headers = { ...event.headers, 'content-type': 'application/json' };
  if (body === undefined) delete event.body;
  else event.body = JSON.stringify(body);
  event.requestContext.http = { ...event.requestContext.http, method, path: rawPath };
  event.requestContext.routeKey = routeKey;
  event.requestContext.authorizer = { lambda: admin };
  return event;
}

async function callHttp(method: string, pathTemplate: string, module: string, params: Record<string, string> | undefined, body?: unknown) {
  const rawPath = Object.entries(params ?? {}).reduce((p, [k, v]) => p.replace(`{${k}}`, v), pathTemplate);
  const { handler } = (await import(`../../functions/http/${module}.ts`)) as { handler: HttpHandler };
  return handler(httpEventFor(method, `${method} ${pathTemplate}`, rawPath, params, body));
}

describe('HTTP handlers on the payload 2.0 event of the documentation', () => {
  it('answer every route as the contract says', async () => {
    const node = { clusterId: cluster, nodeId: 'n1' };
    const expected: Record<string, number> = {
      'PUT /v1/clusters/{clusterId}/nodes/{nodeId}': 201,
      'POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive': 200,
      'GET /v1/clusters/{clusterId}/nodes/{nodeId}': 200,
      'GET /v1/clusters/{clusterId}/nodes': 200,
      'GET /v1/clusters': 200,
      'GET /v1/health': 200,
      'GET /v1/openapi.json': 200,
      'GET /console': 200,
      'GET /': 200,
      'DELETE /v1/clusters/{clusterId}/nodes/{nodeId}': 204,
    };
    // Register first and deregister last; the rest in any order.
    const order = [...HTTP_ROUTES].sort((a, b) => rank(a.method) - rank(b.method));
    for (const route of order) {
      const key = `${route.method} ${route.path}`;
      const params = route.path.includes('{nodeId}') ? node : route.path.includes('{clusterId}') ? { clusterId: cluster } : undefined;
      const res = await callHttp(route.method, route.path, route.handler, params, route.method === 'PUT' ? { metadata: { zone: 'a' } } : undefined);
      expect(res.statusCode, `${key}: ${String(res.body).slice(0, 200)}`).toBe(expected[key]);
    }
    expect(Object.keys(expected).sort()).toEqual(HTTP_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    const { handler } = (await import(`../../functions/http/${HTTP_DEFAULT_HANDLER}.ts`)) as { handler: HttpHandler };
    const unknown = await handler(httpEventFor('POST', '$default', '/my/path', undefined, 'Hello from Lambda'));
    expect(unknown.statusCode).toBe(404);
  });
});
const rank = (method: string): number => ({ PUT: 0, POST: 1, GET: 2, DELETE: 3 })[method] ?? 2;

describe('the authorizers on the documentation\'s authorizer inputs', () => {
  it('HTTP (payload 2.0): allows with the claims as typed context', async () => {
    const token = await signToken(secret, { cluster: '*', role: 'admin', sub: 'ops', ttlSeconds: 600 });
    const event = clone(fixture<Record<string, unknown> & { headers: Record<string, string> }>('http-authorizer-v2-request.json').event);
    event.headers = { ...event.headers, authorization: `Bearer ${token}` };
    event.identitySource = [`Bearer ${token}`];
    const { handler: authorizer } = (await import('../../functions/auth/http-authorizer.ts')) as { handler: (e: unknown) => Promise<unknown> };
    const handler = withSecret.bind(authorizer);
    expect(await handler(event)).toEqual({ isAuthorized: true, context: { role: 'admin', cluster: '*', sub: 'ops', exp: expect.any(Number) } });
  });

  it('WebSocket ($connect REQUEST): allows with a policy for the methodArn, and refuses without a token', async () => {
    const token = await signToken(secret, { cluster, role: 'node', sub: 'node-1', ttlSeconds: 600 });
    const event = clone(fixture<Record<string, unknown> & { methodArn: string }>('websocket-authorizer-request.json').event);
    const { handler: authorizer } = (await import('../../functions/auth/ws-authorizer.ts')) as { handler: (e: unknown) => Promise<unknown> };
    const handler = withSecret.bind(authorizer);
    await expect(handler(event)).rejects.toThrow(/^Unauthorized$/);
    event.queryStringParameters = { token, clusterId: cluster };
    expect(await handler(event)).toMatchObject({
      principalId: 'node-1',
      policyDocument: { Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }] },
      context: { role: 'node', cluster, sub: 'node-1' },
    });
  });
});

describe('WebSocket handlers on the documentation\'s $connect event, authorizer context stringified', () => {
  /** The $connect event of the fixture for one connection, with the claims as API Gateway hands them on: strings. */
  const connectEvent = (connectionId: string, query: Record<string, string>, claims: ClaimsContext): WsEvent => {
    const event = clone(fixture<WsEvent>('websocket-connect-event.json').event);
    event.queryStringParameters = query;
    event.requestContext.connectionId = connectionId;
    event.requestContext.authorizer = { principalId: claims.sub, role: claims.role, cluster: claims.cluster, sub: claims.sub, exp: String(claims.exp) };
    return event;
  };
  const messageEvent = (connect: WsEvent, routeKey: string, body: string | undefined, eventType: WsEvent['requestContext']['eventType']): WsEvent => {
    const event = clone(connect);
    delete event.queryStringParameters;
    event.requestContext = { ...event.requestContext, routeKey, eventType, messageDirection: 'IN' };
    if (body === undefined) delete event.body;
    else event.body = body;
    return event;
  };
  const ws = async (routeKey: string): Promise<(e: WsEvent) => Promise<WsResult>> => {
    const route = WS_ROUTES.find((r) => r.routeKey === routeKey);
    return ((await import(`../../functions/ws/${route?.handler}.ts`)) as { handler: (e: WsEvent) => Promise<WsResult> }).handler;
  };

  it('the fixture carries only strings in its authorizer context, as the documentation says', () => {
    const values = Object.values(fixture<WsEvent>('websocket-connect-event.json').event.requestContext.authorizer as Record<string, unknown>);
    expect(values.length).toBeGreaterThan(1);
    for (const value of values) expect(typeof value).toBe('string');
  });

  it('connect, subscribe, ping, unsubscribe, $default and disconnect all accept the stringified claims', async () => {
    const reader: ClaimsContext = { role: 'reader', cluster, sub: 'watcher', exp };
    const connect = connectEvent('conn-doc-1', { clusterId: cluster }, reader);
    expect(await (await ws('$connect'))(connect)).toMatchObject({ statusCode: 200 });
    const subscribe = await (await ws('subscribe'))(messageEvent(connect, 'subscribe', JSON.stringify({ action: 'subscribe', clusterId: cluster }), 'MESSAGE'));
    expect(JSON.parse(String(subscribe.body))).toMatchObject({ type: 'SUBSCRIBED' });
    const pong = await (await ws('ping'))(messageEvent(connect, 'ping', '{"action":"ping"}', 'MESSAGE'));
    expect(JSON.parse(String(pong.body))).toMatchObject({ type: 'PONG' });
    const unsubscribe = await (await ws('unsubscribe'))(messageEvent(connect, 'unsubscribe', JSON.stringify({ action: 'unsubscribe', clusterId: cluster }), 'MESSAGE'));
    expect(JSON.parse(String(unsubscribe.body))).toMatchObject({ type: 'UNSUBSCRIBED' });
    const unknown = await (await ws('$default'))(messageEvent(connect, '$default', '{"action":"dance"}', 'MESSAGE'));
    expect(unknown.statusCode).toBe(404);
    expect(JSON.parse(String(unknown.body))).toMatchObject({ type: 'ERROR', error: { code: 'NOT_FOUND' } });
    expect(await (await ws('$disconnect'))(messageEvent(connect, '$disconnect', undefined, 'DISCONNECT'))).toMatchObject({ statusCode: 200 });
  });

  it('still refuses what the stringified claims do not allow: a reader binding a node, another cluster, an expired token', async () => {
    const reader: ClaimsContext = { role: 'reader', cluster, sub: 'watcher', exp };
    const connect = await ws('$connect');
    expect((await connect(connectEvent('conn-doc-2', { clusterId: cluster, nodeId: 'n9' }, reader))).statusCode).toBe(403);
    expect((await connect(connectEvent('conn-doc-3', { clusterId: 'elsewhere' }, reader))).statusCode).toBe(403);
    expect((await connect(connectEvent('conn-doc-4', { clusterId: cluster }, { ...reader, exp: Math.floor(Date.now() / 1000) - 5 }))).statusCode).toBe(401);
  });
});

describe('the fan-out and the sweeper on their documented trigger events', () => {
  it('the fan-out takes the documentation\'s stream batch (another table\'s items) without failing a record', async () => {
    const { handler } = (await import('../../functions/stream/fanout.ts')) as { handler: (e: unknown) => Promise<{ batchItemFailures: unknown[] }> };
    expect(await handler(fixture('dynamodb-stream-event.json').event)).toEqual({ batchItemFailures: [] });
  });

  it('the sweeper sweeps once on the documentation\'s scheduled event', async () => {
    const { handler } = (await import('../../functions/sweeper/sweeper.ts')) as { handler: (e: unknown) => Promise<{ sweeps: number; failures: number }> };
    expect(await handler(fixture('scheduled-event.json').event)).toMatchObject({ sweeps: 1, failures: 0 });
  });
});
