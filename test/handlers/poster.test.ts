/**
 * The fan-out's poster (functions/core/poster.ts): PostToConnection
 * as one signed request. Checked against a loopback HTTP endpoint that plays
 * API Gateway's part — it verifies the SigV4 signature with the same secret,
 * and answers what the test scripts (410, throttling, 5xx) — and against the
 * local runtime's own `@connections` endpoint with real WebSockets.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createManagementClient } from '../../functions/core/aws.ts';
import { posterFor, payloadOf, type Poster } from '../../functions/core/poster.ts';
import { PostSigner } from '../../functions/core/post-signer.ts';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };
const region = 'eu-west-1';

interface Received {
  /** The client's port: one per connection it opened. */
  socket: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  signatureValid: boolean;
}

let server: Server;
let port: number;
const received: Received[] = [];
/** Status to answer for each request, in order; 200 once it runs out. */
let script: number[] = [];

/** Checks the payload hash and recomputes the signature with the shared secret, as API Gateway's IAM authorization does. */
async function verify(req: IncomingMessage, body: Buffer): Promise<boolean> {
  if (req.headers['x-amz-content-sha256'] !== createHash('sha256').update(body).digest('hex')) return false;
  const auth = String(req.headers.authorization ?? '');
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) headers[name] = String(req.headers[name] ?? '');
  const url = new URL(req.url ?? '/', 'http://x');
  // The SDK's own hash implementation, from a client's configuration.
  const sha256 = new ApiGatewayManagementApiClient({ region, credentials }).config.sha256;
  const signer = new SignatureV4({ service: 'execute-api', region, credentials, sha256 });
  const date = String(req.headers['x-amz-date'] ?? '');
  const signingDate = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const again = await signer.sign(
    { method: req.method ?? 'POST', protocol: 'http:', hostname: '127.0.0.1', port, path: url.pathname, query: {}, headers, body },
    { signingDate },
  );
  return again.headers.authorization === auth;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void verify(req, body).then((signatureValid) => {
        received.push({ socket: req.socket.remotePort ?? 0, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: body.toString(), signatureValid });
        const status = script.shift() ?? 200;
        if (status === 410) res.setHeader('x-amzn-ErrorType', 'GoneException');
        res.writeHead(status).end(status === 200 ? '' : '{"message":"scripted"}');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

let api: Poster | undefined;
afterEach(() => {
  api?.close();
  received.length = 0;
  script = [];
});

function poster(options: { maxSockets?: number } = {}): Poster {
  const url = `http://127.0.0.1:${port}/live`;
  api = posterFor(new ApiGatewayManagementApiClient({ endpoint: url, region, credentials }), url, options);
  return api;
}

describe('the signature', () => {
  const sha256 = new ApiGatewayManagementApiClient({ region, credentials }).config.sha256;
  const body = Buffer.from('{"type":"NODE_UPDATED"}');
  const hash = createHash('sha256').update(body).digest('hex');
  const host = 'abc123.execute-api.eu-west-1.amazonaws.com';

  it.each([
    ['long-term credentials', credentials],
    ['temporary credentials (a session token)', { ...credentials, sessionToken: 'IQoJb3JpZ2luX2VjE+/abc==' }],
  ])('is the one SignatureV4 computes, with %s', async (_, creds) => {
    const signer = new PostSigner({ region: () => Promise.resolve(region), credentials: () => Promise.resolve(creds), sha256 });
    const reference = new SignatureV4({ service: 'execute-api', region, credentials: creds, sha256 });
    for (const id of ['L0SM9cOFvHcCIhw=', 'a+b/c d*(e)!']) {
      const path = `/live/@connections/${encodeURIComponent(id)}`;
      const date = new Date('2026-11-30T10:15:00.123Z');
      const mine = await signer.headers(host, path, hash, date);
      const theirs = await reference.sign(
        { method: 'POST', protocol: 'https:', hostname: host, path, query: {}, headers: { host, 'x-amz-content-sha256': hash }, body },
        { signingDate: date },
      );
      expect(mine, id).toEqual(theirs.headers);
    }
  });
});

describe('PostToConnection as one signed request', () => {
  it('POSTs the bytes to {stage}/@connections/{id} with a SigV4 signature for execute-api that verifies', async () => {
    const outcome = await poster().post('L0SM9cOFvHcCIhw=', payloadOf('{"type":"NODE_DOWN"}'));
    expect(outcome).toBe('delivered');
    expect(received).toHaveLength(1);
    const [req] = received;
    expect(req).toMatchObject({ method: 'POST', path: '/live/@connections/L0SM9cOFvHcCIhw%3D', body: '{"type":"NODE_DOWN"}', signatureValid: true });
    expect(req?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-1\/execute-api\/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$/);
  });

  // What the poster relies on undici for, through its documented `Pool.request`: the signed `host` header sent
  // as given (above: the signature verifies), `content-length` from the body, and a connection freed for the
  // next post once an answer's body (an error document too) is dumped. An upgrade that changes one fails here.
  it('keeps its connections: 60 posts, answers with error documents among them, over the 3 sockets it may open', async () => {
    script = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? 410 : i % 3 === 1 ? 429 : 200));
    const api = poster({ maxSockets: 3 });
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => api.post(`c${i}`, payloadOf('{"type":"NODE_DOWN"}'))));
    expect(outcomes.filter((o) => o === 'failed')).toEqual([]);
    expect(received).toHaveLength(60);
    expect(new Set(received.map((r) => r.socket)).size).toBeLessThanOrEqual(3);
    expect(received.every((r) => r.signatureValid && r.headers['content-length'] === String(Buffer.byteLength('{"type":"NODE_DOWN"}')))).toBe(true);
  });

  it('a tampered body does not verify (the check above can fail)', async () => {
    const payload = payloadOf('{"a":1}');
    await poster().post('abc', { body: Buffer.from('{"a":2}'), sha256: payload.sha256 });
    expect(received[0]?.signatureValid).toBe(false);
  });

  it('410 is gone, without a retry', async () => {
    script = [410];
    expect(await poster().post('abc', payloadOf('x'))).toBe('gone');
    expect(received).toHaveLength(1);
  });

  it('5xx is retried once (two attempts, the SDK client setting), then fails', async () => {
    script = [503, 200];
    expect(await poster().post('abc', payloadOf('x'))).toBe('delivered');
    expect(received).toHaveLength(2);
    received.length = 0;
    script = [500, 503];
    expect(await (api as Poster).post('abc', payloadOf('x'))).toBe('failed');
    expect(received).toHaveLength(2);
  });

  it('429 is reported throttled at once, for the caller to retry that connection after a backoff', async () => {
    script = [429];
    expect(await poster().post('abc', payloadOf('x'))).toBe('throttled');
    expect(received).toHaveLength(1);
  });

  it('other client errors fail at once', async () => {
    script = [403];
    expect(await poster().post('abc', payloadOf('x'))).toBe('failed');
    expect(received).toHaveLength(1);
  });

  it('an endpoint that is down is a failure, not a crash', async () => {
    const url = 'http://127.0.0.1:9/live';
    const down = posterFor(createManagementClient(url, true), url, { maxAttempts: 1 });
    try {
      expect(await down.post('abc', payloadOf('x'))).toBe('failed');
    } finally {
      down.close();
    }
  });

  it('an endpoint that never answers is a failed attempt after timeoutMs, not a hang', async () => {
    const silent = createServer(() => undefined); // takes the request, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/live`;
    const slow = posterFor(createManagementClient(url, true), url, { maxAttempts: 1, timeoutMs: 300 });
    try {
      expect(await slow.post('abc', payloadOf('x'))).toBe('failed');
    } finally {
      slow.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
