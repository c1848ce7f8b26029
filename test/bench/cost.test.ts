/**
 * The cost model (`roster cost`): its arithmetic follows the per-operation
 * counts the README states, every price carries a source and a date, and the
 * command prints the table and the comparison.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { cloudMapCost, defaults, etcdCost, RECONNECTS_PER_CONNECTION, rosterCost } from '../../bench/cost.ts';
import { PRICES, SECONDS_PER_MONTH } from '../../bench/prices.ts';
import { REPO_ROOT } from '../support/runtime.ts';

const line = (estimate: ReturnType<typeof rosterCost>, component: string): number => {
  const found = estimate.lines.find((l) => l.component.startsWith(component));
  if (!found) throw new Error(`no line ${component}`);
  return found.usd;
};

describe('cost model', () => {
  test('keepalives: one HTTP request and 3 WRU each; a refresh reads one item, only a reconnect reads the whole cluster', () => {
    const input = { ...defaults(100), churnPerHour: 0, refreshSeconds: 30, pingSeconds: 30 };
    const estimate = rosterCost(input);
    const keepalives = (100 * SECONDS_PER_MONTH) / 5;
    const refreshes = (100 * SECONDS_PER_MONTH) / 30;
    const fullLists = 100 * RECONNECTS_PER_CONNECTION;
    expect(line(estimate, 'HTTP API requests')).toBeCloseTo((keepalives + refreshes + fullLists) * PRICES.httpApiRequest.usd, 6);
    // Writes: 3 WRU per keepalive plus the (smaller) reconnect and sweeper heartbeat writes.
    expect(line(estimate, 'DynamoDB writes')).toBeGreaterThan(keepalives * 3 * PRICES.dynamodbWriteUnit.usd);
    expect(line(estimate, 'DynamoDB writes')).toBeLessThan(keepalives * 3.2 * PRICES.dynamodbWriteUnit.usd);
    // A refresh answered 304 reads the revision counter (1 RRU); a full list of 100 items of 1 KB reads 26.
    const reads = refreshes * 1 + fullLists * 26;
    expect(line(estimate, 'DynamoDB reads')).toBeGreaterThan(reads * PRICES.dynamodbReadUnit.usd);
    expect(line(estimate, 'DynamoDB reads')).toBeLessThan((reads + SECONDS_PER_MONTH * 2.1 + 50_000) * PRICES.dynamodbReadUnit.usd);
    expect(estimate.total).toBeCloseTo(estimate.lines.reduce((sum, l) => sum + l.usd, 0), 9);
  });

  test('the sweeper costs what the README says when nothing else happens', () => {
    const estimate = rosterCost({ ...defaults(1), churnPerHour: 0 });
    expect(line(estimate, 'sweeper Lambda')).toBeCloseTo(4.39, 2);
  });

  test('a longer keepalive interval cuts the keepalive share proportionally; detection by crash does not change', () => {
    const fast = rosterCost({ ...defaults(1000), keepaliveSeconds: 5 });
    const slow = rosterCost({ ...defaults(1000), keepaliveSeconds: 20 });
    expect(line(slow, 'DynamoDB writes')).toBeLessThan(line(fast, 'DynamoDB writes') / 3);
    expect(slow.total).toBeLessThan(fast.total);
  });

  test('Cloud Map and etcd: per-instance charges and a flat three-instance floor', () => {
    const input = defaults(100);
    expect(cloudMapCost(input).usd).toBeGreaterThan(100 * (PRICES.cloudMapInstanceMonth.usd + PRICES.route53HealthCheckMonth.usd));
    expect(etcdCost(input).usd).toBeCloseTo(etcdCost(defaults(10_000)).usd, 9);
    expect(etcdCost(input).crashDetection).toContain('15 s');
  });

  test('every price names its AWS source page and the date it was checked', () => {
    for (const [name, price] of Object.entries(PRICES)) {
      expect(price.source, name).toMatch(/^https:\/\/aws\.amazon\.com\/[a-z0-9-]+\/pricing\//);
      expect(price.checked, name).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(price.usd, name).toBeGreaterThanOrEqual(0);
    }
  });
});

test('roster cost --nodes 1000 --clusters 10 prints the components, the total and the comparison', () => {
  const run = spawnSync(process.execPath, ['bin/roster.js', 'cost', '--nodes', '1000', '--clusters', '10'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  for (const text of ['HTTP API requests', 'WebSocket connection minutes', 'Lambda duration', 'DynamoDB writes', 'sweeper Lambda', 'total', 'AWS Cloud Map', 'etcd, 3 × t4g.small']) {
    expect(run.stdout).toContain(text);
  }
  const bad = spawnSync(process.execPath, ['bin/roster.js', 'cost'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('--nodes is required');
});
