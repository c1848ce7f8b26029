/**
 * The CLI's first hour, as a new user meets it: clear words for small
 * mistakes, the same reason for a refused token whether it was refused over
 * HTTP or on the WebSocket, `--version`, the bench without Java, and
 * `npm start` under a process manager's SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { eventually } from '../support/wait.ts';
import { startAuthRuntime, type AuthRuntime } from '../auth/support.ts';
import { REPO_ROOT, runtimeArgs } from '../support/runtime.ts';

const STACK_TRACE = /\n\s+at |\.ts:\d+/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function roster(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/roster.js', ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A usage error: exit 2, one line naming the mistake, then the pointer to --help; no stack trace. */
function expectUsageError(run: Run, pattern: RegExp): void {
  expect(run.code, run.stderr).toBe(2);
  const [first, second] = run.stderr.trim().split('\n');
  expect(first).toMatch(pattern);
  expect(second).toMatch(/^Run "roster \w+ --help" for usage\.$/);
  expect(run.stderr).not.toMatch(STACK_TRACE);
}

describe('small mistakes get clear words', () => {
  test('roster --version prints the version', async () => {
    const { version } = JSON.parse(readFileSync(`${REPO_ROOT}/package.json`, 'utf8')) as { version: string };
    const run = await roster(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^roster ${version.replace(/\./g, '\\.')} \\(node v\\d+`));
  });

  test('an empty or invalid cluster id is a usage error that states the rule, not "no route"', async () => {
    for (const id of ['', '..', 'a b']) {
      const run = await roster(['nodes', id]);
      expectUsageError(run, /^roster nodes: <cluster> must be 1-64 characters of A-Z a-z 0-9 \. _ - \(not "\." or "\.\."\), not "/);
      expect(run.stderr).not.toMatch(/no route/);
    }
    expectUsageError(await roster(['agent', 'c1', '.']), /^roster agent: <node> must be 1-64 characters/);
  });

  test('a negative number is refused as a number (not as an "ambiguous argument")', async () => {
    const run = await roster(['cost', '--nodes', '-5']);
    expectUsageError(run, /^roster cost: --nodes must be a positive whole number, not "-5"$/);
    expect(run.stderr).not.toMatch(/ambiguous/);
  });

  test('a URL without its scheme is shown in the form wanted, with the flag\'s name', async () => {
    const run = await roster(['nodes', 'c1', '--url', 'localhost:4000']);
    expectUsageError(run, /^roster nodes: --url must be an http:\/\/ or https:\/\/ URL such as http:\/\/localhost:4000, not "localhost:4000"$/);
    expect(run.stderr).not.toMatch(/httpUrl|::/);
    expectUsageError(await roster(['watch', 'c1', '--ws-url', '127.0.0.1:4000/ws']), /^roster watch: --ws-url must be a ws:\/\/ or wss:\/\/ URL such as ws:\/\/127\.0\.0\.1:4000\/ws/);
    expectUsageError(await roster(['nodes', 'c1'], { ROSTER_URL: 'localhost:4000' }), /^roster nodes: ROSTER_URL must be an http:\/\/ or https:\/\/ URL/);
  });

  test('the bench without Java says what to install, and offers no flag the bench does not take', async () => {
    const run = await roster(['bench', '--quick'], { PATH: '/nonexistent', JAVA_HOME: undefined });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^roster bench: DynamoDB Local needs Java 17 or newer.*Install it/m);
    expect(run.stderr).not.toMatch(/--dynamodb-endpoint/);
    expect(run.stderr).not.toMatch(STACK_TRACE);
  });

  test('the cache file the docs suggest is ignored by git', () => {
    const paths = ['.roster-cache.json', 'dev/.roster-cache.json'];
    const result = spawnSync('git', ['check-ignore', '--no-index', ...paths], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(result.stdout.trim().split('\n')).toEqual(paths);
  });
});

describe('a refused token: the same reason on HTTP and on the WebSocket', () => {
  let rt: AuthRuntime;
  beforeAll(async () => {
    rt = await startAuthRuntime();
  });
  afterAll(async () => {
    await rt?.stop();
  });

  const target = () => ['--url', rt.httpUrl, '--ws-url', rt.wsUrl];
  const reason = (run: Run, command: string): string => {
    expect(run.code, run.stderr).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^roster ${command}: `));
    return (lines[0] as string).slice(`roster ${command}: `.length);
  };

  test('a reader token of another cluster', async () => {
    const c = `cl-${randomUUID().slice(0, 8)}`;
    const token = await rt.mint('elsewhere', 'reader');
    const nodes = reason(await roster(['nodes', c, '--token', token, ...target()]), 'nodes');
    const watch = reason(await roster(['watch', c, '--token', token, ...target()]), 'watch');
    expect(nodes).toMatch(/cluster/);
    expect(watch).toBe(nodes);
    expect(watch).not.toMatch(/HTTP 403\)$|refused the token/);
  }, 60_000);

  test('no token at all', async () => {
    const c = `cl-${randomUUID().slice(0, 8)}`;
    const nodes = reason(await roster(['nodes', c, ...target()], { ROSTER_TOKEN: '' }), 'nodes');
    const watch = reason(await roster(['watch', c, ...target()], { ROSTER_TOKEN: '' }), 'watch');
    expect(nodes).toMatch(/requires a token/);
    expect(watch).toBe(nodes);
  }, 60_000);
});

describe('npm start', () => {
  test('ends with the server when a process manager sends SIGTERM to npm alone', async () => {
    const args = runtimeArgs({ dynamodbEndpoint: inject('dynamodbEndpoint') });
    const npm = spawn('npm', ['start', '--silent', '--', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    createInterface({ input: npm.stdout }).on('line', (line) => lines.push(line));
    createInterface({ input: npm.stderr }).on('line', (line) => lines.push(line));
    const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
    let url = '';
    await eventually(
      () => {
        const ready = lines.find((l) => l.startsWith('HTTP API'));
        expect(ready, lines.join('\n')).toBeDefined();
        url = (ready as string).split(/\s+/)[2] as string;
      },
      30_000,
    );
    expect((await fetch(`${url}/v1/health`)).status).toBe(200);

    npm.kill('SIGTERM');
    await exited;
    // The server went with it: its port stops answering (no orphan left running).
    await eventually(() => expect(fetch(`${url}/v1/health`)).rejects.toThrow(), 20_000);
  }, 60_000);
});
