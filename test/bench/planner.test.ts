/**
 * `roster capacity --template FILE` as a user runs it, as a CLI process: every
 * limit, the first to break, the JSON form, and bad input refused with exit 2.
 * The planner's figures: planner.unit.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, test } from 'vitest';
import type { CapacityPlan } from '../../bench/planner.ts';
import { loadTemplate } from '../../local/template/source.ts';
import { REPO_ROOT } from '../support/runtime.ts';

test('roster capacity --template prints every limit and marks the first to break; bad input exits 2', async () => {
  // The stack's template as the global setup synthesized it (the app of this checkout, cdk.json's context).
  const { file } = await loadTemplate({});
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
    [['--nodes', '1000', '--template', path.join(tmpdir(), `roster-missing-${process.pid}.json`)], /--template .*missing\.json: cannot read .*: no such file/],
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
