/**
 * The capacity planner (`roster capacity`, bench/planner.ts) on the stack's
 * own settings: the stack of this checkout is synthesized in-process (no
 * store, no server) and its template read the way the command reads one.
 *
 * At the defaults (issue 22): every limit under 70% at both goal sizes —
 * 100,000 nodes in 1,000 clusters, and 10,000 nodes with 10,000 watchers in
 * one cluster. What still needs a quota raise is a new account's Lambda
 * concurrency (10, reduced until AWS raises it with use), which the planner
 * names with the figure to ask for.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AWS_LIMITS } from '../../bench/aws-limits.ts';
import { STACK_LOG_RETENTION_DAYS } from '../../bench/log-bytes.ts';
import { deploymentOf, limitsOver, listBytesPerNode, listPages, plan, stackKeepaliveSeconds, type CapacityPlan, type LimitRow } from '../../bench/planner.ts';
import { httpRouteKeyOf, routeThrottle, settingsFromTemplate, synthesizeTemplate, TemplateError, type StackSettings, type Template } from '../../bench/stack-settings.ts';
import { MEASURED_UNITS } from '../../bench/units.ts';
import { operationRates, WRITE_LOCATIONS, workloadDefaults } from '../../bench/workload.ts';
import { DEFAULT_LEASE_SECONDS, LIST_PAGE_MAX } from '@roster/contract';
import { DEFAULT_PING_INTERVAL_MS, DEFAULT_REFRESH_INTERVAL_MS } from '../../client/src/options.ts';
import { REPO_ROOT } from '../support/runtime.ts';

let template: Template;
let settings: StackSettings;
let dir: string;

beforeAll(async () => {
  template = await synthesizeTemplate();
  settings = settingsFromTemplate(template, 'the synthesized stack');
  dir = await mkdtemp(path.join(tmpdir(), 'roster-planner-'));
}, 180_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The SDK's defaults on the stack's settings: what `roster capacity --nodes N --clusters C --subscribers S` plans. */
const at = (nodes: number, clusters: number, subscribers = 0): CapacityPlan =>
  plan({ ...workloadDefaults(nodes), clusters, subscribers, keepaliveSeconds: stackKeepaliveSeconds(settings) }, settings);

function row(p: CapacityPlan, id: string): LimitRow {
  const found = [...p.rows, ...p.newAccount].find((r) => r.id === id);
  if (!found) throw new Error(`no limit ${id}`);
  return found;
}

const ids = (rows: LimitRow[]): string[] => rows.map((r) => r.id);

describe('at the defaults', () => {
  test('the stack sets what the planner reads: a 60 s lease, each hot route its own throttle, the table pre-warmed', () => {
    expect(settings.detection.defaultLeaseSeconds).toBe(60);
    expect(stackKeepaliveSeconds(settings)).toBe(20);
    expect(settings.http.defaultThrottle).toEqual({ rateLimit: 500, burstLimit: 1000 });
    expect(routeThrottle(settings.http, httpRouteKeyOf('keepalive'))).toEqual({ rateLimit: 10_000, burstLimit: 5_000 });
    expect(routeThrottle(settings.webSocket, 'ping')).toEqual({ rateLimit: 667, burstLimit: 1000 });
    expect(settings.tableWarmThroughput).toEqual({ writeUnitsPerSecond: 10_000 });
    expect(settings.detection.fanoutPostsPerSecond).toBe(6000);
    expect(settings.fanoutMapping.parallelizationFactor).toBe(1);
    expect(settings.httpFunctions[httpRouteKeyOf('keepalive')]?.memoryMb).toBe(256);
    // `roster cost` does not synthesize the stack: its log retention must be the stack's.
    expect(settings.httpFunctions[httpRouteKeyOf('keepalive')]?.logRetentionDays).toBe(STACK_LOG_RETENTION_DAYS);
    expect(settings.httpAccessLogRetentionDays).toBe(STACK_LOG_RETENTION_DAYS);
    expect(settings.httpAccessLogFormat).toContain('$context.routeKey');
  });

  test('1,000 nodes in 10 clusters: nothing near a limit', () => {
    const p = at(1000, 10);
    expect(limitsOver(p, 0.7)).toEqual([]);
    expect(Math.max(...p.rows.map((r) => r.utilization))).toBeLessThan(0.1);
  });

  test('100,000 nodes in 1,000 clusters: every limit under 70%; only a new account needs a quota raise', () => {
    const p = at(100_000, 1000);
    expect(limitsOver(p, 0.7)).toEqual([]);
    // The busiest: the account's API Gateway quota, shared by every request and post, at 59%.
    expect(p.firstToBreak?.id).toBe('apigw:account-rate');
    expect(row(p, 'apigw:account-rate').utilization).toBeCloseTo(0.593, 3);
    // What a new account (Lambda concurrency 10) must ask for, by name: AWS Lambda "Concurrent executions".
    expect(ids(p.newAccount.filter((r) => r.utilization >= 0.7))).toEqual(['new-account:lambda:concurrency', 'new-account:lambda:request-rate']);
    expect(row(p, 'new-account:lambda:request-rate').lift).toMatchObject({ by: 'quota', name: 'Concurrent executions', code: 'L-B99A9384', ask: 820 });
  });

  test('10,000 nodes with 10,000 subscribers in one cluster: every limit under 70%; only a new account needs a quota raise', () => {
    const p = at(10_000, 1, 10_000);
    expect(limitsOver(p, 0.7)).toEqual([]);
    // The closest three: the stream shard (each event to 20,000 subscribers paced at 6,000 posts a second), the account's
    // quota while it posts, and the account's burst an event's posts take.
    const closest = [...p.rows].sort((a, b) => b.utilization - a.utilization).slice(0, 3);
    expect(ids(closest).sort()).toEqual(['apigw:event-burst', 'apigw:fanout-peak', 'stream:shard']);
    for (const r of closest) expect(r.utilization, r.id).toBeGreaterThanOrEqual(0.6);
    // The cluster's partition reads: its refreshes and list reads, and the sweeper's whole reads (on schedule and once a
    // minute); an announced registration's node is read alone (it read the whole cluster before: 64% here).
    expect(row(p, 'ddb:cluster-partition-reads').utilization).toBeLessThan(0.45);
    expect(ids(p.newAccount.filter((r) => r.utilization >= 0.7))).toEqual(['new-account:lambda:concurrency', 'new-account:lambda:request-rate']);
    expect(row(p, 'new-account:lambda:request-rate').lift).toMatchObject({ by: 'quota', code: 'L-B99A9384', ask: 93 });
  });

  test("the SDK's own defaults are what the planner assumes", () => {
    expect(workloadDefaults(1).keepaliveSeconds * 3).toBe(DEFAULT_LEASE_SECONDS);
    expect(workloadDefaults(1).refreshSeconds * 1000).toBe(DEFAULT_REFRESH_INTERVAL_MS);
    expect(workloadDefaults(1).pingSeconds * 1000).toBe(DEFAULT_PING_INTERVAL_MS);
  });
});

describe('a storm: a tenth of one cluster restarting at once, planned apart', () => {
  const p = () => at(10_000, 1, 10_000);
  const stormRow = (q: CapacityPlan, id: string): LimitRow => {
    const found = q.storm.rows.find((r) => r.id === id);
    if (!found) throw new Error(`no storm limit ${id}`);
    return found;
  };

  test('10,000 nodes and 10,000 subscribers in one cluster: 1,000 restarts, 2,000 events to 20,000 subscribers, never among the steady rows', () => {
    const q = p();
    expect(q.storm).toMatchObject({ restarts: 1_000, events: 2_000, subscribers: 20_000 });
    expect(q.rows.filter((r) => r.id.startsWith('storm:'))).toEqual([]);
    expect(ids(q.storm.rows)).toEqual(['storm:meta-item-writes', 'storm:clusters-item-reads', 'storm:version-item-writes', 'storm:version-item-drops', 'storm:sweep', 'storm:account-rate']);
    expect(plan({ ...workloadDefaults(10_000), clusters: 1, subscribers: 10_000, keepaliveSeconds: stackKeepaliveSeconds(settings) }, settings, { stormRestarts: 2_500 }).storm.restarts).toBe(2_500);
  });

  test("the revision counter takes one write per registration and one per sweep for all of the storm's downs", () => {
    // The register route admits its bucket and a second of its rate (150 + 500, infra/deployment-size.ts): 650 of the
    // 1,000 restarts register in the storm's first second, one revision each; the sweep that declares their downs
    // writes the counter once.
    expect(stormRow(p(), 'storm:meta-item-writes').load).toBe(150 + 500 + 1);
    // Each of those registrations reads the cluster's CLUSTERS entry (half a read unit), and writes it not at all: the
    // restarting node's retained record kept the cluster listed.
    expect(stormRow(p(), 'storm:clusters-item-reads').load).toBe((150 + 500) / 2);
    // In the steady state the downs add at most one write a sweep (1 s), however many: here 28 restarts a second.
    const churny = plan({ ...workloadDefaults(10_000), clusters: 1, subscribers: 10_000, churnPerHour: 100_000, keepaliveSeconds: stackKeepaliveSeconds(settings) }, settings);
    const r = operationRates({ ...churny.workload }, MEASURED_UNITS, deploymentOf(settings));
    expect(r.restarts).toBeGreaterThan(20);
    expect(row(churny, 'ddb:meta-item-writes').load).toBeCloseTo(r.registrations + 1, 9);
  });

  test('the subscriptions version, in 16 shards: 20,000 connections dropping at Lambda\'s request rate are 625 writes a second on each', () => {
    // $disconnect runs at most at 1,000 concurrent executions × 10 requests a second each: 10,000 a second, over 16 shards.
    expect(stormRow(p(), 'storm:version-item-drops').load).toBe(10_000 / 16);
    // Connecting: the account's 500 new connections a second (under the $connect route's 1,000 + 500), and the restarts' own connections dropping.
    expect(stormRow(p(), 'storm:version-item-writes').load).toBe((500 + 1_000) / 16);
  });

  test("the account's rate while the fan-out posts the storm counts the steady posts once: the fan-out's rate takes their place", () => {
    const q = p();
    const r = operationRates({ ...q.workload }, MEASURED_UNITS, deploymentOf(settings));
    const steady = row(q, 'apigw:account-rate').load;
    expect(steady).toBeCloseTo(r.httpRequests + r.fullLists * (listPages(r.nodesPerCluster, 0).pages - 1) + r.pings + r.reconnects + r.eventMessages, 9);
    // The fan-out posts at most fanoutPostsPerSecond (6,000), the steady event posts included; 650 registrations (the
    // register route's first second), 500 new connections.
    expect(settings.detection.fanoutPostsPerSecond).toBe(6_000);
    expect(r.eventMessages).toBeLessThan(6_000);
    expect(stormRow(q, 'storm:account-rate').load).toBeCloseTo(steady - r.eventMessages + 6_000 + 650 + 500, 9);
  });

  test('its posts: one per event to a plain subscriber, 40 EVENTS messages to a batched one', () => {
    const q = p();
    // 2,000 events of 413 bytes in stream batches of 100: 41 KB a batch, two 32 KB messages each. Each batch to 20,000
    // subscribers paced at 6,000 posts a second takes seconds, so the records pile up behind it and the batches are
    // full (20 of them, 21 with the first poll's): 40 messages to a subscriber that is there throughout. The 1,000
    // restarted nodes are not, until they register and subscribe again: they miss a batch or two.
    expect(q.storm.eventBytes).toBe(413);
    expect(q.storm.batched.perBatched).toBe(40);
    expect(q.storm.batched.batches).toBeLessThanOrEqual(21);
    expect(q.storm.batched.posts).toBeLessThan(40 * 20_000);
    expect(q.storm.batched.posts).toBeGreaterThan(40 * 19_000 + 36 * 1_000);
    expect(q.storm.plain).toMatchObject({ perPlain: 2_000, posts: 2_000 * 20_000 });
    expect(q.storm.batchedSeconds).toBe(q.storm.batched.posts / 6_000);
  });
});

describe('figures checked by hand', () => {
  test('100,000 nodes: keepalives against the route throttle, and everything against the account throttle', () => {
    const p = at(100_000, 1000);
    // One keepalive per node every 60 s / 3 = 20 s, against twice that (the throttle derived from expectedNodes).
    expect(row(p, 'http-route:keepalive').load).toBeCloseTo(100_000 / 20, 6);
    expect(row(p, 'http-route:keepalive').utilization).toBeCloseTo(0.5, 6);
    // Keepalives, refreshes every 300 s, one list request and one $connect per (re)connection (every 107.5 min, and
    // each restart: 100,000 / 24 an hour), registrations, pings every 300 s, and one post per subscriber (100) of each
    // event (2 a restart).
    const restarts = 100_000 / 24 / 3600;
    const reconnects = 100_000 / (107.5 * 60) + restarts;
    const expected = 5_000 + 100_000 / 300 + reconnects + restarts + 100_000 / 300 + reconnects + 2 * restarts * 100;
    expect(row(p, 'apigw:account-rate').load).toBeCloseTo(expected, 6);
    expect(expected).toBeCloseTo(5_933, 0);
  });

  test("one cluster of 10,000 nodes and 10,000 watchers: the cluster's partition key, its META item, the fan-out", () => {
    const p = at(10_000, 1, 10_000);
    const w = workloadDefaults(10_000);
    const restarts = 10_000 / 24 / 3600;
    const events = 2 * restarts;
    const nodeReconnects = 10_000 / (107.5 * 60);
    const reconnects = 20_000 / (107.5 * 60) + restarts;
    // C#{clusterId}: a keepalive per node every 20 s (1 unit: the item is under 1 KB); a restart writes the item
    // four times (the lease cut, the DOWN, the new registration, the bind) and the revision twice; a periodic
    // reconnect of a node cuts and binds its lease.
    expect(row(p, 'ddb:cluster-partition-writes').load).toBeCloseTo(10_000 / 20 + restarts * 6 + nodeReconnects * 2, 6);
    expect(row(p, 'ddb:cluster-partition-writes').load).toBeCloseTo(503.8, 1);
    // A whole list is read by a restarted node, and by a reconnection during which an event happened (2 s away, 0.23 events a second).
    const fullLists = restarts + (20_000 / (107.5 * 60)) * events * 2;
    // META: one consistent read (1 unit) per list request: a refresh (20,000 clients every 300 s), a sync after each
    // (re)connection, and each further page of a full list (10,000 nodes without metadata are two pages).
    expect(listPages(10_000, 0).pages).toBe(2);
    expect(row(p, 'ddb:meta-item-reads').load).toBeCloseTo(20_000 / 300 + reconnects + fullLists, 6);
    const listRru = 1 + Math.ceil((10_000 * w.itemKb) / 4);
    expect(row(p, 'ddb:cluster-partition-reads').load).toBeGreaterThan(20_000 / 300 + reconnects - fullLists + fullLists * listRru);
    // The fan-out lets half a second of its 6,000 posts a second go at once, against the account's bucket of 5,000.
    expect(row(p, 'apigw:event-burst').load).toBe(3_000);
    // Each event waits for its paced posts, (20,000 − 3,000) / 6,000 s, and its own work (30 ms) and a page's (10 ms):
    // the cluster's shard is busy that share of each second.
    expect(row(p, 'stream:shard').load).toBeCloseTo(events * (0.04 + 17_000 / 6_000), 6);
  });

  test("a list of 10,000 nodes against Lambda's 6 MB: in pages, each within it, the body's quotes escaped in Lambda's response", () => {
    const p = at(10_000, 1, 10_000);
    const node = listBytesPerNode(0);
    // The escaped copy is longer by one byte per quote: a node has 11 keys and 7 string values (key, ids, status, 3 times).
    expect(node.lambda - node.body).toBe(2 * 11 + 2 * 7);
    // Without metadata a page holds the most a request may ask for, 5,000 nodes: two pages.
    expect(listPages(10_000, 0)).toMatchObject({ pages: 2, nodesPerPage: LIST_PAGE_MAX });
    expect(row(p, 'list:lambda-response').load).toBeCloseTo(LIST_PAGE_MAX * node.lambda + 200, 6);
    expect(row(p, 'list:lambda-response').capacity).toBe(6 * 1024 * 1024);
    // 1 KiB of metadata a node: one list would be past the limit at the goal's cluster size; a page stops at 3 MiB.
    const withMetadata = plan({ ...workloadDefaults(10_000), subscribers: 10_000 }, settings, { metadataKb: 1 });
    const big = listBytesPerNode(1);
    expect(10_000 * big.lambda).toBeGreaterThan(6 * 1024 * 1024);
    const { pages, nodesPerPage } = listPages(10_000, 1);
    expect(nodesPerPage).toBe(Math.floor((3 * 1024 * 1024) / big.lambda));
    expect(pages).toBe(Math.ceil(10_000 / nodesPerPage));
    expect(row(withMetadata, 'list:lambda-response').utilization).toBeLessThanOrEqual(0.5);
    expect(row(withMetadata, 'list:http-payload').utilization).toBeLessThan(0.35);
  });

  test('a new account: ten concurrent executions allow 100 invocations a second', () => {
    const p = at(1000, 10);
    const rate = row(p, 'new-account:lambda:request-rate');
    expect(rate.capacity).toBe(AWS_LIMITS.lambdaConcurrencyNewAccount.value * 10);
    // About 0.057 invocations a second per node at the defaults.
    expect(rate.breaksAtNodes).toBeGreaterThan(1700);
    expect(rate.breaksAtNodes).toBeLessThan(1800);
    // Not counted as the deployment's first limit: it is the account's, and a quota raise lifts it.
    expect(p.firstToBreak?.id).not.toContain('new-account');
  });

  test('where the writes land, read from the code, adds up to the units DynamoDB measured', () => {
    const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
    expect(sum(WRITE_LOCATIONS.keepalive)).toBe(MEASURED_UNITS.writes.keepalive);
    expect(sum(WRITE_LOCATIONS.registerNew)).toBe(MEASURED_UNITS.writes.registerNew);
    expect(sum(WRITE_LOCATIONS.reRegister)).toBe(MEASURED_UNITS.writes.reRegister);
    expect(sum(WRITE_LOCATIONS.markDown)).toBe(MEASURED_UNITS.writes.markDown);
    expect(sum(WRITE_LOCATIONS.connectBound)).toBe(MEASURED_UNITS.writes.connectBound);
    expect(sum(WRITE_LOCATIONS.disconnectBound)).toBe(MEASURED_UNITS.writes.disconnectBound);
  });
});

describe('the stack settings come from the template', () => {
  test("a template with a lower route throttle moves the breaking point: the route's own setting wins over the stage's", () => {
    const copy = structuredClone(template);
    for (const resource of Object.values(copy.Resources)) {
      const props = resource.Properties as { RouteSettings?: Record<string, { ThrottlingRateLimit?: number }> } | undefined;
      const keepalive = props?.RouteSettings?.[httpRouteKeyOf('keepalive')];
      if (resource.Type === 'AWS::ApiGatewayV2::Stage' && keepalive) keepalive.ThrottlingRateLimit = 400;
    }
    const lowered = settingsFromTemplate(copy, 'a copy');
    const p = plan({ ...workloadDefaults(1000), clusters: 10 }, lowered);
    // 400 requests a second over one keepalive per node every 20 s.
    expect(row(p, 'http-route:keepalive').breaksAtNodes).toBeCloseTo(400 * 20, 0);
    expect(p.firstToBreak?.id).toBe('http-route:keepalive');
  });

  test("a template without a pre-warmed table is held against a new table's warm throughput", () => {
    const copy = structuredClone(template);
    for (const resource of Object.values(copy.Resources)) if (resource.Type === 'AWS::DynamoDB::Table') delete (resource.Properties as Record<string, unknown>).WarmThroughput;
    const p = plan({ ...workloadDefaults(100_000), clusters: 1000 }, settingsFromTemplate(copy, 'a copy'));
    expect(row(p, 'ddb:warm-writes').capacity).toBe(AWS_LIMITS.dynamodbNewTableWarmWrites.value);
    expect(row(p, 'ddb:warm-writes').utilization).toBeGreaterThan(1);
  });

  test('a template without the fan-out is refused, naming what is missing', () => {
    const copy = structuredClone(template);
    for (const [id, resource] of Object.entries(copy.Resources)) if (resource.Type === 'AWS::Lambda::EventSourceMapping') delete copy.Resources[id];
    expect(() => settingsFromTemplate(copy, 'a copy')).toThrow(TemplateError);
    expect(() => settingsFromTemplate(copy, 'a copy')).toThrow(/event source mapping/);
  });
});

test('roster capacity --template prints every limit and marks the first to break; bad input exits 2', async () => {
  const file = path.join(dir, 'Roster.template.json');
  await writeFile(file, JSON.stringify(template));
  const run = (...args: string[]) => spawnSync(process.execPath, ['bin/roster.js', 'capacity', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
  const text = run('--nodes', '1000', '--clusters', '10', '--template', file);
  expect(text.status, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/HTTP API stage throttle \(keepalives\).*POST …\/nodes\/\{nodeId\}\/keepalive.*50\.0 req\/s.*10,000 req\/s.*<0\.1%.*200,000 nodes/);
  expect(text.stdout).toContain('Every limit is under 70%.');
  expect(text.stdout).toContain('https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html');
  const json = run('--nodes', '100000', '--clusters', '1000', '--template', file, '--json');
  expect(json.status, json.stderr).toBe(0);
  const parsed = JSON.parse(json.stdout) as CapacityPlan;
  expect(parsed.rows.find((r) => r.id === 'http-route:keepalive')?.load).toBeCloseTo(5_000, 6);

  const refusals: [string[], RegExp][] = [
    [['--clusters', '10', '--template', file], /--nodes is required/],
    [['--nodes', '1000', '--template', path.join(dir, 'missing.json')], /--template .*missing\.json: cannot read .*: no such file/],
    [['--nodes', '1000', '--template', file, '-c', 'httpRateLimit=1000'], /--context applies to the stack synthesized here/],
    [['--nodes', '1000', '--metadata-kb', '5', '--template', file], /--metadata-kb must be at most 4/],
    [['--nodes', '10', '--clusters', '20', '--template', file], /--clusters must be at most --nodes/],
  ];
  for (const [args, message] of refusals) {
    const bad = run(...args);
    expect(bad.status, args.join(' ')).toBe(2);
    expect(bad.stderr).toMatch(message);
    expect(bad.stdout).toBe('');
  }
}, 60_000);

describe('nodes without a bound connection (--bound-nodes)', () => {
  test('keep alive and refresh like every node, but make no pings, connections or posts', () => {
    const all = { ...workloadDefaults(10_000), subscribers: 1, churnPerHour: 0 };
    const some = operationRates({ ...all, boundNodes: 2000 });
    const every = operationRates(all);
    expect(some.keepalives).toBe(every.keepalives);
    expect(some.refreshes).toBe(every.refreshes);
    expect(some.connections).toBe(2001);
    expect(every.connections).toBe(10_001);
    expect(some.pings).toBeCloseTo(every.pings * (2001 / 10_001), 6);
    expect(some.periodicReconnects).toBeCloseTo(every.periodicReconnects * (2001 / 10_001), 6);
  });

  test('a restart of a node without a connection writes no connection or subscription items', () => {
    const churn = { ...workloadDefaults(1000), churnPerHour: 3600, boundNodes: 0 };
    const rates = operationRates(churn);
    expect(rates.reconnects).toBe(0);
    expect(rates.writesAt.connection).toBe(0);
    expect(rates.writesAt.subscription).toBe(0);
    expect(rates.writesAt.meta).toBeGreaterThan(0);
  });
});
