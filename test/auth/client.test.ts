/**
 * The SDK and the CLI against the local runtime with `--auth`: a refused
 * token (401 or 403, on the handshake or over HTTP) is terminal — start()
 * rejects, or a running client reports `lost`/`closed` with the error — and
 * never retried forever; a good token works end to end.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RosterClient, RosterClientError } from '@roster/client';
import { record } from '../client/helpers.ts';
import { runCli, type Finished } from '../support/processes.ts';
import { call, startAuthRuntime, wronglySigned, type AuthRuntime } from './support.ts';

let rt: AuthRuntime;
beforeAll(async () => {
  rt = await startAuthRuntime();
});
afterAll(async () => {
  await rt?.stop();
});

const cluster = () => `cl-${randomUUID().slice(0, 8)}`;
const fastBackoff = { delay: () => 50 };

async function startError(client: RosterClient): Promise<RosterClientError> {
  const started = Date.now();
  try {
    await client.start();
  } catch (err) {
    expect(err).toBeInstanceOf(RosterClientError);
    // Refused at once: no retry loop before giving up.
    expect(Date.now() - started).toBeLessThan(5000);
    return err as RosterClientError;
  }
  throw new Error('start() resolved');
}

describe('RosterClient', () => {
  test('with a good node token: registers, binds, syncs, and deregisters on stop', async () => {
    const c = cluster();
    const client = new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId: c, nodeId: 'n1', token: await rt.mint(c, 'node'), backoff: fastBackoff });
    await client.start();
    expect(client.nodes().map((n) => n.nodeId)).toEqual(['n1']);
    await client.stop();
    const after = await call(rt.httpUrl, 'GET', `/v1/clusters/${c}/nodes/n1`, { token: await rt.mint(c, 'reader') });
    expect(after.body).toMatchObject({ node: { status: 'DOWN', downReason: 'deregistered' } });
  });

  test('a watcher whose token is wrongly signed: start() rejects with UNAUTHORIZED (the handshake\'s 401) and the client is closed', async () => {
    const c = cluster();
    const client = new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId: c, token: await wronglySigned(c, 'reader'), backoff: fastBackoff });
    const error = await startError(client);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect(client.state).toBe('closed');
  });

  test('a node with a reader token: start() rejects with FORBIDDEN; without a token, with UNAUTHORIZED (API Gateway\'s own 401)', async () => {
    const c = cluster();
    const reader = new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId: c, nodeId: 'n1', token: await rt.mint(c, 'reader'), backoff: fastBackoff });
    expect(await startError(reader)).toMatchObject({ code: 'FORBIDDEN', status: 403 });
    const anonymous = new RosterClient({ httpUrl: rt.httpUrl, wsUrl: rt.wsUrl, clusterId: c, nodeId: 'n1', backoff: fastBackoff });
    expect(await startError(anonymous)).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect((await call(rt.httpUrl, 'GET', `/v1/clusters/${c}/nodes?status=all`, { token: await rt.mint(c, 'reader') })).body).toMatchObject({ nodes: [] });
  });

  test('a running node whose token expires: the next refused keepalive is terminal — lost (unauthorized), then closed with the error', async () => {
    const c = cluster();
    const client = new RosterClient({
      httpUrl: rt.httpUrl,
      wsUrl: rt.wsUrl,
      clusterId: c,
      nodeId: 'n1',
      token: await rt.mint(c, 'node', { ttlSeconds: 3 }),
      keepaliveIntervalMs: 300,
      leaseSeconds: 30,
      backoff: fastBackoff,
    });
    const events = record(client);
    await client.start();
    const closed = new Promise<void>((resolve) => client.on('closed', () => resolve()));
    await closed;
    const lost = events.of('lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ reason: 'unauthorized', error: { code: 'UNAUTHORIZED' } });
    expect(events.of('closed')).toEqual([{ type: 'closed', deregistered: false, error: expect.objectContaining({ code: 'UNAUTHORIZED' }) }]);
    // It stopped: one refused keepalive, not a retry loop.
    expect(events.of('keepaliveFailed')).toHaveLength(1);
    expect(client.state).toBe('closed');
  }, 20_000);
});

describe('the CLI', () => {
  const cli = (args: string[], env: Record<string, string>): Promise<Finished> =>
    runCli([...args, '--url', rt.httpUrl, '--ws-url', rt.wsUrl], { env, timeoutMs: 20_000, killSignal: 'SIGKILL' });

  test('takes the token from ROSTER_TOKEN or --token; a refused one is one line on stderr and exit 1, not a retry loop', async () => {
    const c = cluster();
    const writer = await rt.mint(c, 'admin');
    expect((await call(rt.httpUrl, 'PUT', `/v1/clusters/${c}/nodes/n1`, { token: writer, body: {} })).status).toBe(201);
    const listed = await cli(['nodes', c, '--json'], { ROSTER_TOKEN: await rt.mint(c, 'reader') });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ clusterId: c, nodes: [{ nodeId: 'n1' }] });

    const other = await cli(['nodes', c, '--token', await rt.mint('elsewhere', 'reader')], {});
    expect(other.code).toBe(1);
    expect(other.stderr.trim().split('\n')).toHaveLength(1);
    expect(other.stderr).toMatch(/^roster nodes: .*cluster/);

    const agent = await cli(['agent', c, 'n2'], { ROSTER_TOKEN: await rt.mint(c, 'reader') });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/^roster agent: /);
  }, 60_000);
});
