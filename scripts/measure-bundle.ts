/**
 * What a process of the CLI and of the local runtime costs to start, from the
 * bundle (bin/bundle.js) and from the sources through tsx (ROSTER_BUNDLE=off):
 * CPU (user + system) and wall time of `roster --version` and of
 * `roster cost --nodes 1000`, run to their end, and of a runtime until it is
 * ready (on one DynamoDB Local started beforehand, as the tests and benches
 * run them). Rounds interleave the two, so a change of the machine's load
 * falls on both. Linux (/proc).
 *
 *   node --conditions=@roster/source --import tsx scripts/measure-bundle.ts [--rounds 5]
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuMicros } from '../bench/procs.ts';
import { bundleDir } from '../bin/bundle.js';
import { startDynamoDbLocal } from '../local/dynamodb-local.ts';
import { REPO_ROOT, spawnRuntime } from '../local/spawn.ts';

// The pinned AWS SDK's notice about Node 22 is not news here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);

// The CLI reports its own CPU as it exits: a child's /proc entry is gone by the time its parent hears of the exit.
const REPORT_CPU = `data:text/javascript,process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write('\\ncpu-us ' + (u.user + u.system) + '\\n'); })`;

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ cpuS: number; wallMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', REPORT_CPU, 'bin/roster.js', ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const cpu = /cpu-us (\d+)/.exec(stderr);
  if (code !== 0 || !cpu) throw new Error(`roster ${args.join(' ')} failed (${code}):\n${stderr}`);
  return { cpuS: Number(cpu[1]) / 1e6, wallMs: performance.now() - started };
}

async function runtime(dynamodbEndpoint: string, env: NodeJS.ProcessEnv): Promise<{ cpuS: number; wallMs: number }> {
  const spawned = await spawnRuntime({ dynamodbEndpoint, env });
  try {
    const micros = cpuMicros(spawned.process.pid as number);
    if (micros === undefined) throw new Error('no CPU figure for the runtime (Linux /proc only)');
    return { cpuS: micros / 1e6, wallMs: spawned.readyMs };
  } finally {
    await spawned.stop();
  }
}

const KINDS = {
  'roster --version': (_: string, env: NodeJS.ProcessEnv) => cli(['--version'], env),
  'roster cost --nodes 1000': (_: string, env: NodeJS.ProcessEnv) => cli(['cost', '--nodes', '1000'], env),
  'runtime, until ready': runtime,
};
const MODES = { bundle: { ...process.env, ROSTER_BUNDLE: '' }, sources: { ...process.env, ROSTER_BUNDLE: 'off' } };

if ((await bundleDir()) === undefined) throw new Error('no bundle: is esbuild installed?');
const ddb = await startDynamoDbLocal();
const results = new Map<string, { cpuS: number; wallMs: number }[]>();
try {
  for (let round = 0; round < rounds; round++) {
    for (const [kind, run] of Object.entries(KINDS)) {
      for (const [mode, env] of Object.entries(MODES)) {
        const key = `${kind} | ${mode}`;
        results.set(key, [...(results.get(key) ?? []), await run(ddb.endpoint, env)]);
      }
    }
  }
} finally {
  await ddb.stop();
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
process.stdout.write(`| process | from | CPU-s, median of ${rounds} | wall, median |\n|---|---|---|---|\n`);
for (const [key, xs] of results) {
  const [kind, mode] = key.split(' | ');
  process.stdout.write(`| ${kind} | ${mode} | ${median(xs.map((x) => x.cpuS)).toFixed(2)} | ${Math.round(median(xs.map((x) => x.wallMs)))} ms |\n`);
}
