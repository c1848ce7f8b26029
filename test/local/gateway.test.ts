/**
 * The API Gateway emulation with handlers under the test's control: real
 * HTTP servers, real `ws` clients and the real `ApiGatewayManagementApiClient`.
 * Checks the event shapes the handlers receive, route selection, route
 * responses, `$connect` refusal, `$disconnect`, the `@connections` endpoint
 * and the queueing of posts that arrive while `$connect` still runs.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import type { LambdaHandler } from '../../local/handlers.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES } from '../../functions/core/routes.ts';
import { createHttpApi, type HttpRoute } from '../../local/http-api.ts';
import { silentLog } from '../../local/log.ts';
import { startManagementApi, type ManagementApi } from '../../local/management-api.ts';
import { WebSocketApi, type WsRoute } from '../../local/websocket-api.ts';
import { eventually } from '../support/wait.ts';

interface Recorded {
  routeKey: string;
  event: Record<string, unknown> & { requestContext: Record<string, unknown> };
}

let server: Server;
let management: ManagementApi;
let gateway: WebSocketApi;
let client: ApiGatewayManagementApiClient;
let port: number;
const calls: Recorded[] = [];
/** What the test's `$connect` handler does; replaced per test. */
let onConnect: (event: Recorded['event']) => Promise<unknown> = async () => ({ statusCode: 200 });
const sockets: WebSocket[] = [];
/** Posts the `@connections` endpoint has received. */
let postsReceived = 0;

function recording(routeKey: string, reply: (event: Recorded['event']) => Promise<unknown>): LambdaHandler {
  return async (event) => {
    const recorded = event as Recorded['event'];
    calls.push({ routeKey, event: recorded });
    return reply(recorded);
  };
}

const httpHandlers = new Map<string, LambdaHandler>([
  ['register', async (event) => ({ statusCode: 201, headers: { 'Content-Type': 'application/json', 'X-Echo': 'yes' }, cookies: ['a=1'], body: JSON.stringify(event) })],
  ['list-nodes', async () => ({ statusCode: 200, body: 'aGVsbG8=', isBase64Encoded: true, headers: { 'content-type': 'text/plain' } })],
  ['list-clusters', async () => ({ clusters: [] })],
  ['health', async () => ({ statusCode: 200, headers: { 'x-bad': 'line\r\nbreak' }, body: '{}' })],
  ['get-node', async () => ({ statusCode: 999 })],
  ['keepalive', async () => {
    throw new Error('secret internal detail');
  }],
  ['deregister', async () => ({ statusCode: 204 })],
  ['not-found', async (event) => ({ statusCode: 404, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ routeKey: (event as APIGatewayProxyEventV2).routeKey }) })],
]);

/** The route table of the stack (functions/core/routes.ts), each route served by the test's handler of that module. */
function httpRoutesOf(handlers: Map<string, LambdaHandler>): HttpRoute[] {
  const route = (routeKey: string, name: string): HttpRoute[] => {
    const handler = handlers.get(name);
    return handler ? [{ routeKey, handler, functionName: name, timeoutMs: 30_000 }] : [];
  };
  return [...HTTP_ROUTES.flatMap((r) => route(`${r.method} ${r.path}`, r.handler)), ...route('$default', HTTP_DEFAULT_HANDLER)];
}

/** WebSocket routes by key; every route but $connect and $disconnect has a route response, as on the stack. */
function wsRoutesOf(entries: [string, LambdaHandler][]): Map<string, WsRoute> {
  return new Map(entries.map(([key, handler]) => [key, { handler, functionName: key, timeoutMs: 29_000, respond: !['$connect', '$disconnect'].includes(key) }]));
}

beforeAll(async () => {
  gateway = new WebSocketApi({
    log: silentLog,
    apiId: 'local',
    stage: 'local',
    routeSelectionExpression: '$request.body.action',
    routes: wsRoutesOf([
      ['$connect', recording('$connect', (e) => onConnect(e))],
      ['$disconnect', recording('$disconnect', async () => ({ statusCode: 200 }))],
      ['subscribe', recording('subscribe', async () => ({ statusCode: 200, body: JSON.stringify({ type: 'SUBSCRIBED' }) }))],
      ['ping', recording('ping', async () => ({ statusCode: 200 }))],
      ['$default', recording('$default', async () => ({ statusCode: 404, body: JSON.stringify({ type: 'ERROR' }) }))],
    ]),
  });
  const httpApi = createHttpApi({ routes: httpRoutesOf(httpHandlers), log: silentLog, bodyLimitBytes: 1024, apiId: 'local' });
  server = createServer((req, res) => void httpApi(req, res));
  server.on('upgrade', (req, socket, head) => void gateway.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  management = await startManagementApi(
    {
      post: (id, data) => {
        postsReceived++;
        return gateway.post(id, data);
      },
      info: (id) => gateway.info(id),
      disconnect: (id) => gateway.disconnect(id),
    },
    silentLog,
  );
  client = new ApiGatewayManagementApiClient({ endpoint: management.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
});

afterEach(() => {
  for (const ws of sockets.splice(0)) {
    ws.on('error', () => {});
    ws.terminate();
  }
  onConnect = async () => ({ statusCode: 200 });
});

afterAll(async () => {
  await gateway.closeAll(500);
  client.destroy();
  await management.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function open(query = ''): Promise<{ ws: WebSocket; messages: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`);
  sockets.push(ws);
  const messages: string[] = [];
  ws.on('message', (d) => messages.push(d.toString()));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('error', reject);
  });
}

/** Waits for `condition`; 5 s is many times what any of these loopback steps takes. */
const until = (condition: () => boolean): Promise<boolean> => eventually(condition, 5000);

const lastCall = (routeKey: string) => calls.filter((c) => c.routeKey === routeKey).at(-1);

describe('WebSocket API', () => {
  test('$connect gets an API-Gateway-shaped CONNECT event with the query string', async () => {
    await open('?clusterId=c1&nodeId=n1');
    const { event } = lastCall('$connect') as Recorded;
    expect(event.queryStringParameters).toEqual({ clusterId: 'c1', nodeId: 'n1' });
    expect(event.isBase64Encoded).toBe(false);
    expect(event.requestContext).toMatchObject({ routeKey: '$connect', eventType: 'CONNECT', messageDirection: 'IN', stage: 'local', apiId: 'local', domainName: `127.0.0.1:${port}` });
    expect(event.requestContext.connectionId).toMatch(/^[A-Za-z0-9]{15}=$/);
    expect(typeof event.requestContext.connectedAt).toBe('number');
    expect(typeof event.requestContext.requestId).toBe('string');
    expect(event.requestContext.requestTime).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect((event.requestContext.identity as Record<string, string>).sourceIp).toBe('127.0.0.1');
    expect((event.headers as Record<string, string>).Host).toBe(`127.0.0.1:${port}`);
  });

  test('a non-2xx $connect refuses the upgrade with that status and body', async () => {
    onConnect = async () => ({ statusCode: 403, body: JSON.stringify({ error: { code: 'FORBIDDEN', message: 'no' } }) });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    sockets.push(ws);
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
    expect(refused).toEqual({ status: 403, body: '{"error":{"code":"FORBIDDEN","message":"no"}}' });
  });

  test('other paths and non-WebSocket upgrades are refused without running $connect', async () => {
    const before = calls.length;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
    sockets.push(ws);
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(404);
    expect(calls.length).toBe(before);
  });

  test('messages are routed by their action, else to $default; the route response body is sent back', async () => {
    const { ws, messages } = await open();
    ws.send(JSON.stringify({ action: 'subscribe', clusterId: 'c1' }));
    ws.send(JSON.stringify({ action: 'nope' }));
    ws.send('not json');
    ws.send(JSON.stringify({ action: 'ping' })); // no body: nothing sent back
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await until(() => calls.filter((c) => c.event.requestContext.eventType === 'MESSAGE').length >= 5);
    const routed = calls.filter((c) => c.event.requestContext.eventType === 'MESSAGE').slice(-5);
    expect(routed.map((c) => c.routeKey)).toEqual(['subscribe', '$default', '$default', 'ping', '$default']);
    expect(routed[0]?.event).toMatchObject({ body: '{"action":"subscribe","clusterId":"c1"}', isBase64Encoded: false, requestContext: { routeKey: 'subscribe', eventType: 'MESSAGE', messageDirection: 'IN' } });
    expect(typeof routed[0]?.event.requestContext.messageId).toBe('string');
    expect(routed[4]?.event).toMatchObject({ body: 'AQID', isBase64Encoded: true });
    await until(() => messages.length >= 4);
    // In order; the ping's empty reply sends nothing.
    expect(messages).toEqual(['{"type":"SUBSCRIBED"}', '{"type":"ERROR"}', '{"type":"ERROR"}', '{"type":"ERROR"}']);
  });

  test('$disconnect runs when the socket is dropped without a close frame', async () => {
    const { ws } = await open();
    const id = (lastCall('$connect') as Recorded).event.requestContext.connectionId as string;
    ws.terminate();
    await until(() => calls.some((c) => c.routeKey === '$disconnect' && c.event.requestContext.connectionId === id));
    const { event } = calls.find((c) => c.routeKey === '$disconnect' && c.event.requestContext.connectionId === id) as Recorded;
    expect(event.requestContext).toMatchObject({ eventType: 'DISCONNECT', routeKey: '$disconnect', disconnectStatusCode: 1006 });
  });
});

describe('@connections', () => {
  test('POST sends a text message, GET describes the connection, DELETE closes it (then 410 Gone)', async () => {
    const { ws, messages } = await open();
    const id = (lastCall('$connect') as Recorded).event.requestContext.connectionId as string;
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

    await client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"hello":1}') }));
    await until(() => messages.length === 1);
    expect(messages).toEqual(['{"hello":1}']);

    const info = await client.send(new GetConnectionCommand({ ConnectionId: id }));
    expect(info.Identity?.SourceIp).toBe('127.0.0.1');
    expect(info.ConnectedAt).toBeInstanceOf(Date);

    await client.send(new DeleteConnectionCommand({ ConnectionId: id }));
    expect(await closed).toBe(1000);
    await until(() => calls.some((c) => c.routeKey === '$disconnect' && c.event.requestContext.connectionId === id));
    await expect(client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('late') }))).rejects.toBeInstanceOf(GoneException);
  });

  test('an unknown connection is GoneException for POST, GET and DELETE', async () => {
    const id = 'AAAAAAAAAAAAAAA=';
    await expect(client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') }))).rejects.toBeInstanceOf(GoneException);
    await expect(client.send(new GetConnectionCommand({ ConnectionId: id }))).rejects.toBeInstanceOf(GoneException);
    await expect(client.send(new DeleteConnectionCommand({ ConnectionId: id }))).rejects.toBeInstanceOf(GoneException);
  });

  /** Opens a connection whose `$connect` waits for `release()` and then answers `statusCode`. */
  async function connecting(statusCode: number): Promise<{ ws: WebSocket; id: string; release: () => void }> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let connectingId: string | undefined;
    onConnect = async (event) => {
      connectingId = event.requestContext.connectionId as string;
      await released;
      return { statusCode };
    };
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    sockets.push(ws);
    await until(() => connectingId !== undefined);
    return { ws, id: connectingId as string, release };
  }

  test('posts that arrive while $connect runs are held and delivered in order once the socket is open', async () => {
    const { ws, id, release } = await connecting(200);
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(d.toString()));
    const before = postsReceived;
    const posts = [1, 2, 3].map((n) => client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from(`m${n}`) })));
    // The endpoint has all three while `$connect` still runs: they are held, not answered 410 and not lost.
    await until(() => postsReceived === before + 3);
    expect(messages).toEqual([]);
    release();
    await Promise.all(posts);
    await until(() => messages.length === 3);
    expect(messages).toEqual(['m1', 'm2', 'm3']);
  });

  test('posts held for a $connect that then refuses are answered 410', async () => {
    const { ws, id, release } = await connecting(401);
    ws.on('unexpected-response', (req) => req.destroy());
    ws.on('error', () => {});
    const before = postsReceived;
    const post = client.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') }));
    await until(() => postsReceived === before + 1); // held while `$connect` runs
    release();
    await expect(post).rejects.toBeInstanceOf(GoneException);
  });
});

describe('HTTP API', () => {
  async function call(method: string, path: string, body?: string, headers: Record<string, string> = {}) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, body, headers });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  test('a matched route gets a payload v2 event', async () => {
    const res = await call('PUT', '/v1/clusters/c%2D1/nodes/n1?b=2&a=1&a=3', '{"x":1}', { 'X-Custom': 'Yes', Cookie: 'k=v; j=w' });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-echo')).toBe('yes');
    expect(res.headers.get('set-cookie')).toBe('a=1');
    expect(res.headers.get('apigw-requestid')).toMatch(/^[A-Za-z0-9]{15}=$/);
    const event = JSON.parse(res.text) as APIGatewayProxyEventV2;
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'PUT /v1/clusters/{clusterId}/nodes/{nodeId}',
      rawPath: '/v1/clusters/c%2D1/nodes/n1',
      rawQueryString: 'b=2&a=1&a=3',
      queryStringParameters: { a: '1,3', b: '2' },
      pathParameters: { clusterId: 'c-1', nodeId: 'n1' },
      cookies: ['k=v', 'j=w'],
      body: '{"x":1}',
      isBase64Encoded: false,
      requestContext: {
        accountId: '000000000000',
        apiId: 'local',
        domainName: `127.0.0.1:${port}`,
        routeKey: 'PUT /v1/clusters/{clusterId}/nodes/{nodeId}',
        stage: '$default',
        http: { method: 'PUT', path: '/v1/clusters/c%2D1/nodes/n1', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
      },
    });
    expect(event.headers['x-custom']).toBe('Yes');
    expect(event.headers.cookie).toBeUndefined();
    expect(typeof event.requestContext.timeEpoch).toBe('number');
    expect(event.requestContext.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
    expect(event.requestContext.requestId).toBe(res.headers.get('apigw-requestid'));
  });

  test('unmatched requests go to the $default module', async () => {
    const res = await call('GET', '/nowhere');
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ routeKey: '$default' });
    expect(JSON.parse((await call('PATCH', '/v1/clusters/c/nodes/n')).text)).toEqual({ routeKey: '$default' });
  });

  test('base64 bodies are decoded, and a result without statusCode is a 200 JSON response', async () => {
    const list = await call('GET', '/v1/clusters/c/nodes');
    expect(list.text).toBe('hello');
    const clusters = await call('GET', '/v1/clusters');
    expect(clusters.status).toBe(200);
    expect(JSON.parse(clusters.text)).toEqual({ clusters: [] });
    expect((await call('DELETE', '/v1/clusters/c/nodes/n')).status).toBe(204);
  });

  test('a handler that throws or returns something invalid is the opaque 500, never a stack trace', async () => {
    for (const [method, path] of [
      ['POST', '/v1/clusters/c/nodes/n/keepalive'],
      ['GET', '/v1/clusters/c/nodes/n'],
      ['GET', '/v1/health'],
    ] as const) {
      const res = await call(method, path);
      expect(res.status, path).toBe(500);
      expect(JSON.parse(res.text)).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
      expect(res.text).not.toContain('secret');
    }
  });

  test('a body over the limit is refused with 413 while it is still being sent', async () => {
    const result = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
      let sent = 0;
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/v1/clusters/c/nodes/n', headers: { 'content-type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }));
      });
      req.on('error', reject);
      // A chunked body without Content-Length, far over the 1 KiB limit of this server.
      const chunk = Buffer.alloc(16 * 1024, 'a');
      const pump = () => {
        while (sent < 50 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body exceeds 1024 bytes' } });
    // The answer came long before the whole 50 MiB was sent.
    expect(result.sent).toBeLessThan(50 * 1024 * 1024);
    expect((await call('GET', '/v1/clusters')).status).toBe(200);
  });

  test('a declared Content-Length over the limit is refused before the body is read', async () => {
    const res = await call('PUT', '/v1/clusters/c/nodes/n', 'x'.repeat(2000));
    expect(res.status).toBe(413);
    expect(JSON.parse(res.text).error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('idle connections', () => {
  test('a connection with no activity for the idle timeout is closed with 1001; messages keep it open', async () => {
    const idleTimeoutMs = 1000;
    const idle = new WebSocketApi({
      log: silentLog,
      apiId: 'local',
      stage: 'local',
      limits: { idleTimeoutMs },
      routeSelectionExpression: '$request.body.action',
      routes: wsRoutesOf([
        ['$connect', async () => ({ statusCode: 200 })],
        ['$disconnect', async () => ({ statusCode: 200 })],
        ['$default', async () => ({ statusCode: 200 })],
      ]),
    });
    const idleServer = createServer();
    idleServer.on('upgrade', (req, socket, head) => void idle.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => idleServer.listen(0, '127.0.0.1', resolve));
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${(idleServer.address() as AddressInfo).port}/ws`);
      sockets.push(ws);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      // Three idle timeouts' worth of messages, one every fifth of the timeout: still open.
      let lastSent = 0;
      for (let i = 0; i < 15; i++) {
        ws.send('{"action":"anything"}');
        lastSent = Date.now();
        await new Promise((resolve) => setTimeout(resolve, idleTimeoutMs / 5));
      }
      expect(ws.readyState).toBe(WebSocket.OPEN);
      // Then silence: closed as Going away, no sooner than the timeout after the last message.
      expect(await closed).toBe(1001);
      expect(Date.now() - lastSent).toBeGreaterThanOrEqual(idleTimeoutMs - 50);
    } finally {
      await idle.closeAll(500);
      idleServer.closeAllConnections();
      await new Promise((resolve) => idleServer.close(resolve));
    }
  });
});
