/**
 * `roster token create` as a user runs it, as a CLI process: it signs with
 * the local data directory's secret, and refuses bad input with the exit
 * codes docs/running-nodes/cli.md lists. The verification module and the
 * lifetimes it parses: tokens.unit.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { keyOf, verifyToken } from '../../functions/core/auth.ts';
import { ensureSecretFile } from '../../local/auth-secret.ts';
import { runCli, type Finished } from '../support/processes.ts';

let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'roster-tokens-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

describe('roster token create', () => {
  const run = (args: string[]): Promise<Finished> => runCli(['token', ...args]);

  test('signs with the local data directory\'s secret; the token verifies with it and carries the claims asked for', async () => {
    const dataDir = path.join(scratch, 'data');
    const { secret: local } = await ensureSecretFile(path.join(dataDir, 'auth-secret'));
    const result = await run(['create', '--cluster', 'backup', '--role', 'node', '--ttl', '2h', '--sub', 'node-1', '--data-dir', dataDir]);
    expect(result.code, result.stderr).toBe(0);
    const token = result.stdout.trim();
    expect(result.stdout).toBe(`${token}\n`);
    const claims = await verifyToken(token, [keyOf(local)]);
    expect(claims).toMatchObject({ cluster: 'backup', role: 'node', sub: 'node-1' });
    expect(claims.exp * 1000 - Date.now()).toBeGreaterThan(7_000_000);
    expect(result.stderr).not.toContain(local);
  });

  test('refuses a bad role, cluster, lifetime or secret source with exit 2, and a missing secret file with exit 1', async () => {
    const file = path.join(scratch, 'data', 'auth-secret');
    for (const args of [
      ['create', '--cluster', 'c', '--role', 'root', '--secret-file', file],
      ['create', '--cluster', 'a b', '--role', 'node', '--secret-file', file],
      ['create', '--cluster', 'c', '--role', 'node', '--ttl', '400d', '--secret-file', file],
      ['create', '--cluster', 'c', '--role', 'node'],
      ['create', '--cluster', 'c', '--role', 'node', '--secret-file', file, '--data-dir', scratch],
      ['revoke', '--cluster', 'c', '--role', 'node', '--secret-file', file],
    ]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stdout).toBe('');
    }
    // Before the first `--auth --data-dir` run there is no secret yet: say so, and what to run first.
    const nowhere = path.join(scratch, 'nowhere');
    const missing = await run(['create', '--cluster', 'c', '--role', 'node', '--data-dir', nowhere]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `roster token: there is no token secret in ${path.join(nowhere, 'auth-secret')} yet: the local runtime creates it the first time it starts with --auth --data-dir ${nowhere}. ` +
        `Run npm start -- --auth --data-dir ${nowhere} once (it may go on running), then this command again\n`,
    );
    expect(readFileSync(file, 'utf8').length).toBeGreaterThan(60);
  });
});
