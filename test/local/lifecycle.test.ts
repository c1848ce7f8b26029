/**
 * The runtime as a process: the ready lines, its own DynamoDB Local (in
 * memory or persisted with --data-dir), graceful stop on SIGTERM and SIGINT
 * with WebSockets closed 1001 and no child process left, and the one-line
 * failures (port taken, Java missing, bad flags).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, test } from 'vitest';
import WebSocket from 'ws';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { STACK_TRACE, childrenOf, commandOf, isAlive, rosterLines, runMain } from '../support/processes.ts';

const started: SpawnedRuntime[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(started.map((r) => r.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function spawnTracked(options: Parameters<typeof spawnRuntime>[0]): Promise<SpawnedRuntime> {
  const runtime = await spawnRuntime(options);
  started.push(runtime);
  return runtime;
}

function stdoutLines(runtime: SpawnedRuntime): string[] {
  return runtime.output().split('\n').filter((l) => l.startsWith('HTTP API') || l.startsWith('WebSocket'));
}

describe('lifecycle', () => {
  test('starts its own DynamoDB Local, persists with --data-dir, stops cleanly and leaves no child process', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'roster-data-'));
    dirs.push(dataDir);

    const first = await spawnTracked({ dataDir });
    expect(stdoutLines(first)).toEqual([`HTTP API  http://127.0.0.1:${first.port}`, `WebSocket ws://127.0.0.1:${first.port}/ws`]);
    const children = childrenOf(first.process.pid as number);
    expect(children.map(commandOf).some((cmd) => cmd.includes('DynamoDBLocal.jar') && cmd.includes(dataDir))).toBe(true);

    const put = await fetch(`${first.httpUrl}/v1/clusters/persist/nodes/n1`, { method: 'PUT', body: JSON.stringify({ leaseSeconds: 3600, metadata: { kept: 'yes' } }) });
    expect(put.status).toBe(201);

    // A connected client sees the runtime go away with 1001.
    const ws = new WebSocket(`${first.wsUrl}?clusterId=persist`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

    expect(await first.stop('SIGTERM')).toBe(0);
    expect(await closed).toBe(1001);
    for (const pid of children) expect(isAlive(pid), commandOf(pid)).toBe(false);
    expect(first.output()).not.toMatch(STACK_TRACE);

    // The same data directory again: the node is still there.
    const second = await spawnTracked({ dataDir });
    const got = await fetch(`${second.httpUrl}/v1/clusters/persist/nodes/n1`);
    expect(got.status).toBe(200);
    expect(((await got.json()) as { node: { status: string; metadata: Record<string, string> } }).node).toMatchObject({ status: 'UP', metadata: { kept: 'yes' } });
    const secondChildren = childrenOf(second.process.pid as number);
    expect(secondChildren.length).toBeGreaterThan(0);
    expect(await second.stop('SIGINT')).toBe(0);
    for (const pid of secondChildren) expect(isAlive(pid), commandOf(pid)).toBe(false);
    expect(second.output()).not.toMatch(STACK_TRACE);
  }, 120_000);

  test('a second instance on a taken port fails with one clear line and a non-zero exit', async () => {
    const first = await spawnTracked({ dynamodbEndpoint: inject('dynamodbEndpoint') });
    const second = await runMain(['--port', String(first.port), '--dynamodb-endpoint', inject('dynamodbEndpoint')]);
    expect(second.code).toBe(1);
    expect(second.stdout).toBe('');
    const lines = rosterLines(second.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^roster serve: port ${first.port} on 127\\.0\\.0\\.1 is already in use`));
    expect(second.stderr).not.toMatch(STACK_TRACE);
    // The first one is unaffected.
    expect((await fetch(`${first.httpUrl}/v1/health`)).status).toBe(200);
  });

  test('without Java it prints the one-paragraph JavaMissingError message and exits non-zero', async () => {
    const result = await runMain(['--port', '0'], { PATH: '/nonexistent', JAVA_HOME: undefined });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = rosterLines(result.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^roster serve: DynamoDB Local needs Java 17 or newer.*--dynamodb-endpoint/);
    expect(result.stderr).not.toMatch(STACK_TRACE);
  });

  test('--help prints the flags; a bad flag or value is one line and exit code 2', async () => {
    const help = await runMain(['--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--port', '--data-dir', '--dynamodb-endpoint', '--table', '--sweep-interval', '--disconnect-grace', '--default-lease', '--poll-interval-ms', '--verbose']) {
      expect(help.stdout).toContain(flag);
    }

    const unknown = await runMain(['--prot', '4000']);
    expect(unknown.code).toBe(2);
    expect(rosterLines(unknown.stderr)[0]).toMatch(/^roster serve: .*--prot/);
    expect(unknown.stderr).not.toMatch(STACK_TRACE);

    const badLease = await runMain(['--default-lease', '1']);
    expect(badLease.code).toBe(2);
    expect(rosterLines(badLease.stderr)).toEqual(['roster serve: --default-lease must be a whole number from 2 to 3600, not "1"']);

    const both = await runMain(['--data-dir', '/tmp/x', '--dynamodb-endpoint', 'http://127.0.0.1:1']);
    expect(both.code).toBe(2);
    expect(rosterLines(both.stderr)[0]).toMatch(/exclude each other/);
  });
});
