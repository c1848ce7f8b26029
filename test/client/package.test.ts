/**
 * The SDK as users get it: `npm pack ./client` (which builds it), the
 * tarball installed into a fresh app with npm, and there, with plain `node`
 * (no tsx, no TypeScript loader), imported from ES modules and CommonJS,
 * type-checked with `moduleResolution` nodenext and bundler, and run as a
 * watcher and as a node against the local runtime.
 *
 * Offline: `ws` is installed from the copy this repository already has
 * (packed next to the SDK), so npm never needs the registry.
 *
 * Also what a publisher and a shell user meet: `npm publish --dry-run` of
 * the package is clean and its manifest is complete, and the package's
 * `roster` bin is what `npx roster` runs in the app — including `roster
 * agent`, which ends and deregisters when the npm process that started it
 * is killed with SIGKILL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { eventually } from '../support/wait.ts';
import { isAlive } from '../support/processes.ts';
import { REPO_ROOT, spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { getNodeDirect, registerDirect, uniqueCluster } from './helpers.ts';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const TSC = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `npm pack --json`: the tarball's name and files. */
function pack(dir: string, destination: string): { filename: string; size: number; files: string[] } {
  // The build (prepack) may print too: the JSON is what follows it.
  const out = run(NPM, ['pack', dir, '--json', '--pack-destination', destination], REPO_ROOT);
  const [info] = JSON.parse(out.slice(out.search(/^\[/m))) as {
    filename: string;
    size: number;
    files: { path: string }[];
  }[];
  if (!info) throw new Error(`npm pack ${dir} printed nothing`);
  return { filename: join(destination, info.filename), size: info.size, files: info.files.map((f) => f.path).sort() };
}

const CONSUMER = `
import { exponentialBackoff, listNodes, RosterClient, RosterClientError, type ClientEvent, type DownEvent, type Node } from '@roster/client';

export async function use(httpUrl: string, wsUrl: string): Promise<string[]> {
  const client = new RosterClient({ httpUrl, wsUrl, clusterId: 'c1', nodeId: 'n1', backoff: exponentialBackoff({ maxMs: 5000 }), stopOnSignals: true });
  client.on('down', (e: DownEvent) => console.log(e.reason ?? 'unknown', e.source));
  // @ts-expect-error: an option that does not exist (this line proves the types are not \`any\`)
  new RosterClient({ httpUrl, wsUrl, clusterId: 'c1', leaseMinutes: 1 });
  // @ts-expect-error: no such event
  client.on('vanished', () => undefined);
  try {
    await client.start();
  } catch (err) {
    if (err instanceof RosterClientError && err.retriable) return [err.code];
    throw err;
  }
  for await (const event of client.events() as AsyncIterable<ClientEvent>) {
    if (event.type === 'lost' && event.reason === 'expired') break;
  }
  const nodes: readonly Node[] = client.nodes();
  const list = await listNodes({ httpUrl, clusterId: 'c1', all: true });
  await client.stop();
  return [...nodes.map((n) => n.nodeId), String(list.revision)];
}
`;

const WATCHER = `
const { RosterClient } = require('@roster/client');
const [httpUrl, wsUrl, clusterId] = process.argv.slice(2);
const client = new RosterClient({ httpUrl, wsUrl, clusterId });
client.on('registered', (e) => {
  console.log(JSON.stringify({ registered: e.node.nodeId, source: e.source }));
  client.stop().then(() => process.exit(0));
});
client.start().then(() => console.log('watching'));
`;

const NODE_ON_SIGNALS = `
import { RosterClient } from '@roster/client';
const [httpUrl, wsUrl, clusterId, nodeId] = process.argv.slice(2);
const client = new RosterClient({ httpUrl, wsUrl, clusterId, nodeId, stopOnSignals: true });
await client.start();
console.log('registered');
`;

describe('the packed SDK in a fresh app', () => {
  let work: string;
  let app: string;
  let packed: { filename: string; size: number; files: string[] };
  let runtime: SpawnedRuntime;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'roster-sdk-'));
    app = join(work, 'app');
    await mkdir(app);
    const [sdk, ws] = await Promise.all([
      Promise.resolve(pack('./client', work)),
      Promise.resolve(pack(join(REPO_ROOT, 'node_modules', 'ws'), work)),
    ]);
    packed = sdk;
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    run(NPM, ['install', '--offline', '--no-audit', '--no-fund', '--cache', join(work, 'npm-cache'), ws.filename, sdk.filename], app);
    runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint') });
  }, 180_000);

  afterAll(async () => {
    await runtime?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the tarball holds the README, package.json and the built code, nothing else; ws is its one dependency', async () => {
    expect(packed.files).toEqual(['LICENSE', 'README.md', 'dist/index.cjs', 'dist/index.d.cts', 'dist/index.d.mts', 'dist/index.mjs', 'dist/roster.mjs', 'package.json']);
    const manifest = JSON.parse(await readFile(join(app, 'node_modules', '@roster', 'client', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.dependencies).toEqual({ ws: expect.stringMatching(/^\^8\./) });
    expect(manifest.sideEffects).toBe(false);
    // The private contract module is bundled in, never required.
    for (const file of ['index.mjs', 'index.cjs', 'index.d.mts', 'index.d.cts']) {
      expect(await readFile(join(app, 'node_modules', '@roster', 'client', 'dist', file), 'utf8'), file).not.toMatch(/from ["']@roster\/contract["']|require\(["']@roster\/contract["']\)/);
    }
  });

  test('npm publish --dry-run is clean, and the manifest says what a registry and its provenance need', async () => {
    // A token in a throwaway user config stands for a logged-in publisher; --offline keeps npm off the network.
    const userconfig = join(work, 'publisher.npmrc');
    await writeFile(userconfig, '//registry.npmjs.org/:_authToken=dry-run-only\n');
    const result = spawnSync(NPM, ['publish', './client', '--dry-run', '--offline', '--json', '--userconfig', userconfig], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    expect(result.status, result.stderr).toBe(0);
    // npm warns about whatever it had to correct in package.json (a bin path, a repository URL, …): nothing.
    expect(result.stderr.split('\n').filter((l) => /^npm (warn|error)/.test(l))).toEqual([]);
    const report = JSON.parse(result.stdout.slice(result.stdout.search(/^\{/m))) as Record<string, { name: string; files: { path: string }[] }>;
    expect(report['@roster/client']?.files.map((f) => f.path).sort()).toEqual(packed.files);

    const manifest = JSON.parse(await readFile(join(app, 'node_modules', '@roster', 'client', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({
      name: '@roster/client',
      license: 'Apache-2.0',
      engines: { node: expect.stringMatching(/^>=20/) },
      // Provenance: npm checks that the repository is the one the publishing workflow runs in.
      repository: { type: 'git', url: expect.stringMatching(/^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/), directory: 'client' },
      publishConfig: { access: 'public', provenance: true },
      bin: { roster: 'dist/roster.mjs' },
      exports: {
        '.': { import: { types: './dist/index.d.mts', default: './dist/index.mjs' }, require: { types: './dist/index.d.cts', default: './dist/index.cjs' } },
        './package.json': './package.json',
      },
    });
    expect(await readFile(join(app, 'node_modules', '@roster', 'client', 'LICENSE'), 'utf8')).toMatch(/Apache License\s+Version 2\.0/);
  });

  test('npx roster in the app runs the package\'s bin (nodes, watch, agent), never the registry\'s roster', async () => {
    const version = run(NPM, ['exec', '--offline', '--no', '--', 'roster', '--version'], app);
    expect(version.trim()).toMatch(/^roster 0\.1\.0 \(@roster\/client; node v/);
    const help = run(NPM, ['exec', '--offline', '--no', '--', 'roster', '--help'], app);
    expect([...help.matchAll(/^ {2}([a-z]+) {2}/gm)].map((m) => m[1])).toEqual(['nodes', 'watch', 'agent']);
    // The repository's other commands say where they are.
    const serve = spawnSync(NPM, ['exec', '--offline', '--no', '--', 'roster', 'serve'], { cwd: app, encoding: 'utf8' });
    expect(serve.status).toBe(2);
    expect(serve.stderr).toMatch(/^roster: "serve" is not in this CLI\. .*in a clone of https:\/\/github\.com\//m);

    const clusterId = uniqueCluster('npx');
    await registerDirect(runtime.httpUrl, clusterId, 'n1');
    const nodes = run(NPM, ['exec', '--offline', '--no', '--', 'roster', 'nodes', clusterId, '--url', runtime.httpUrl], app);
    expect(nodes).toMatch(/^n1\s+UP\s/m);
  });

  test('roster agent under npx ends, and deregisters, when npm is killed with SIGKILL', async () => {
    const clusterId = uniqueCluster('orphan');
    const npm = spawn(NPM, ['exec', '--offline', '--no', '--', 'roster', 'agent', clusterId, 'n1', '--url', runtime.httpUrl, '--ws-url', runtime.wsUrl], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = collect(npm);
    // Its own registration, with its pid: npm's process is not the agent's.
    const registered = await eventually(() => lines().find((l) => /\bregistered\s+n1\s.*\(this agent, pid \d+/.test(l)) ?? false, 30_000, () => lines().join('\n'));
    const pid = Number(/pid (\d+)/.exec(registered)?.[1]);
    expect(pid).not.toBe(npm.pid);
    expect(isAlive(pid)).toBe(true);

    npm.kill('SIGKILL');
    try {
      await eventually(() => !isAlive(pid), 20_000, 'the agent outlived npm');
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    expect(lines()).toContainEqual(expect.stringMatching(/\bderegistered\s+n1\s+\(this agent, pid \d+\)/));
    expect(lines()).toContainEqual(expect.stringMatching(/^stderr: roster agent: the process that started it \(npm exec.*, pid \d+\) ended; stopping$/));
    expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });

  test('plain node imports it from ES modules and requires it from CommonJS', () => {
    const esm = run(process.execPath, ['--input-type=module', '-e', "import * as sdk from '@roster/client'; console.log(Object.keys(sdk).sort().join(','))"], app);
    const cjs = run(process.execPath, ['-e', "const sdk = require('@roster/client'); console.log(Object.keys(sdk).sort().join(','))"], app);
    expect(esm.trim()).toBe('RosterClient,RosterClientError,RosterLease,exponentialBackoff,listNodes,listNodesIfChanged');
    expect(cjs.trim()).toBe(esm.trim());
  });

  test.each(['nodenext', 'bundler'] as const)('a TypeScript consumer type-checks with moduleResolution %s (declarations checked too)', async (resolution) => {
    const dir = join(app, `ts-${resolution}`);
    await mkdir(dir, { recursive: true });
    const files = resolution === 'nodenext' ? ['esm.mts', 'cjs.cts'] : ['app.ts'];
    for (const file of files) await writeFile(join(dir, file), CONSUMER);
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          target: 'ES2022',
          lib: ['ES2023'],
          module: resolution === 'nodenext' ? 'nodenext' : 'esnext',
          moduleResolution: resolution,
          types: ['node'],
          typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
        },
        include: files,
      }),
    );
    run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], dir);
  });

  test('a watcher in the app (CommonJS, plain node) sees a registration on the local runtime', async () => {
    const clusterId = uniqueCluster('pkg');
    await writeFile(join(app, 'watch.cjs'), WATCHER);
    const child = spawn(process.execPath, ['watch.cjs', runtime.httpUrl, runtime.wsUrl, clusterId], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = collect(child);
    await eventually(() => expect(lines()).toContain('watching'), 20_000);
    await registerDirect(runtime.httpUrl, clusterId, 'from-outside');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(await exited).toBe(0);
    expect(lines()).toContain(JSON.stringify({ registered: 'from-outside', source: 'event' }));
  });

  test('a node with stopOnSignals deregisters on SIGINT, then ends as SIGINT ends a process', async () => {
    const clusterId = uniqueCluster('sig');
    await writeFile(join(app, 'node.mjs'), NODE_ON_SIGNALS);
    const child = spawn(process.execPath, ['node.mjs', runtime.httpUrl, runtime.wsUrl, clusterId, 'n1'], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = collect(child);
    await eventually(() => expect(lines()).toContain('registered'), 20_000);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGINT');
    expect(await exited).toBe('SIGINT');
    expect(await getNodeDirect(runtime.httpUrl, clusterId, 'n1')).toMatchObject({ status: 'DOWN', downReason: 'deregistered' });
  });
});

/** Every stdout line (and stderr, for failures) of a child. */
function collect(child: ChildProcess): () => string[] {
  const lines: string[] = [];
  if (child.stdout) createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  if (child.stderr) createInterface({ input: child.stderr }).on('line', (line) => lines.push(`stderr: ${line}`));
  return () => lines;
}
