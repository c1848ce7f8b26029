/**
 * The capacity planner (`roster capacity`, bench/planner.ts) on the stack's
 * own settings: the stack of this checkout is synthesized in-process (no
 * store, no server) and its template read the way the command reads one.
 * The command itself: planner.test.ts.
 *
 * The expectations "at today's defaults" say where the defaults break now.
 * Issue 22 asks for defaults under which every limit stays under 70% at the
 * goal sizes; when they land, the two lists below become `[]` (or the quota
 * raises the planner names) and the first limit to break moves: each is one
 * assertion to flip.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { AWS_LIMITS } from '../../bench/aws-limits.ts';
import { STACK_LOG_RETENTION_DAYS } from '../../bench/log-bytes.ts';
import { limitsOver, listBytesPerNode, plan, stackKeepaliveSeconds, type CapacityPlan, type LimitRow } from '../../bench/planner.ts';
import { httpRouteKeyOf, settingsFromTemplate, synthesizeTemplate, TemplateError, type StackSettings, type Template } from '../../bench/stack-settings.ts';
import { MEASURED_UNITS } from '../../bench/units.ts';
import { WRITE_LOCATIONS, workloadDefaults } from '../../bench/workload.ts';

let template: Template;
let settings: StackSettings;

beforeAll(async () => {
  template = await synthesizeTemplate();
  settings = settingsFromTemplate(template, 'the synthesized stack');
}, 180_000);

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
    // META: one consistent read (1 unit) per refresh (20,000 clients every 30 s) and per full list (a reconnect of any client).
    const reconnects = 20_000 / (107.5 * 60) + restarts;
    expect(row(p, 'ddb:meta-item-reads').load).toBeCloseTo(20_000 / 30 + reconnects, 6);
    // Each event's posts, all at once, against the account's burst bucket of 5,000.
    expect(row(p, 'apigw:event-burst').utilization).toBeCloseTo(20_000 / 5_000, 6);
  });

  test("a full list of 10,000 nodes against Lambda's 6 MB: the body's quotes are escaped in Lambda's response", () => {
    const p = at(10_000, 1, 10_000);
    const node = listBytesPerNode(0);
    // The escaped copy is longer by one byte per quote: a node has 11 keys and 7 string values (key, ids, status, 3 times).
    expect(node.lambda - node.body).toBe(2 * 11 + 2 * 7);
    expect(row(p, 'list:lambda-response').load).toBeCloseTo(10_000 * node.lambda + 200, 6);
    expect(row(p, 'list:lambda-response').capacity).toBe(6 * 1024 * 1024);
    // 1 KiB of metadata a node: past the limit at the goal's cluster size.
    const withMetadata = plan({ ...workloadDefaults(10_000), subscribers: 10_000, keepaliveSeconds: 5 }, settings, { metadataKb: 1 });
    expect(row(withMetadata, 'list:lambda-response').utilization).toBeGreaterThan(1);
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
