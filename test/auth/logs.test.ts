/**
 * Tokens and the secret never reach a log: the local runtime with `--auth
 * --verbose` (every request logged, handlers at INFO) is driven with valid,
 * refused and expired tokens over HTTP and WebSocket (where the token is in
 * the query string), with failing requests among them; then its whole output
 * is searched.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import { call, expiredWith, startAuthRuntime, wronglySigned, type AuthRuntime } from './support.ts';

let rt: AuthRuntime;
beforeAll(async () => {
  rt = await startAuthRuntime(['--verbose']);
});
afterAll(async () => {
  await rt?.stop();
});

/** Opens a WebSocket, sends `messages`, waits for as many replies (or the refusal), and closes. */
async function wsSession(query: Record<string, string>, messages: string[]): Promise<number> {
  const ws = new WebSocket(`${rt.wsUrl}?${new URLSearchParams(query).toString()}`);
  ws.on('error', () => {});
  return new Promise((resolve) => {
    let replies = 0;
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve(res.statusCode ?? 0);
    });
    ws.once('open', () => {
      for (const m of messages) ws.send(m);
      if (messages.length === 0) ws.close();
    });
    ws.on('message', () => {
      if (++replies === messages.length) ws.close();
    });
    ws.once('close', () => resolve(101));
  });
}

test('no token, no part of a token and not the secret appear in stdout or stderr, whatever the requests', async () => {
  const cluster = `logs-${randomUUID().slice(0, 8)}`;
  const node = await rt.mint(cluster, 'node', { sub: 'node-under-test' });
  const reader = await rt.mint(cluster, 'reader');
  const other = await rt.mint('someone-else', 'admin');
  const expired = await expiredWith(rt.secret, cluster, 'node');
  const forged = await wronglySigned(cluster, 'admin');
  const tokens = [node, reader, other, expired, forged];

  // HTTP: allowed, refused, forbidden, failing after the check, and a token where no token belongs.
  expect((await call(rt.httpUrl, 'PUT', `/v1/clusters/${cluster}/nodes/n1`, { token: node, body: { metadata: { a: 'b' } } })).status).toBe(201);
  expect((await call(rt.httpUrl, 'POST', `/v1/clusters/${cluster}/nodes/n1/keepalive`, { token: node, body: {} })).status).toBe(200);
  expect((await call(rt.httpUrl, 'POST', `/v1/clusters/${cluster}/nodes/nope/keepalive`, { token: node, body: {} })).status).toBe(404);
  expect((await call(rt.httpUrl, 'PUT', `/v1/clusters/${cluster}/nodes/n2`, { token: node, body: { bogus: true } })).status).toBe(400);
  expect((await call(rt.httpUrl, 'GET', `/v1/clusters/${cluster}/nodes`, { token: reader })).status).toBe(200);
  expect((await call(rt.httpUrl, 'PUT', `/v1/clusters/${cluster}/nodes/n3`, { token: reader, body: {} })).status).toBe(403);
  expect((await call(rt.httpUrl, 'GET', '/v1/clusters', { token: other })).status).toBe(403);
  expect((await call(rt.httpUrl, 'GET', `/v1/clusters/${cluster}/nodes`, { token: expired })).status).toBe(401);
  expect((await call(rt.httpUrl, 'GET', `/v1/clusters/${cluster}/nodes`, { token: forged })).status).toBe(401);
  expect((await call(rt.httpUrl, 'GET', `/v1/clusters/${cluster}/nodes?token=${node}`, { token: node })).status).toBe(400);
  expect((await call(rt.httpUrl, 'GET', `/v1/nothing?token=${node}`, { token: node })).status).toBe(404);
  expect((await call(rt.httpUrl, 'DELETE', `/v1/clusters/${cluster}/nodes/n1`, { token: node })).status).toBe(204);

  // WebSocket: the token is in the query string of the upgrade request.
  expect(await wsSession({ clusterId: cluster, token: reader }, ['{"action":"ping"}', '{"action":"subscribe","clusterId":"x"}', 'not json'])).toBe(101);
  expect(await wsSession({ clusterId: cluster, nodeId: 'missing', token: node }, [])).toBe(404);
  expect(await wsSession({ clusterId: cluster, nodeId: 'n1', token: reader }, [])).toBe(403);
  expect(await wsSession({ clusterId: cluster, token: expired }, [])).toBe(401);
  expect(await wsSession({ clusterId: cluster, token: forged }, [])).toBe(401);
  expect(await wsSession({ clusterId: 'bad id!', token: node }, [])).toBe(400);

  expect(await rt.stop()).toBe(0);
  const output = rt.runtime.output();
  // The log was really on: requests and refusals were logged.
  expect(output).toMatch(/roster debug: PUT \/v1\/clusters\/\S+\/nodes\/n1 -> 201/);
  expect(output).toMatch(/token refused/);
  for (const token of tokens) {
    const [, payload, signature] = token.split('.');
    expect(output).not.toContain(token);
    expect(output).not.toContain(payload);
    expect(output).not.toContain(signature);
  }
  expect(output).not.toContain(rt.secret);
  // The one token the runtime prints is its own admin token, once, on stdout, because --auth asks for it.
  expect(output.match(/Admin token (\S+)/g)).toHaveLength(1);
});
