/**
 * No file of the repository keeps a merge's conflict markers: one did, in a
 * page of the docs, through two merges, because nothing reads every file.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { REPO_ROOT } from '../support/runtime.ts';

test('no tracked text file has a line of conflict markers', () => {
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(listed.status, listed.stderr).toBe(0);
  const files = listed.stdout.split('\0').filter((f) => f !== '' && /\.(ts|tsx|js|mjs|json|md|html|css|yml|yaml|sh|guard)$/.test(f));
  expect(files.length).toBeGreaterThan(100);
  const marked = files.filter((f) => /^(<{7}|>{7}) /m.test(readFileSync(join(REPO_ROOT, f), 'utf8')));
  expect(marked).toEqual([]);
});
