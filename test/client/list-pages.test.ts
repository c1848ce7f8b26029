/**
 * The SDK against the local runtime: it reads a list of many pages as one
 * list at one revision, starts a walk again when the server lost its state
 * in the middle of one (410), and answers a revision that never comes with
 * exactly one resync once the wait for a late event has run out.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RosterClient, listNodes } from '@roster/client';
import { HttpClient } from '../../client/src/http-client.ts';
import { localOverrides } from '../../functions/core/aws.ts';
import { metaKey } from '../../functions/core/model.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { eventually, sleep } from '../support/wait.ts';
import { registerDirect, uniqueCluster } from './helpers.ts';

const table = `roster-pages-${randomUUID().slice(0, 8)}`;
let runtime: SpawnedRuntime;
let db: DynamoDBDocumentClient;

beforeAll(async () => {
  const endpoint = inject('dynamodbEndpoint');
  runtime = await spawnRuntime({ dynamodbEndpoint: endpoint, extraArgs: ['--table', table] });
  db = DynamoDBDocumentClient.from(new DynamoDBClient(localOverrides(endpoint)));
});
afterAll(async () => {
  db?.destroy();
  await runtime?.stop();
});

async function clusterOf(count: number): Promise<string> {
  const clusterId = uniqueCluster('pages');
  for (let i = 0; i < count; i++) await registerDirect(runtime.httpUrl, clusterId, `n${String(i).padStart(2, '0')}`, { leaseSeconds: 3600 });
  return clusterId;
}

describe('the list in pages', () => {
  it('is read page by page into one list at the first page\'s revision', async () => {
    const clusterId = await clusterOf(9);
    const http = new HttpClient({ baseUrl: runtime.httpUrl, timeoutMs: 10_000, pageLimit: 4 });
    const paged = await http.listNodesUnless(clusterId, undefined, { all: true });
    const whole = await listNodes({ httpUrl: runtime.httpUrl, clusterId, all: true });
    if (paged === 'not-modified') throw new Error('a list without If-None-Match came back 304');
    expect(paged.nodes.map((n) => n.nodeId)).toEqual(Array.from({ length: 9 }, (_, i) => `n0${i}`));
    expect(paged).toEqual(whole);
    expect(paged).not.toHaveProperty('next');
    // A refresh of a cache at the cluster's revision is still one conditional request.
    expect(await http.listNodesUnless(clusterId, paged.revision, { all: true })).toBe('not-modified');
  });

  it('is read again from the first page when the server lost its state during a walk (410 CURSOR_EXPIRED)', async () => {
    const clusterId = await clusterOf(5);
    // Between the client and the runtime: the first time a walk asks for its second page, the cluster's
    // revision counter is lost first, as in a server that restarted without its data.
    let lost = false;
    const cursors: string[] = [];
    const proxy: Server = createServer((req, res) => {
      void (async () => {
        const url = req.url ?? '';
        if (url.includes('cursor=')) {
          cursors.push(url);
          if (!lost) {
            lost = true;
            await db.send(new DeleteCommand({ TableName: table, Key: metaKey(clusterId) }));
          }
        }
        const answer = await fetch(runtime.httpUrl + url, { headers: { 'accept-encoding': 'identity' } });
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const address = proxy.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const http = new HttpClient({ baseUrl: `http://127.0.0.1:${port}`, timeoutMs: 10_000, pageLimit: 2 });
      const list = await http.listNodesUnless(clusterId, undefined, { all: true });
      if (list === 'not-modified') throw new Error('a list without If-None-Match came back 304');
      expect(list.nodes.map((n) => n.nodeId)).toEqual(['n00', 'n01', 'n02', 'n03', 'n04']);
      // The list of the server as it is now: its counter starts from 0 again.
      expect(list.revision).toBe(0);
      // The walk that met the 410 asked for one page after the first; the one after it, for two.
      expect(cursors).toHaveLength(3);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

describe('a revision that never comes', () => {
  it('is waited for, then resynced exactly once', async () => {
    const clusterId = await clusterOf(1);
    const gapWaitMs = 3_000;
    const watcher = new RosterClient({ httpUrl: runtime.httpUrl, wsUrl: runtime.wsUrl, clusterId, refreshIntervalMs: 0, gapWaitMs });
    const gapResyncs: number[] = [];
    watcher.on('resynced', (e) => {
      if (e.reason === 'gap') gapResyncs.push(e.revision);
    });
    let arrivedAt = 0;
    watcher.on('registered', (e) => {
      if (e.node.nodeId === 'late') arrivedAt = Date.now();
    });
    try {
      await watcher.start();
      // What a write that lost its race leaves: a revision taken and never used (registry.ts).
      await db.send(new UpdateCommand({ TableName: table, Key: metaKey(clusterId), UpdateExpression: 'ADD revision :one', ExpressionAttributeValues: { ':one': 1 } }));
      const late = await registerDirect(runtime.httpUrl, clusterId, 'late', { leaseSeconds: 3600 });
      await eventually(() => arrivedAt > 0, 10_000, 'the watcher to see the registration');
      // The skipped revision may still come: no list is read yet, and the cache is not called stale for it.
      expect(gapResyncs).toEqual([]);
      expect(watcher.stale).toBe(false);
      await eventually(() => gapResyncs.length > 0, 15_000, 'the resync once the wait ran out');
      expect(Date.now() - arrivedAt).toBeGreaterThanOrEqual(gapWaitMs - 50);
      expect(gapResyncs).toEqual([late.revision]);
      await sleep(2 * gapWaitMs);
      expect(gapResyncs).toEqual([late.revision]);
      expect(watcher.nodes().map((n) => n.nodeId)).toEqual(['late', 'n00']);
      expect(watcher.stale).toBe(false);
    } finally {
      await watcher.stop();
    }
  });
});
