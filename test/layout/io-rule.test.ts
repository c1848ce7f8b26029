/**
 * The rule that keeps each test file to its kind (test/support/io-rule.ts),
 * run in a child vitest on the case files of test/fixtures/io-rule/: a unit
 * file whose code swallowed the refusal fails all the same, and a file of the
 * integration project that did no I/O fails, asking for the rename. (The
 * refusals themselves: io-rule.unit.test.ts.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { REPO_ROOT } from '../support/runtime.ts';

interface FileResult {
  name: string;
  status: 'passed' | 'failed';
  message: string;
}

const dir = mkdtempSync(path.join(tmpdir(), 'roster-io-rule-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runCases(...extra: string[]): Map<string, FileResult> {
  const out = path.join(dir, `result-${String(Date.now())}.json`);
  // The child is a vitest of its own: none of this worker's VITEST_* variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST')));
  const run = spawnSync(
    process.execPath,
    ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test/fixtures/io-rule/vitest.config.ts', '--reporter=json', `--outputFile=${out}`, ...extra],
    { cwd: REPO_ROOT, encoding: 'utf8', env },
  );
  const report = JSON.parse(readFileSync(out, 'utf8')) as { testResults: FileResult[] };
  expect(report.testResults.length, run.stderr).toBeGreaterThan(0);
  return new Map(report.testResults.map((r) => [path.basename(r.name), r]));
}

test('each case file passes or fails by the rule of its project', () => {
  const results = runCases();
  expect(results.get('unit-pure.case.ts')?.status).toBe('passed');
  expect(results.get('integration-busy.case.ts')?.status).toBe('passed');

  const swallowed = results.get('unit-swallows.case.ts');
  expect(swallowed?.status).toBe('failed');
  expect(swallowed?.message).toMatch(/a unit test did what it may not: start a child process \(spawnSync/);

  const idle = results.get('integration-idle.case.ts');
  expect(idle?.status).toBe('failed');
  expect(idle?.message).toMatch(/started no process or server and opened no connection: it is a unit test; rename it to \*\.unit\.test\.ts/);
});

test('a filtered run proves nothing about a file: an integration file that ran only some of its tests is not told to rename', () => {
  const results = runCases('--project', 'integration', '-t', 'adds');
  expect(results.get('integration-idle.case.ts')?.status).toBe('passed');
});
