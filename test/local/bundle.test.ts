/**
 * The CLI and runtime bundle (bin/bundle.js): the CLI answers the same from
 * it as from the sources through tsx, and a bundle is used only while the
 * sources it was built from are unchanged. The runtime from the bundle is
 * what every other test that spawns one runs (local/spawn.ts); the forked
 * execution environments are in lambda-api.test.ts.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { bundleDir } from '../../bin/bundle.js';
import { runCli } from '../support/processes.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempCache(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'roster-bundle-'));
  dirs.push(dir);
  return dir;
}

describe('the CLI and runtime bundle', () => {
  test('the CLI prints the same from the bundle as from the sources, and a bad flag fails the same way', async () => {
    const fromSources = { env: { ROSTER_BUNDLE: 'off' } };
    const [help, helpSources, bad, badSources] = await Promise.all([
      runCli(['--help']),
      runCli(['--help'], fromSources),
      runCli(['cost', '--nodes', 'many']),
      runCli(['cost', '--nodes', 'many'], fromSources),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('roster serve');
    expect(help.stdout).toBe(helpSources.stdout);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(badSources.stderr);
  });

  test('is built once, reused while its sources are unchanged, and rebuilt when one changes', async () => {
    const cacheDir = await tempCache();
    const first = await bundleDir({ cacheDir });
    expect(first).toBeDefined();
    await stat(path.join(first!, 'local/main.mjs'));
    expect(await bundleDir({ cacheDir })).toBe(first);

    // A source changed since the build: the manifest's fingerprint no longer matches what is on disk.
    const manifestFile = path.join(cacheDir, 'current.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { inputs: string[]; fingerprint: string };
    expect(manifest.inputs).toContain('functions/core/lease.ts');
    await writeFile(manifestFile, JSON.stringify({ ...manifest, fingerprint: 'built from other sources' }));
    const second = await bundleDir({ cacheDir });
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    // The old one stays for a day: a process started from it may still load its chunks.
    await stat(path.join(first!, 'local/main.mjs'));
    expect(await bundleDir({ cacheDir })).toBe(second);
  });

  test('ROSTER_BUNDLE=off asks for the sources', async () => {
    const cacheDir = await tempCache();
    const saved = process.env.ROSTER_BUNDLE;
    process.env.ROSTER_BUNDLE = 'off';
    try {
      expect(await bundleDir({ cacheDir })).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.ROSTER_BUNDLE;
      else process.env.ROSTER_BUNDLE = saved;
    }
  });
});
