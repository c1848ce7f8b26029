/**
 * The capacity planner (`roster capacity`, bench/planner.ts) on the stack's
 * own settings: the stack of this checkout is synthesized in-process (no
 * store, no server) and its template read the way the command reads one.
 *
 * The expectations "at today's defaults" say where the defaults break now.
 * Issue 22 asks for defaults under which every limit stays under 70% at the
 * goal sizes; when they land, the two lists below become `[]` (or the quota
 * raises the planner names) and the first limit to break moves: each is one
 * assertion to flip.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AWS_LIMITS } from '../../bench/aws-limits.ts';
import { STACK_LOG_RETENTION_DAYS } from '../../bench/log-bytes.ts';
import { deploymentOf, limitsOver, listBytesPerNode, listPages, plan, stackKeepaliveSeconds, type CapacityPlan, type LimitRow } from '../../bench/planner.ts';
import { LIST_PAGE_MAX } from '@roster/contract';
import { httpRouteKeyOf, settingsFromTemplate, synthesizeTemplate, TemplateError, type StackSettings, type Template } from '../../bench/stack-settings.ts';
import { MEASURED_UNITS } from '../../bench/units.ts';
import { operationRates, WRITE_LOCATIONS, workloadDefaults } from '../../bench/workload.ts';
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

describe("at today's defaults", () => {
  test('the stack sets what the planner reads: 500 requests/s a route, a 15 s lease', () => {
    expect(settings.http.defaultThrottle).toEqual({ rateLimit: 500, burstLimit: 1000 });
    expect(settings.webSocket.defaultThrottle).toEqual({ rateLimit: 500, burstLimit: 1000 });
    expect(settings.detection.defaultLeaseSeconds).toBe(15);
    expect(settings.fanoutMapping.parallelizationFactor).toBe(1);
    expect(settings.httpFunctions[httpRouteKeyOf('keepalive')]?.memoryMb).toBe(256);
    // `roster cost` does not synthesize the stack: its log retention must be the stack's.
    expect(settings.httpFunctions[httpRouteKeyOf('keepalive')]?.logRetentionDays).toBe(STACK_LOG_RETENTION_DAYS);
    expect(settings.httpAccessLogRetentionDays).toBe(STACK_LOG_RETENTION_DAYS);
    expect(settings.httpAccessLogFormat).toContain('$context.routeKey');
  });

  test('the first limit to break is the HTTP stage throttle on keepalives, at 2,500 nodes', () => {
    const p = at(1000, 10);
    expect(p.firstToBreak?.id).toBe('http-route:keepalive');
    // 500 requests/s over one keepalive per node every 15 s / 3 = 5 s.
    expect(p.firstToBreak?.breaksAtNodes).toBeCloseTo(500 * 5, 0);
    expect(limitsOver(p, 0.7)).toEqual([]);
  });

  test('100,000 nodes in 1,000 clusters: the limits at or over 70%', () => {
    const p = at(100_000, 1000);
    expect(ids(limitsOver(p, 0.7))).toEqual([
      'http-route:keepalive',
      'http-route:list',
      'ws-route:ping',
      'apigw:account-rate',
      'lambda:request-rate',
      'ddb:warm-writes',
      'sweep:full',
    ]);
    // Only a quota increase lifts two of them; the planner says how far.
    expect(row(p, 'apigw:account-rate').lift).toMatchObject({ by: 'quota', name: 'Throttle rate', code: 'L-8A5B8E43', ask: 37_000 });
    expect(row(p, 'lambda:request-rate').lift).toMatchObject({ by: 'quota', name: 'Concurrent executions', ask: 3_600 });
  });

  test('10,000 nodes with 10,000 subscribers in one cluster: the limits at or over 70%', () => {
    const p = at(10_000, 1, 10_000);
    expect(ids(limitsOver(p, 0.7))).toEqual([
      'http-route:keepalive',
      'http-route:list',
      'apigw:account-rate',
      'apigw:event-burst',
      'ddb:cluster-partition-writes',
      'ddb:cluster-partition-reads',
      // The fan-out paces an event to 10,000 subscribers over 1.5 s (fanoutPostsPerSecond): the shard's one batch at a time is busy.
      'stream:shard',
    ]);
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
    expect(ids(q.storm.rows)).toEqual(['storm:meta-item-writes', 'storm:version-item-writes', 'storm:version-item-drops', 'storm:sweep', 'storm:account-rate']);
    expect(plan({ ...workloadDefaults(10_000), clusters: 1, subscribers: 10_000, keepaliveSeconds: stackKeepaliveSeconds(settings) }, settings, { stormRestarts: 2_500 }).storm.restarts).toBe(2_500);
  });

  test("the revision counter takes one write per registration and one per sweep for all of the storm's downs", () => {
    // The register route admits its burst and a second of its rate (1,000 + 500): all 1,000 restarts register in the
    // storm's first second, one revision each; the sweep that declares their downs writes the counter once.
    expect(stormRow(p(), 'storm:meta-item-writes').load).toBe(1_000 + 1);
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
    // The fan-out posts at most fanoutPostsPerSecond (5,000), the steady event posts included; 1,000 registrations, 500 new connections.
    expect(r.eventMessages).toBeLessThan(5_000);
    expect(stormRow(q, 'storm:account-rate').load).toBeCloseTo(steady - r.eventMessages + 5_000 + 1_000 + 500, 9);
  });

  test('its posts: one per event to a plain subscriber, 40 EVENTS messages to a batched one', () => {
    const q = p();
    // 2,000 events of 413 bytes in stream batches of 100: 41 KB a batch, two 32 KB messages each, 20 batches.
    expect(q.storm.eventBytes).toBe(413);
    expect(q.storm.batched).toMatchObject({ perBatched: 40, posts: 40 * 20_000 });
    expect(q.storm.plain).toMatchObject({ perPlain: 2_000, posts: 2_000 * 20_000 });
    expect(q.storm.batchedSeconds).toBe((40 * 20_000) / 5_000);
  });
});

describe('figures checked by hand', () => {
  test('100,000 nodes: keepalives against the route throttle, and everything against the account throttle', () => {
    const p = at(100_000, 1000);
    // One keepalive per node every 5 s.
    expect(row(p, 'http-route:keepalive').load).toBeCloseTo(100_000 / 5, 6);
    expect(row(p, 'http-route:keepalive').utilization).toBeCloseTo(20_000 / 500, 6);
    // Keepalives, refreshes every 30 s, a full list and a $connect per reconnect (every 107.5 min, and each
    // restart: 100,000 / 24 an hour), registrations, pings every 60 s, and one post per subscriber (100) of each event (2 a restart).
    const restarts = 100_000 / 24 / 3600;
    const reconnects = 100_000 / (107.5 * 60) + restarts;
    const expected = 20_000 + 100_000 / 30 + reconnects + restarts + 100_000 / 60 + reconnects + 2 * restarts * 100;
    expect(row(p, 'apigw:account-rate').load).toBeCloseTo(expected, 6);
    expect(expected).toBeCloseTo(25_266, 0);
  });

  test("one cluster of 10,000 nodes and 10,000 watchers: the cluster's partition key and its META item", () => {
    const p = at(10_000, 1, 10_000);
    const restarts = 10_000 / 24 / 3600;
    const nodeReconnects = 10_000 / (107.5 * 60);
    // C#{clusterId}: a keepalive per node every 5 s (1 unit: the item is under 1 KB); a restart writes the item
    // four times (the lease cut, the DOWN, the new registration, the bind) and the revision twice; a periodic
    // reconnect of a node cuts and binds its lease.
    expect(row(p, 'ddb:cluster-partition-writes').load).toBeCloseTo(10_000 / 5 + restarts * 6 + nodeReconnects * 2, 6);
    expect(row(p, 'ddb:cluster-partition-writes').load).toBeCloseTo(2003.8, 1);
    // META: one consistent read (1 unit) per refresh (20,000 clients every 30 s) and per page of a full list (a
    // reconnect of any client; 10,000 nodes without metadata are two pages of 5,000).
    const reconnects = 20_000 / (107.5 * 60) + restarts;
    expect(row(p, 'ddb:meta-item-reads').load).toBeCloseTo(20_000 / 30 + reconnects * 2, 6);
    // Each event's posts, all at once, against the account's burst bucket of 5,000.
    expect(row(p, 'apigw:event-burst').utilization).toBeCloseTo(20_000 / 5_000, 6);
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
    const withMetadata = plan({ ...workloadDefaults(10_000), subscribers: 10_000, keepaliveSeconds: 5 }, settings, { metadataKb: 1 });
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
    expect(rate.breaksAtNodes).toBeGreaterThan(390);
    expect(rate.breaksAtNodes).toBeLessThan(410);
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
  test('a template with a higher route throttle moves the breaking point', () => {
    const copy = structuredClone(template);
    for (const resource of Object.values(copy.Resources)) {
      const props = resource.Properties as { DefaultRouteSettings?: { ThrottlingRateLimit?: number } } | undefined;
      if (resource.Type === 'AWS::ApiGatewayV2::Stage' && props?.DefaultRouteSettings) props.DefaultRouteSettings.ThrottlingRateLimit = 4000;
    }
    const raised = settingsFromTemplate(copy, 'a copy');
    const p = plan({ ...workloadDefaults(1000), clusters: 10, keepaliveSeconds: 5 }, raised);
    expect(row(p, 'http-route:keepalive').breaksAtNodes).toBeCloseTo(4000 * 5, 0);
    expect(p.firstToBreak?.id).not.toBe('http-route:keepalive');
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
  expect(text.stdout).toMatch(/HTTP API stage throttle \(keepalives\).*POST …\/nodes\/\{nodeId\}\/keepalive.*200 req\/s.*500 req\/s.*40\.0%.*2,500 nodes ◀ first/);
  expect(text.stdout).toContain('First to break: HTTP API stage throttle (keepalives)');
  expect(text.stdout).toContain('https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html');
  const json = run('--nodes', '100000', '--clusters', '1000', '--template', file, '--json');
  expect(json.status, json.stderr).toBe(0);
  const parsed = JSON.parse(json.stdout) as CapacityPlan;
  expect(parsed.rows.find((r) => r.id === 'http-route:keepalive')?.load).toBeCloseTo(20_000, 6);

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
