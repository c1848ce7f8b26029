/**
 * Throttles and the table follow the declared deployment size
 * (`-c expectedNodes=`, infra/deployment-size.ts): each hot route gets its
 * own `RouteSettings`, twice the declared fleet's load at the SDK's defaults,
 * never below the floor and never above the account's limit; the table is
 * pre-warmed to what the keepalive route admits. The planner, reading the
 * synthesized template, then shows the declared fleet at 50% of each.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AWS_LIMITS } from '../../bench/aws-limits.ts';
import { plan } from '../../bench/planner.ts';
import { httpRouteKeyOf, settingsFromTemplate, type Template } from '../../bench/stack-settings.ts';
import { workloadDefaults } from '../../bench/workload.ts';
import { API_GATEWAY_ACCOUNT_THROTTLE, MIN_ROUTE_THROTTLE } from '../../infra/deployment-size.ts';
import { rosterApp, removeAssemblies, resourcesOfType, synthRoster, type Synthesized, type TemplateResource } from './support.ts';
import { buildRoster } from '../../infra/roster-app.ts';

afterAll(removeAssemblies);

const KEEPALIVE = httpRouteKeyOf('keepalive');
const LIST = httpRouteKeyOf('list-nodes');
const REGISTER = httpRouteKeyOf('register');

const stage = (x: Synthesized, name: string): TemplateResource =>
  (resourcesOfType(x.json, 'AWS::ApiGatewayV2::Stage').find(([, r]) => r.Properties?.StageName === name) as [string, TemplateResource])[1];
const routeSettings = (x: Synthesized, name: string): Record<string, unknown> => (stage(x, name).Properties?.RouteSettings ?? {}) as Record<string, unknown>;
const table = (x: Synthesized): TemplateResource => (resourcesOfType(x.json, 'AWS::DynamoDB::Table')[0] as [string, TemplateResource])[1];
const throttle = (rate: number, burst: number) => ({ ThrottlingRateLimit: rate, ThrottlingBurstLimit: burst });

describe('the default size, 100,000 nodes', () => {
  const s = synthRoster();

  it('gives the hot HTTP routes their own throttles: twice their load at the SDK defaults, within the floor and the account', () => {
    expect(stage(s, '$default').Properties?.DefaultRouteSettings).toEqual(throttle(500, 1000));
    expect(routeSettings(s, '$default')).toEqual({
      // 3 × 100,000 / 60 s = 5,000 keepalives a second, doubled: the account's 10,000, with its bucket of 5,000.
      [KEEPALIVE]: throttle(10_000, 5_000),
      // 100,000 / 300 s refreshes + 100,000 / 6,000 s reconnection syncs = 350, doubled.
      [LIST]: throttle(700, 1000),
      // The fleet registering again within 10 minutes (167 a second), doubled, is under the floor; the bucket is what
      // keeps a cluster's first second of registrations at 650, under its META item's 1,000 writes.
      [REGISTER]: throttle(500, 150),
    });
  });

  it('gives the WebSocket ping and $connect routes theirs', () => {
    expect(stage(s, 'live').Properties?.DefaultRouteSettings).toEqual(throttle(500, 1000));
    // 100,000 / 300 s pings = 333, doubled.
    expect(routeSettings(s, 'live')).toEqual({ ping: throttle(667, 1000), $connect: throttle(500, 1000) });
  });

  it('deploys each stage after the routes its settings name (API Gateway refuses settings of a route that does not exist)', () => {
    for (const name of ['$default', 'live']) {
      const dependsOn = [stage(s, name).DependsOn ?? []].flat();
      const named = Object.keys(routeSettings(s, name));
      const routeIds = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route')
        .filter(([, r]) => JSON.stringify(r.Properties?.ApiId) === JSON.stringify(stage(s, name).Properties?.ApiId) && named.includes(String(r.Properties?.RouteKey)))
        .map(([id]) => id);
      expect(routeIds).toHaveLength(named.length);
      for (const id of routeIds) expect(dependsOn, `${name} → ${id}`).toContain(id);
    }
  });

  it('pre-warms the table to the keepalives the stage admits (each one write unit)', () => {
    expect(table(s).Properties?.WarmThroughput).toEqual({ WriteUnitsPerSecond: 10_000 });
  });

  it('leaves the declared fleet at 50% of each derived throttle in the planner', () => {
    const settings = settingsFromTemplate(s.json as unknown as Template, 'default');
    const p = plan({ ...workloadDefaults(100_000), clusters: 1000 }, settings);
    const use = (id: string) => p.rows.find((r) => r.id === id)?.utilization;
    expect(use('http-route:keepalive')).toBeCloseTo(0.5, 2);
    expect(use('http-route:list')).toBeCloseTo(0.5, 1);
    expect(use('ws-route:ping')).toBeCloseTo(0.5, 2);
    expect(use('ddb:warm-writes')).toBeLessThan(0.7);
  });

  it("keeps a cluster's storm of registrations under 70% of its META item's writes", () => {
    const settings = settingsFromTemplate(s.json as unknown as Template, 'default');
    const p = plan({ ...workloadDefaults(10_000), clusters: 1 }, settings);
    const meta = p.storm.rows.find((r) => r.id === 'storm:meta-item-writes');
    expect(meta?.utilization).toBeLessThan(0.7);
  });
});

describe('other sizes, and a throttle set by hand', () => {
  it('10,000 nodes: a tenth of the keepalive throttle, the floor elsewhere, no pre-warming (a new table takes 4,000 writes a second)', () => {
    const s = synthRoster({ expectedNodes: '10000' });
    expect(routeSettings(s, '$default')).toEqual({ [KEEPALIVE]: throttle(1000, 1000), [LIST]: throttle(500, 1000), [REGISTER]: throttle(500, 150) });
    expect(table(s).Properties?.WarmThroughput).toBeUndefined();
  });

  it('1,000,000 nodes: no route above the account-level throttle; the planner names the account quota to raise', () => {
    const s = synthRoster({ expectedNodes: '1000000' });
    const settings = routeSettings(s, '$default');
    for (const [key, t] of Object.entries({ ...settings, ...routeSettings(s, 'live') })) {
      const { ThrottlingRateLimit, ThrottlingBurstLimit } = t as { ThrottlingRateLimit: number; ThrottlingBurstLimit: number };
      expect(ThrottlingRateLimit, key).toBeLessThanOrEqual(API_GATEWAY_ACCOUNT_THROTTLE.rateLimit);
      expect(ThrottlingBurstLimit, key).toBeLessThanOrEqual(API_GATEWAY_ACCOUNT_THROTTLE.burstLimit);
    }
    expect(settings[KEEPALIVE]).toEqual(throttle(10_000, 5_000));
    const p = plan({ ...workloadDefaults(1_000_000), clusters: 10_000 }, settingsFromTemplate(s.json as unknown as Template, 'a million'));
    expect(p.rows.find((r) => r.id === 'apigw:account-rate')?.lift).toMatchObject({ by: 'quota', code: 'L-8A5B8E43' });
  });

  it('httpRateLimit / wsRateLimit set every route of their stage, and no route of it has its own', () => {
    const s = synthRoster({ httpRateLimit: '20', httpBurstLimit: '40', wsRateLimit: '30', wsBurstLimit: '60' });
    expect(stage(s, '$default').Properties).toMatchObject({ DefaultRouteSettings: throttle(20, 40) });
    expect(stage(s, '$default').Properties?.RouteSettings).toBeUndefined();
    expect(stage(s, 'live').Properties).toMatchObject({ DefaultRouteSettings: throttle(30, 60) });
    expect(stage(s, 'live').Properties?.RouteSettings).toBeUndefined();
  });

  it('refuses an expectedNodes that is not a whole number of at least 1, naming the key', () => {
    for (const bad of ['0', '-5', '2.5', 'many']) {
      expect(() => buildRoster(rosterApp({ expectedNodes: bad })), bad).toThrow(/Context value expectedNodes=.* is invalid: expected/);
    }
  });

  it('holds the same account figures as the planner', () => {
    expect(API_GATEWAY_ACCOUNT_THROTTLE).toEqual({ rateLimit: AWS_LIMITS.apiGatewayAccountRate.value, burstLimit: AWS_LIMITS.apiGatewayAccountBurst.value });
    expect(MIN_ROUTE_THROTTLE.rateLimit).toBeLessThan(API_GATEWAY_ACCOUNT_THROTTLE.rateLimit);
  });
});
