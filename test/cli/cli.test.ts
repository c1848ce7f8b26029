/**
 * The CLI's first hour, as a new user meets it: clear words for small
 * mistakes, the same reason for a refused token whether it was refused over
 * HTTP or on the WebSocket, `--version`, the bench without Java, and
 * `npm start` under a process manager's SIGTERM. And the agent as a user
 * meets it: it says which process it is, when it registered and
 * deregistered, ends with the process that started it, and reports an
 * outage once rather than at every retry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import { eventually, sleep } from '../support/wait.ts';
import { startAuthRuntime, type AuthRuntime } from '../auth/support.ts';
import { isAlive } from '../support/processes.ts';
import { startProxy, type TcpProxy } from '../support/proxy.ts';
import { REPO_ROOT, runtimeArgs, spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { getNodeDirect, registerDirect, serverList, uniqueCluster } from '../client/helpers.ts';

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

  test('a lease out of bounds is a usage error with the bounds, before anything is sent', async () => {
    for (const lease of ['99999', '1', '2.5']) {
      expectUsageError(await roster(['agent', 'c1', 'n1', '--lease', lease, '--url', 'http://127.0.0.1:9']), new RegExp(`^roster agent: --lease must be a whole number from 2 to 3600, not "${lease.replace('.', '\\.')}"$`));
    }
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
  // The request a reason names without its query: `nodes` and `watch` read the list in pages of different sizes.
  const withoutQuery = (reason: string): string => reason.replace(/^(GET \S+?)\?\S*:/, '$1:');

  test('a reader token of another cluster', async () => {
    const c = `cl-${randomUUID().slice(0, 8)}`;
    const token = await rt.mint('elsewhere', 'reader');
    const nodes = reason(await roster(['nodes', c, '--token', token, ...target()]), 'nodes');
    const watch = reason(await roster(['watch', c, '--token', token, ...target()]), 'watch');
    expect(nodes).toMatch(/cluster/);
    expect(withoutQuery(watch)).toBe(withoutQuery(nodes));
    expect(watch).not.toMatch(/HTTP 403\)$|refused the token/);
  }, 60_000);

  test('no token at all', async () => {
    const c = `cl-${randomUUID().slice(0, 8)}`;
    const nodes = reason(await roster(['nodes', c, ...target()], { ROSTER_TOKEN: '' }), 'nodes');
    const watch = reason(await roster(['watch', c, ...target()], { ROSTER_TOKEN: '' }), 'watch');
    expect(nodes).toMatch(/requires a token/);
    expect(withoutQuery(watch)).toBe(withoutQuery(nodes));
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

/** A child's stdout and stderr lines as they come (stderr ones prefixed). */
function linesOf(child: ReturnType<typeof spawn>): () => string[] {
  const lines: string[] = [];
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => lines.push(`stderr: ${line}`));
  return () => lines;
}

/** The agent's own "registered … (this agent, pid N, …)" line, once it printed it; its pid. */
async function registeredPid(lines: () => string[], nodeId: string): Promise<number> {
  const line = await eventually(() => lines().find((l) => new RegExp(`\\bregistered\\s+${nodeId}\\s.*\\(this agent, pid \\d+`).test(l)) ?? false, 30_000, () => lines().join('\n'));
  return Number(/pid (\d+)/.exec(line)?.[1]);
}

describe('the agent and nodes against a local runtime', () => {
  let runtime: SpawnedRuntime;
  beforeAll(async () => {
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint') });
  }, 120_000);
  afterAll(async () => {
    await runtime?.stop();
  });

  const target = () => ['--url', runtime.httpUrl, '--ws-url', runtime.wsUrl];

  test('nodes of a cluster that never had a node says so, not "no healthy nodes"', async () => {
    const never = uniqueCluster('bakcup');
    const run = await roster(['nodes', never, '--url', runtime.httpUrl]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`cluster ${never} has never had a node at ${runtime.httpUrl} (revision 0): is the name right?\n`);

    const emptied = uniqueCluster('emptied');
    await registerDirect(runtime.httpUrl, emptied, 'n1');
    await fetch(`${runtime.httpUrl}/v1/clusters/${emptied}/nodes/n1`, { method: 'DELETE' });
    const after = await roster(['nodes', emptied, '--url', runtime.httpUrl]);
    expect(after.stdout).toMatch(new RegExp(`^no healthy nodes in cluster ${emptied} \\(revision [1-9]\\d*\\)$`, 'm'));
  });

  test('a WebSocket URL without its path is a usage error that names the right one, and registers nothing', async () => {
    const c = uniqueCluster('nopath');
    const bare = runtime.wsUrl.replace(/\/ws$/, '');
    const run = await roster(['agent', c, 'n1', '--url', runtime.httpUrl, '--ws-url', bare]);
    expectUsageError(run, new RegExp(`^roster agent: the WebSocket URL ${bare} has no path: the local runtime's WebSocket API is ${runtime.wsUrl}`));
    expect(run.stderr).not.toMatch(/NODE_NOT_FOUND/);
    expect((await serverList(runtime.httpUrl, c)).revision).toBe(0);
  });

  test('the agent prints its own registration with its pid, and its deregistration on SIGTERM', async () => {
    const c = uniqueCluster('self');
    const agent = spawn(process.execPath, ['bin/roster.js', 'agent', c, 'n1', '--meta', 'zone=a', ...target()], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = linesOf(agent);
    const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
    try {
      expect(await registeredPid(lines, 'n1')).toBe(agent.pid);
      expect(lines()).toContainEqual(expect.stringMatching(new RegExp(`^\\S+Z {2}registered {6}n1 {2}rev \\d+ {2}zone=a {2}\\(this agent, pid \\d+, lease ${DEFAULT_LEASE_SECONDS}s\\)$`)));
      // stderr is its own pipe: its line may come after stdout's registration line, so it is waited for.
      const hint = `stderr: roster agent: this agent is pid ${agent.pid}. Ctrl-C, or SIGTERM to pid ${agent.pid}, deregisters ${c}/n1 and exits; so does the end of the process that started it.`;
      await eventually(() => lines().includes(hint), 20_000, () => lines().join('\n'));
    } finally {
      agent.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(lines().at(-1)).toMatch(new RegExp(`^\\S+Z {2}deregistered {4}n1 {2}\\(this agent, pid ${agent.pid}\\)$`));
    expect(await getNodeDirect(runtime.httpUrl, c, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });

  test('the agent ends, and deregisters, when the process that started it is killed', async () => {
    const c = uniqueCluster('parent');
    // A shell that stays the agent's parent (the trailing command keeps it from exec-ing node).
    const command = `"${process.execPath}" bin/roster.js agent ${c} n1 --url ${runtime.httpUrl} --ws-url ${runtime.wsUrl}; true`;
    const shell = spawn('sh', ['-c', command], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = linesOf(shell);
    let pid = 0;
    try {
      pid = await registeredPid(lines, 'n1');
      expect(pid).not.toBe(shell.pid);
    } finally {
      shell.kill('SIGKILL');
    }
    try {
      await eventually(() => !isAlive(pid), 20_000, () => `the agent outlived its shell:\n${lines().join('\n')}`);
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    // What the agent wrote before it ended may still be in the pipe.
    const stopping = `stderr: roster agent: the process that started it (sh, pid ${shell.pid}) ended; stopping`;
    await eventually(() => lines().includes(stopping), 20_000, () => lines().join('\n'));
    expect(await getNodeDirect(runtime.httpUrl, c, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });

  describe('through a proxy that cuts the network', () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startProxy({ targetPort: runtime.port });
    });
    afterAll(async () => {
      await proxy?.close();
    });

    test('an outage is one keepaliveFailed line (and one per change of error), then one line when a keepalive succeeds again', async () => {
      const c = uniqueCluster('outage');
      // Keepalives every 300 ms, so that the outage below makes many fail; a long lease so that none lapses.
      const args = ['bin/roster.js', 'agent', c, 'n1', '--lease', '60', '--keepalive-ms', '300', '--url', proxy.via(runtime.httpUrl), '--ws-url', proxy.via(runtime.wsUrl)];
      const agent = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      const lines = linesOf(agent);
      const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
      try {
        await registeredPid(lines, 'n1');
        proxy.cut();
        await eventually(() => lines().some((l) => /\bkeepaliveFailed\b/.test(l)), 20_000, () => lines().join('\n'));
        // The outage's length is the scenario, not a wait for a result: about ten keepalives fail in it.
        await sleep(3000);
        proxy.restore();
        const recovered = await eventually(() => lines().find((l) => /\bkeepaliveRecovered\b/.test(l)) ?? false, 20_000, () => lines().join('\n'));
        const failures = Number(/ok again after (\d+) failures? since \d\d:\d\d:\d\d$/.exec(recovered)?.[1]);
        expect(failures, recovered).toBeGreaterThanOrEqual(4);
        const failedLines = lines().filter((l) => /\bkeepaliveFailed\b/.test(l));
        // The first failure, and at most one change of kind (NODE_NOT_FOUND, when the dropped connection took the node down meanwhile).
        expect(failedLines.length, lines().join('\n')).toBeLessThanOrEqual(2);
        expect(failedLines[0]).toMatch(/keepaliveFailed [A-Z_]+: .*; retrying \(repeats are summarised once a minute\)$/);
      } finally {
        agent.kill('SIGTERM');
        await exited;
      }
    }, 90_000);
  });
});
