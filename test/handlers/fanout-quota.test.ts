/**
 * The fan-out at API Gateway's account request quota
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html):
 * on real stream records from DynamoDB Local, through the real signed poster,
 * against a real HTTP server on 127.0.0.1 that plays the `@connections`
 * endpoint and answers 429 (`LimitExceededException`) for the connections a
 * test chooses — a fault API Gateway cannot be made to produce on demand.
 * What each connection received is counted on the server's side: the posts
 * it answered 200.
 *
 * A throttled page invocation is played the same way: a loopback endpoint of
 * Lambda's Invoke API (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html)
 * that answers 429 `TooManyRequestsException` before it runs the page.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DynamoDBRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLambdaClient, createManagementClient } from '../../functions/core/aws.ts';
import { SubscriberCache } from '../../functions/core/subscriber-cache.ts';
import { connect } from '../../functions/core/subscriptions.ts';
import { posterFor, type Poster } from '../../functions/core/poster.ts';
import { deliverPage, fanOut, LEDGER_RESERVE_MS, type FanoutDeps, type Page } from '../../functions/core/fanout.ts';
import { mapLimit } from '../../functions/core/concurrency.ts';
import { pageInvoker } from '../../functions/core/page-invoker.ts';
import { register } from '../../functions/core/registry.ts';
import { StreamReader } from '../support/stream.ts';
import { createTestTable, type TestTable } from '../support/table.ts';
import { eventually } from '../support/wait.ts';

interface Post {
  connectionId: string;
  status: number;
  /** `${nodeId}@${revision}` of each event the message carried. */
  events: string[];
  at: number;
}

/** What the endpoint answers a post to `connectionId`, the `attempt`-th (1, 2, …) to that connection. */
type Answer = (connectionId: string, attempt: number) => number;

let table: TestTable;
let stream: StreamReader;
let endpoint: Server;
let url: string;
const posts: Post[] = [];
let answer: Answer = () => 200;
let poster: Poster;

function eventsOf(body: string): string[] {
  const message = JSON.parse(body) as { type: string; events?: { node: { nodeId: string }; revision: number }[]; node?: { nodeId: string }; revision?: number };
  const events = message.type === 'EVENTS' ? (message.events ?? []) : [message as { node: { nodeId: string }; revision: number }];
  return events.map((e) => `${e.node.nodeId}@${e.revision}`);
}

beforeAll(async () => {
  table = await createTestTable();
  stream = new StreamReader(table.endpoint, table.tableName);
  endpoint = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const connectionId = decodeURIComponent(/\/@connections\/([^/?]+)$/.exec(req.url ?? '')?.[1] ?? '');
      const attempt = posts.filter((p) => p.connectionId === connectionId).length + 1;
      const status = answer(connectionId, attempt);
      posts.push({ connectionId, status, events: eventsOf(Buffer.concat(chunks).toString()), at: Date.now() });
      // The shape API Gateway answers a throttled call in (the SDK's REST-JSON error: x-amzn-ErrorType).
      if (status === 429) res.writeHead(429, { 'x-amzn-ErrorType': 'LimitExceededException', 'content-type': 'application/json' }).end('{"message":"Rate exceeded"}');
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/live`;
  poster = posterFor(createManagementClient(url, true), url);
});

afterAll(async () => {
  poster.close();
  stream.close();
  endpoint.closeAllConnections();
  await new Promise<void>((resolve) => endpoint.close(() => resolve()));
});

afterEach(() => {
  answer = () => 200;
});

const id = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
/** A fan-out as a fresh execution environment has it (its own subscriber cache). */
const fanoutDeps = (extra: Partial<FanoutDeps> = {}): FanoutDeps => ({ ...table.deps, poster, subscriberCache: new SubscriberCache(), ...extra });
/** Events each connection acknowledged (posts answered 200), in order. */
const got = (connectionId: string): string[] => posts.filter((p) => p.connectionId === connectionId && p.status === 200).flatMap((p) => p.events);
const refused = (connectionId: string): number => posts.filter((p) => p.connectionId === connectionId && p.status === 429).length;

/** Registers `nodes` in `cluster` and returns the stream records they wrote, with the events as `node@revision`. */
async function eventsFor(cluster: string, nodes: string[]): Promise<{ records: DynamoDBRecord[]; events: string[] }> {
  await stream.mark();
  const events: string[] = [];
  for (const node of nodes) events.push(`${node}@${(await register(table.deps, cluster, node, {})).node.revision}`);
  return { records: await stream.next(), events };
}

describe('a post answered 429', () => {
  it('is retried for that connection alone: the others get the event meanwhile, and every connection gets it once', async () => {
    const c = id('c');
    // The throttled connection sorts first, and one post is in flight at a time: were its backoff to hold the
    // slot, nobody else would be posted to until it got through.
    const throttled = `0-${id('slow')}`;
    const others = [1, 2, 3, 4, 5].map((i) => `${i}-${id('ok')}`);
    for (const conn of [throttled, ...others]) await connect(table.deps, conn, { clusterId: c });
    const { records, events } = await eventsFor(c, ['n1']);
    let released = false;
    answer = (conn) => (conn === throttled && !released ? 429 : 200);

    const run = fanOut(fanoutDeps({ postConcurrency: 1 }), records);
    await eventually(() => others.every((o) => got(o).length === 1), 10_000, () => `the others got ${others.map((o) => got(o).length).join(', ')}`);
    expect(got(throttled)).toEqual([]);
    expect(refused(throttled)).toBeGreaterThan(0);
    released = true;

    const result = await run;
    expect(result.batchItemFailures).toEqual([]);
    for (const conn of [throttled, ...others]) expect(got(conn), conn).toEqual(events);
  });

  it('several times, then accepted: the connection gets the event exactly once', async () => {
    const c = id('c');
    const conn = id('conn');
    await connect(table.deps, conn, { clusterId: c });
    const { records, events } = await eventsFor(c, ['n1', 'n2']);
    answer = (to, attempt) => (to === conn && attempt <= 4 ? 429 : 200);

    const result = await fanOut(fanoutDeps(), records);
    expect(result.batchItemFailures).toEqual([]);
    expect(refused(conn)).toBe(4);
    expect(got(conn)).toEqual(events);
  });
});

describe('a batch item failure and its retry', () => {
  it('posts again only what was not acknowledged: connections that got an event do not get it again', async () => {
    const c = id('c');
    const [ok, partial, batched, slow] = [id('ok'), id('partial'), id('batched'), id('slow')];
    await connect(table.deps, ok, { clusterId: c });
    await connect(table.deps, partial, { clusterId: c });
    await connect(table.deps, batched, { clusterId: c, batch: true });
    await connect(table.deps, slow, { clusterId: c, batch: true });
    const { records, events } = await eventsFor(c, ['n1', 'n2', 'n3']);
    // `partial` takes the first event, then is throttled; `slow` (batched) is throttled from the start.
    let throttling = true;
    answer = (to, attempt) => (throttling && ((to === partial && attempt > 1) || to === slow) ? 429 : 200);

    // An invocation with little time left: the throttled connections are still owed at its deadline.
    const first = await fanOut(fanoutDeps(), records, { deadline: Date.now() + LEDGER_RESERVE_MS + 1_500 });
    const eventRecords = records.filter((r) => r.dynamodb?.NewImage?.ev !== undefined);
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: eventRecords[0]?.dynamodb?.SequenceNumber }]);
    expect(got(ok)).toEqual(events);
    expect(got(batched)).toEqual(events);
    expect(got(partial)).toEqual(events.slice(0, 1));
    expect(got(slow)).toEqual([]);

    // Lambda retries from the failed record, in another execution environment, once the throttling stopped.
    throttling = false;
    const failedAt = records.findIndex((r) => r.dynamodb?.SequenceNumber === first.batchItemFailures[0]?.itemIdentifier);
    const retry = await fanOut(fanoutDeps(), records.slice(failedAt));
    expect(retry.batchItemFailures).toEqual([]);
    for (const conn of [ok, partial, batched, slow]) expect(got(conn), conn).toEqual(events);
    // The one still owed everything got it in one EVENTS message, as a batched connection should.
    expect(posts.filter((p) => p.connectionId === slow && p.status === 200)).toHaveLength(1);
  });
});

/** The most posts the endpoint saw start within any `windowMs`, from the server's clock. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let lo = 0, hi = 0; hi < sorted.length; hi++) {
    while ((sorted[hi] as number) - (sorted[lo] as number) >= windowMs) lo++;
    most = Math.max(most, hi - lo + 1);
  }
  return most;
}

/** `count` subscribers of a new cluster, and the records of one event in it. */
async function crowd(count: number): Promise<{ c: string; conns: string[]; records: DynamoDBRecord[] }> {
  const c = id('c');
  const conns = Array.from({ length: count }, (_, i) => `${String(i).padStart(4, '0')}-${id('s')}`);
  await mapLimit(conns, 16, (conn) => connect(table.deps, conn, { clusterId: c }));
  const { records } = await eventsFor(c, ['n1']);
  return { c, conns, records };
}

describe('the post rate', () => {
  // Generous: the bucket lets half a second's worth through at once (so 1.5 × the rate fits a second); a slow
  // machine only posts slower. The rates are far below what this machine can post, so that without the pacing
  // the posts would come much faster than allowed.
  const allowed = (perSecond: number) => 2 * perSecond;

  it('holds one fan-out to fanoutPostsPerSecond, counted per second on the endpoint', { timeout: 60_000 }, async () => {
    const perSecond = 20;
    const { conns, records } = await crowd(3 * perSecond);
    const since = posts.length;
    const result = await fanOut(fanoutDeps({ config: { ...table.config, fanoutPostsPerSecond: perSecond } }), records);
    expect(result.batchItemFailures).toEqual([]);
    const seen = posts.slice(since);
    expect(seen).toHaveLength(conns.length);
    expect(busiestWindow(seen.map((p) => p.at), 1_000)).toBeLessThanOrEqual(allowed(perSecond));
  });

  it('splits it over the page workers: all the pages of an event together stay under it', { timeout: 60_000 }, async () => {
    const perSecond = 30;
    // Three pages (of 30, not PAGE_SIZE: the split is the same), each of which alone could post at the whole rate.
    const { conns, records } = await crowd(3 * perSecond);
    const since = posts.length;
    const deps = fanoutDeps({ config: { ...table.config, fanoutPostsPerSecond: perSecond }, pageSize: perSecond });
    // Each page handed to a worker of its own, as the page function's invocations are (here in this process).
    const pages: Page[] = [];
    const result = await fanOut({ ...deps, dispatchPage: (page) => (pages.push(page), deliverPage(deps, page)) }, records);
    expect(result.batchItemFailures).toEqual([]);
    expect(pages).toHaveLength(3);
    const seen = posts.slice(since);
    expect(seen).toHaveLength(conns.length);
    expect(busiestWindow(seen.map((p) => p.at), 1_000)).toBeLessThanOrEqual(allowed(perSecond));
  });
});

describe('a page invocation answered 429 TooManyRequestsException', () => {
  it('is retried with backoff, and the page delivered once', async () => {
    let invocations = 0;
    const lambdaEndpoint = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        invocations++;
        if (!/^\/2015-03-31\/functions\/pages\/invocations/.test(req.url ?? '') || invocations <= 2) {
          res
            .writeHead(429, { 'x-amzn-ErrorType': 'TooManyRequestsException', 'content-type': 'application/json' })
            .end('{"Type":"User","message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}');
          return;
        }
        void deliverPage(fanoutDeps(), JSON.parse(Buffer.concat(chunks).toString()) as Page).then((result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)));
      });
    });
    await new Promise<void>((resolve) => lambdaEndpoint.listen(0, '127.0.0.1', resolve));
    const lambda = createLambdaClient({ lambdaEndpoint: `http://127.0.0.1:${(lambdaEndpoint.address() as AddressInfo).port}` });
    try {
      const c = id('c');
      const conns = [id('a'), id('b')];
      const event = JSON.stringify({ type: 'NODE_REGISTERED', clusterId: c, revision: 1, node: { nodeId: 'n1' } });
      const page: Page = { clusterId: c, single: [event], revisions: [1], subscribers: conns.map((connectionId) => ({ connectionId, connectedAt: Date.now(), batch: false })), now: Date.now(), deadline: Date.now() + 20_000 };
      const result = await pageInvoker(lambda, 'pages')(page);
      expect(invocations).toBe(3);
      expect(result).toMatchObject({ delivered: 2, failed: 0 });
      for (const conn of conns) expect(got(conn)).toEqual(['n1@1']);
    } finally {
      lambda.destroy();
      lambdaEndpoint.closeAllConnections();
      await new Promise<void>((resolve) => lambdaEndpoint.close(() => resolve()));
    }
  });
});
