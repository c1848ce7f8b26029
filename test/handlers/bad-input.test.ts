/**
 * Every bad input gets the contract's 4xx and error code, writes nothing,
 * and never shows a stack trace.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { invokeHttp, wsConnect, wsMessage, type HttpRequest } from '../support/events.ts';
import { createTestTable, type TestTable } from '../support/table.ts';

let table: TestTable;
const C = 'bad-input';
const NODE = `/v1/clusters/${C}/nodes/n1`;

beforeAll(async () => {
  table = await createTestTable();
  // One valid node and one connection, so "nothing changed" also covers updates to existing items.
  expect((await invokeHttp({ method: 'PUT', path: NODE, body: { metadata: { a: 'b' } } })).status).toBe(201);
  expect((await wsConnect('conn-bad-input', { clusterId: C })).statusCode).toBe(200);
});

const manyKeys = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
const bigValue = { k: 'x'.repeat(4097) };

interface HttpCase {
  name: string;
  req: HttpRequest;
  status: number;
  code: string;
}

const httpCases: HttpCase[] = [
  { name: 'clusterId with a forbidden character', req: { method: 'PUT', path: '/v1/clusters/bad!id/nodes/n1' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'clusterId longer than 64 characters', req: { method: 'PUT', path: `/v1/clusters/${'c'.repeat(65)}/nodes/n1` }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'nodeId with an encoded space', req: { method: 'PUT', path: `/v1/clusters/${C}/nodes/a%20b` }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'nodeId with unicode', req: { method: 'POST', path: `/v1/clusters/${C}/nodes/${encodeURIComponent('nöde')}/keepalive` }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata value that is a number', req: { method: 'PUT', path: NODE, body: { metadata: { a: 1 } } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata value that is an object', req: { method: 'PUT', path: NODE, body: { metadata: { a: { b: 'c' } } } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata that is an array', req: { method: 'PUT', path: NODE, body: { metadata: ['a'] } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata with 33 keys', req: { method: 'PUT', path: NODE, body: { metadata: manyKeys } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata over 4 KiB', req: { method: 'PUT', path: NODE, body: { metadata: bigValue } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata with an empty key', req: { method: 'PUT', path: NODE, body: { metadata: { '': 'v' } } }, status: 400, code: 'VALIDATION_FAILED' },
  // Found by the fuzzer (test/auth/fuzz.test.ts): copied into a plain object, "__proto__" set the prototype and the store answered 500.
  { name: 'metadata with a "__proto__" key holding an object', req: { method: 'PUT', path: NODE, rawBody: '{"metadata":{"__proto__":{"a":"b"}}}' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata with a "__proto__" key holding a string', req: { method: 'PUT', path: NODE, rawBody: '{"metadata":{"__proto__":"x","a":"b"}}' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'leaseSeconds below 2', req: { method: 'PUT', path: NODE, body: { leaseSeconds: 1 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'leaseSeconds above 3600', req: { method: 'PUT', path: NODE, body: { leaseSeconds: 3601 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'leaseSeconds as a string', req: { method: 'PUT', path: NODE, body: { leaseSeconds: '15' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'leaseSeconds not whole', req: { method: 'PUT', path: NODE, body: { leaseSeconds: 2.5 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'incarnation zero', req: { method: 'PUT', path: NODE, body: { incarnation: 0 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown body field', req: { method: 'PUT', path: NODE, body: { status: 'DOWN' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'malformed JSON', req: { method: 'PUT', path: NODE, rawBody: '{"metadata": ' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'JSON array body', req: { method: 'PUT', path: NODE, rawBody: '[1,2]' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'JSON string body', req: { method: 'PUT', path: NODE, rawBody: '"hello"' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'JSON null body', req: { method: 'POST', path: `${NODE}/keepalive`, rawBody: 'null' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'keepalive incarnation of the wrong type', req: { method: 'POST', path: `${NODE}/keepalive`, body: { incarnation: 'x' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'body over the size limit', req: { method: 'PUT', path: NODE, rawBody: JSON.stringify({ metadata: { k: 'x'.repeat(20_000) } }) }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'status filter that is not up or all', req: { method: 'GET', path: `/v1/clusters/${C}/nodes`, query: { status: 'down' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown query parameter', req: { method: 'GET', path: `/v1/clusters/${C}/nodes`, query: { page: '5' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'register with a query parameter it does not take', req: { method: 'PUT', path: NODE, query: { lease: '30' }, body: {} }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'keepalive with a query parameter it does not take', req: { method: 'POST', path: `${NODE}/keepalive`, query: { incarnation: '1' }, body: {} }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'deregister incarnation that is not a number', req: { method: 'DELETE', path: NODE, query: { incarnation: 'abc' } }, status: 400, code: 'VALIDATION_FAILED' },
  // Every route refuses a query parameter it does not take (HTTP_ROUTES[].query), the public ones too.
  { name: 'deregister with a query parameter it does not take', req: { method: 'DELETE', path: NODE, query: { incarnation: '1', force: 'true' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'get of one node with the list\'s status parameter', req: { method: 'GET', path: NODE, query: { status: 'all' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'list with the deregister\'s incarnation parameter', req: { method: 'GET', path: `/v1/clusters/${C}/nodes`, query: { incarnation: '1' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'clusters with a query parameter', req: { method: 'GET', path: '/v1/clusters', query: { page: '5' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'health with a query parameter', req: { method: 'GET', path: '/v1/health', query: { foo: '1' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'the OpenAPI document with a query parameter', req: { method: 'GET', path: '/v1/openapi.json', query: { v: '2' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown route', req: { method: 'GET', path: '/v1/nodes' }, status: 404, code: 'NOT_FOUND' },
  { name: 'unknown API version', req: { method: 'GET', path: '/v2/health' }, status: 404, code: 'NOT_FOUND' },
  { name: 'method the route does not have', req: { method: 'PATCH', path: NODE, body: {} }, status: 405, code: 'METHOD_NOT_ALLOWED' },
  { name: 'POST to the collection', req: { method: 'POST', path: `/v1/clusters/${C}/nodes`, body: {} }, status: 405, code: 'METHOD_NOT_ALLOWED' },
];

function expectNoInternals(text: string): void {
  expect(text).not.toMatch(/\bat .+\(.+:\d+:\d+\)|node_modules|\.ts:\d+|Exception|stack/i);
}

describe('bad HTTP input', () => {
  it.each(httpCases)('$name → $status $code, nothing written', async ({ req, status, code }) => {
    const before = await table.snapshot();
    const res = await invokeHttp(req);
    expect(res.status).toBe(status);
    expect(res.json).toMatchObject({ error: { code, message: expect.any(String) } });
    expectNoInternals(res.text);
    expect(await table.snapshot()).toEqual(before);
  });

  it('answers 405 with an Allow header naming the methods the path has', async () => {
    const res = await invokeHttp({ method: 'PATCH', path: NODE });
    expect(res.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'PUT']);
  });
});

interface WsCase {
  name: string;
  send: () => Promise<{ statusCode: number; body?: string }>;
  status: number;
  code: string;
}

const wsCases: WsCase[] = [
  { name: '$connect with an invalid clusterId', send: () => wsConnect('conn-x1', { clusterId: 'no/slash' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: '$connect binding a node without a cluster', send: () => wsConnect('conn-x2', { nodeId: 'n1' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: '$connect with an incarnation that is not a number', send: () => wsConnect('conn-x3', { clusterId: C, nodeId: 'n1', incarnation: '1e3' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: '$connect with an incarnation but no node', send: () => wsConnect('conn-x4', { clusterId: C, incarnation: '1' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: '$connect with a query parameter it does not take', send: () => wsConnect('conn-x5', { clusterId: C, foo: '1' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: '$connect with a misspelt nodeId', send: () => wsConnect('conn-x6', { clusterId: C, nodeid: 'n1' }), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'subscribe with an invalid clusterId', send: () => wsMessage('conn-bad-input', '{"action":"subscribe","clusterId":"a b"}'), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'subscribe without a clusterId', send: () => wsMessage('conn-bad-input', '{"action":"subscribe"}'), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'a message that is not JSON', send: () => wsMessage('conn-bad-input', 'subscribe c1'), status: 400, code: 'VALIDATION_FAILED' },
  { name: 'an unknown action', send: () => wsMessage('conn-bad-input', '{"action":"delete-everything"}'), status: 404, code: 'NOT_FOUND' },
  { name: 'an oversized message', send: () => wsMessage('conn-bad-input', JSON.stringify({ action: 'ping', pad: 'x'.repeat(5000) })), status: 413, code: 'PAYLOAD_TOO_LARGE' },
];

describe('bad WebSocket input', () => {
  it.each(wsCases)('$name → $status $code, nothing written', async ({ send, status, code }) => {
    const before = await table.snapshot();
    const res = await send();
    expect(res.statusCode).toBe(status);
    expect(JSON.parse(res.body ?? '{}')).toMatchObject({ type: 'ERROR', error: { code } });
    expectNoInternals(res.body ?? '');
    expect(await table.snapshot()).toEqual(before);
  });
});

describe('odd but valid input', () => {
  // Found by the fuzzer (test/auth/fuzz.test.ts): the DynamoDB marshaller took a map with a "constructor"
  // key for a class instance and the registration failed with 500. Any key of 1-128 characters is valid metadata.
  it('stores metadata whose keys are JavaScript property names, and returns them as given', async () => {
    const metadata = { constructor: 'c', toString: 't', hasOwnProperty: 'h', valueOf: 'v', prototype: 'p' };
    const created = await invokeHttp({ method: 'PUT', path: `/v1/clusters/${C}/nodes/odd-keys`, body: { metadata } });
    expect(created.status, created.text).toBe(201);
    expect((created.json as { node: { metadata: unknown } }).node.metadata).toEqual(metadata);
    const read = await invokeHttp({ method: 'GET', path: `/v1/clusters/${C}/nodes/odd-keys` });
    expect((read.json as { node: { metadata: unknown } }).node.metadata).toEqual(metadata);
  });
});
