/**
 * `npm ci` runs no install script and warns about none: every installed
 * package with an install script is decided by `allowScripts` in
 * package.json (npm 11's policy), and each decision is explained in
 * docs/contributing/conventions.md, both ways.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../support/runtime.ts';

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
const policy = manifest.allowScripts ?? {};

/** The packages of the "Install scripts" table: its first column. */
function documented(): string[] {
  const page = readFileSync(join(REPO_ROOT, 'docs', 'contributing', 'conventions.md'), 'utf8');
  const section = page.slice(page.indexOf('## Install scripts'));
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string).sort();
}

describe('install scripts', () => {
  test('npm finds no installed package whose install script allowScripts leaves undecided', () => {
    const result = spawnSync('npm', ['install-scripts', 'ls', '--offline'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('No packages with unreviewed install scripts.');
  });

  test('every decision is a denial, explained in docs/contributing/conventions.md, and the page explains no other', () => {
    expect(Object.keys(policy).length).toBeGreaterThan(0);
    expect(Object.entries(policy).filter(([, allowed]) => allowed !== false)).toEqual([]);
    expect(documented()).toEqual(Object.keys(policy).sort());
  });
});
