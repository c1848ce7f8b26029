/**
 * The client's lifecycle (start, stop, dispose, the event iterator) against
 * the local runtime, and the token plumbing against a capturing server
 * (the runtime has no auth yet).
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../support/wait.ts';
import { WebSocketServer } from 'ws';
import { listNodes, listNodesIfChanged, RosterClient, RosterLease, type ClientEvent, type LostEvent, type RosterClientError } from '@roster/client';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { getNodeDirect, ids, registerDirect, uniqueCluster } from './helpers.ts';

describe('lifecycle', () => {
  let runtime: SpawnedRuntime;
  beforeAll(async () => {
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint') });
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  const options = (clusterId: string, nodeId?: string) => ({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, nodeId });

  it('stop() deregisters once, may be called twice, and ends every event iterator after `closed`', async () => {
    const clusterId = uniqueCluster('life');
    const client = new RosterClient(options(clusterId, 'n1'));
    const seen: ClientEvent['type'][] = [];
    const iterating = (async () => {
      for await (const event of client.events()) seen.push(event.type);
    })();
    await client.start();
    expect(client.state).toBe('connected');
    expect(client.node('n1')?.status).toBe('UP');

    const closed = new Promise<ClientEvent>((resolve) => client.on('closed', resolve));
    await Promise.all([client.stop(), client.stop()]);
    await client.stop();
    await iterating; // ends by itself
    expect(seen.at(-1)).toBe('closed');
    expect(await closed).toEqual({ type: 'closed', deregistered: true });
    expect(seen.filter((t) => t === 'closed')).toHaveLength(1);
    expect(client.state).toBe('closed');
    expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
    await expect(client.start()).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('a WebSocket URL where the server has no WebSocket API fails start() with the server\'s reason, not NODE_NOT_FOUND', async () => {
    const clusterId = uniqueCluster('wrong-url');
    // The local runtime's WebSocket API is at /ws; at / it answers the upgrade 404 NOT_FOUND, saying so.
    const client = new RosterClient({ ...options(clusterId, 'n1'), wsUrl: runtime.wsUrl.replace(/\/ws$/, '') });
    const closed = new Promise<ClientEvent>((resolve) => client.on('closed', resolve));
    await expect(client.start()).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404, message: expect.stringMatching(/: no WebSocket API at \/; use \/ws \(HTTP 404\)$/) });
    // It had registered over HTTP first, and says that stopping deregistered it.
    expect(await closed).toEqual({ type: 'closed', deregistered: true });
    expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
    // A watcher never registered anything: nothing to deregister.
    const watcher = new RosterClient(options(clusterId));
    const watcherClosed = new Promise<ClientEvent>((resolve) => watcher.on('closed', resolve));
    await watcher.start();
    await watcher.stop();
    expect(await watcherClosed).toEqual({ type: 'closed', deregistered: false });
  });

  it('`await using` stops the client at the end of the scope', async () => {
    const clusterId = uniqueCluster('dispose');
    let inScope: RosterClient | undefined;
    {
      await using client = new RosterClient(options(clusterId, 'n1'));
      inScope = client;
      await client.start();
      expect(client.state).toBe('connected');
    }
    expect(inScope.state).toBe('closed');
    expect((await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).status).toBe('DOWN');
  });

  it('stop() during start() makes start() reject with CLOSED and leaves the node deregistered', async () => {
    const clusterId = uniqueCluster('early');
    const client = new RosterClient(options(clusterId, 'n1'));
    const starting = client.start();
    const stopping = client.stop();
    await expect(starting).rejects.toMatchObject({ code: 'CLOSED' });
    await stopping;
    // Either the registration never happened, or it did and was undone: never left UP.
    const node = await getNodeDirect(runtime.httpUrl, clusterId, 'n1').catch(() => undefined);
    expect(node?.status ?? 'absent').not.toBe('UP');
  });

  it('replaces its connection at the age limit without the bound node ever going down', async () => {
    const clusterId = uniqueCluster('rotate');
    const client = new RosterClient({ ...options(clusterId, 'n1'), maxConnectionAgeMs: 400, refreshIntervalMs: 0 });
    const reasons: string[] = [];
    const downs: string[] = [];
    client.on('disconnected', (e) => reasons.push(e.reason));
    client.on('down', (e) => downs.push(e.node.nodeId));
    await client.start();
    const registeredRevision = (await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).revision;
    await eventually(() => expect(reasons.length).toBeGreaterThanOrEqual(3), 15_000);
    expect(reasons.every((r) => r.includes('age limit'))).toBe(true);
    await eventually(() => expect(client.stale).toBe(false), 10_000);
    // Rebinding happened within the disconnect grace: no NODE_DOWN, no re-registration.
    expect(downs).toEqual([]);
    expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'UP', revision: registeredRevision });
    await client.stop();
  });

  it('rejects invalid options at construction', () => {
    expect(() => new RosterClient(options('bad cluster'))).toThrow(/clusterId/);
    expect(() => new RosterClient({ ...options('c1', 'n1'), leaseSeconds: 1 })).toThrow(/leaseSeconds/);
    expect(() => new RosterClient({ ...options('c1'), wsUrl: 'http://127.0.0.1:1/ws' })).toThrow(/wsUrl/);
  });

  describe('RosterLease: a node without a connection or a cache', () => {
    const leaseOptions = (clusterId: string, nodeId: string) => ({ httpUrl: runtime.httpUrl, clusterId, nodeId });

    it('registers at start, keeps the node past its lease by keepalives, and deregisters at stop', async () => {
      const clusterId = uniqueCluster('lease');
      const lease = new RosterLease({ ...leaseOptions(clusterId, 'n1'), leaseSeconds: 2, metadata: { role: 'worker' } });
      await lease.start();
      expect(lease.registered).toBe(true);
      const first = await getNodeDirect(runtime.httpUrl, clusterId, 'n1');
      expect(first).toMatchObject({ status: 'UP', metadata: { role: 'worker' }, leaseSeconds: 2, incarnation: lease.incarnation });

      // Three leases later it is still UP, renewed by keepalives alone (no connection binds it).
      await sleep(6000);
      const later = await getNodeDirect(runtime.httpUrl, clusterId, 'n1');
      expect(later.status).toBe('UP');
      expect(Date.parse(later.lastKeepaliveAt)).toBeGreaterThan(Date.parse(first.lastKeepaliveAt));
      expect(later.revision).toBe(first.revision); // keepalives are not events

      expect(await lease.stop()).toBe(true);
      expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
      await expect(lease.start()).rejects.toMatchObject({ code: 'CLOSED' });
    });

    it('a stop during start waits for the registration in flight and deregisters it', async () => {
      const clusterId = uniqueCluster('lease');
      const lease = new RosterLease(leaseOptions(clusterId, 'n1'));
      const starting = lease.start();
      const stopped = lease.stop();
      await starting;
      expect(await stopped).toBe(true);
      expect(lease.registered).toBe(false);
      expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
    });

    it('reports lost, superseded when a newer incarnation registers, and leaves that one alone at stop', async () => {
      const clusterId = uniqueCluster('lease');
      const lease = new RosterLease({ ...leaseOptions(clusterId, 'n1'), leaseSeconds: 3, incarnation: 1 });
      const lost = new Promise<LostEvent>((resolve) => lease.on('lost', resolve));
      const warnings: RosterClientError[] = [];
      lease.on('warning', (error) => warnings.push(error));
      await lease.start();
      await registerDirect(runtime.httpUrl, clusterId, 'n1', { incarnation: 2, leaseSeconds: 60 });
      expect(await lost).toMatchObject({ reason: 'superseded' });
      // Superseded, the node is not this lease's to deregister: nothing is sent.
      expect(await lease.stop()).toBe(false);
      expect(warnings).toEqual([]);
      expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'UP', incarnation: 2 });
    });

    it('refuses bad options at construction and a stale incarnation at start, sending nothing or keeping nothing', async () => {
      const clusterId = uniqueCluster('lease');
      expect(() => new RosterLease(leaseOptions(clusterId, 'bad id'))).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
      expect(() => new RosterLease({ ...leaseOptions(clusterId, 'n1'), leaseSeconds: 1 })).toThrow(/leaseSeconds must be a whole number from 2/);
      expect(() => new RosterLease({ ...leaseOptions(clusterId, 'n1'), httpUrl: 'ws://127.0.0.1:1' })).toThrow(/httpUrl must be an http:\/\/ or https:\/\/ URL/);

      await registerDirect(runtime.httpUrl, clusterId, 'n1', { incarnation: 5 });
      const stale = new RosterLease({ ...leaseOptions(clusterId, 'n1'), incarnation: 4 });
      await expect(stale.start()).rejects.toMatchObject({ code: 'STALE_INCARNATION' });
      expect(stale.registered).toBe(false);
      expect(await stale.stop()).toBe(false);
      expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'UP', incarnation: 5 });
    });

    it('listNodesIfChanged answers not-modified at the list\'s revision, and the new list after a change', async () => {
      const clusterId = uniqueCluster('lease');
      await registerDirect(runtime.httpUrl, clusterId, 'a');
      const list = await listNodes({ httpUrl: runtime.httpUrl, clusterId });
      expect(await listNodesIfChanged({ httpUrl: runtime.httpUrl, clusterId, revision: list.revision })).toBe('not-modified');
      await registerDirect(runtime.httpUrl, clusterId, 'b');
      const changed = await listNodesIfChanged({ httpUrl: runtime.httpUrl, clusterId, revision: list.revision });
      expect(changed).not.toBe('not-modified');
      expect(changed !== 'not-modified' && ids(changed.nodes)).toEqual(['a', 'b']);
      expect(changed !== 'not-modified' && changed.revision).toBe(list.revision + 1);
    });
  });
});

describe('token', () => {
  it('is sent as a bearer token over HTTP and as token= on the WebSocket URL', async () => {
    const httpHeaders: IncomingHttpHeaders[] = [];
    const upgradeUrls: string[] = [];
    const server = createServer((req, res) => {
      httpHeaders.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ clusterId: 'c1', revision: 0, nodes: [] }));
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (_socket, req) => upgradeUrls.push(req.url ?? ''));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const client = new RosterClient({
        httpUrl: `http://127.0.0.1:${port}`,
        wsUrl: `ws://127.0.0.1:${port}/ws`,
        clusterId: 'c1',
        token: 's3cret/+=',
      });
      await client.start();
      await client.stop();
      expect(httpHeaders.length).toBeGreaterThan(0);
      for (const headers of httpHeaders) expect(headers.authorization).toBe('Bearer s3cret/+=');
      expect(upgradeUrls).toHaveLength(1);
      const query = new URL(upgradeUrls[0] ?? '', 'ws://x').searchParams;
      expect(query.get('token')).toBe('s3cret/+=');
      expect(query.get('clusterId')).toBe('c1');
    } finally {
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
