/**
 * Every shell and TypeScript/JavaScript block a reader would copy from
 * README.md, docs/ and client/README.md runs here, against a local runtime
 * started on a free port, so an example that stops working fails the suite.
 * How a block runs (rewrites, commands that run until Ctrl-C, markers) is
 * described for authors in docs/contributing/testing.md; test/docs/prelude.sh
 * is sourced before each shell block.
 *
 * Blocks marked `<!-- doc-test: aws -->` or `<!-- doc-test: not-run REASON -->`
 * are listed with their reason instead of run; their `roster` commands are
 * still checked against `--help`, and the files they name must exist.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { REPO_ROOT, SCRIPT_LANGS, SHELL_LANGS, blocks, docFiles, type Block } from './markdown.ts';

const run = promisify(execFile);

/** How long a block may take: a few CLI cold starts and a DynamoDB Local start on a busy 2-core machine. */
const BLOCK_TIMEOUT_MS = 240_000;
/** How long a command that runs until Ctrl-C may take to print its ready line. */
const READY_SECONDS = 120;

const ALL = docFiles().flatMap(blocks);
const executable = (b: Block) => SHELL_LANGS.has(b.lang) || SCRIPT_LANGS.has(b.lang);
const skipped = (b: Block) => b.marker?.kind === 'aws' || b.marker?.kind === 'not-run';
const RUN = ALL.filter((b) => executable(b) && !skipped(b));
const NOT_RUN = ALL.filter((b) => executable(b) && skipped(b));

// ─── Shell blocks: one logical line per command, rewritten for the test runtime ─────────────────

/** The block's commands: continuation lines joined, blank lines and whole-line comments dropped. */
export function commands(code: string): string[] {
  const joined = code.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** `line` without a trailing `  # comment` (a `#` after whitespace, outside quotes). */
export function withoutComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && i > 0 && /\s/.test(line[i - 1] ?? '')) return line.slice(0, i).trimEnd();
  }
  return line;
}

const SERVE = /^(?:npm start\b|npx roster serve\b|node bin\/roster\.js serve\b)/;
const CLIENT = /^(?:npx roster|node bin\/roster\.js) (?:agent|watch)\b/;
/** Commands a run block must never hold: they would reinstall the tree, re-enter the suite, or reach AWS. */
const FORBIDDEN = /\bnpm (?:ci|install|i|test)\b|\bnpm run test:aws\b|\bcdk (?:deploy|bootstrap|destroy)\b|\bcdklocal\b|^aws\s/;

export interface Target {
  port: number;
  dynamodbEndpoint: string;
}

let tables = 0;

/** One command as the test runs it (see docs/contributing/testing.md, "How the examples run"). */
export function rewrite(line: string, target: Target): string {
  let command = withoutComment(line).replace(/\b(127\.0\.0\.1|localhost):4000\b/g, `127.0.0.1:${target.port}`);
  if (FORBIDDEN.test(command)) throw new Error(`"${command}" must not run in a test: mark the block <!-- doc-test: not-run REASON -->`);
  const env = /^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)(.*)$/.exec(command);
  const prefix = env?.[1] ?? '';
  let body = env?.[2] ?? command;
  if (SERVE.test(body)) {
    if (body.startsWith('npm start') && !/ -- /.test(`${body} `)) body += ' --';
    if (!/--port\b/.test(body)) body += ' --port 0';
    if (!/--data-dir\b|--dynamodb-endpoint\b/.test(body)) body += ` --dynamodb-endpoint ${target.dynamodbEndpoint} --table doc-test-${process.pid}-${++tables}`;
    command = `${prefix}__doc_bg '^WebSocket ws://' ${body}`;
  } else if (CLIENT.test(body)) {
    command = `${prefix}__doc_bg '[^s]connected' ${body}`;
  }
  return command;
}

// ─── The scratch checkout: files a block writes (.roster/, a cache file) go there ────────────────

const SCRATCH = path.join(tmpdir(), `roster-doc-test-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 12)}`);
/** Left out of the scratch checkout: what the examples write, and what only a real checkout has. */
const NOT_LINKED = new Set(['.git', '.roster', '.roster-cache.json', 'cdk-outputs.json', 'bench.json', 'cdk.out', 'test-results', 'coverage']);

/**
 * A directory of symbolic links to the repository's top-level entries, with a
 * fixed name per checkout (npx keeps one entry per project path in its cache).
 */
function makeScratch(): void {
  rmSync(SCRATCH, { recursive: true, force: true });
  mkdirSync(path.join(SCRATCH, '.doc-test'), { recursive: true });
  for (const entry of readdirSync(REPO_ROOT)) {
    if (!NOT_LINKED.has(entry)) symlinkSync(path.join(REPO_ROOT, entry), path.join(SCRATCH, entry));
  }
}

function scriptFile(block: Block): string {
  const name = `${block.file.replace(/[^A-Za-z0-9]+/g, '-')}-${block.line}`;
  return path.join(SCRATCH, '.doc-test', block.lang === 'ts' || block.lang === 'typescript' ? `${name}.ts` : `${name}.mjs`);
}

function blockScript(block: Block, target: Target): string {
  const prelude = `source ${JSON.stringify(path.join(REPO_ROOT, 'test', 'docs', 'prelude.sh'))}\n`;
  if (SHELL_LANGS.has(block.lang)) return prelude + commands(block.code).map((c) => rewrite(c, target)).join('\n') + '\n';
  const file = scriptFile(block);
  writeFileSync(file, block.code.replace(/\b(127\.0\.0\.1|localhost):4000\b/g, `127.0.0.1:${target.port}`));
  const node = `node --conditions=@roster/source --import tsx ${JSON.stringify(file)}`;
  return prelude + (block.marker?.kind === 'until-ctrl-c' ? `__doc_bg '.' ${node}` : node) + '\n';
}

// ─── Blocks that are not run: the programs they name must exist ──────────────────────────────────

const helpTexts = new Map<string, Promise<string>>();

function helpOf(command: string): Promise<string> {
  let text = helpTexts.get(command);
  if (!text) {
    const args = command === 'token' ? ['token', 'create'] : command === '' ? [] : [command];
    text = run(process.execPath, ['bin/roster.js', ...args, '--help'], { cwd: REPO_ROOT, timeout: 60_000 }).then((r) => r.stdout);
    helpTexts.set(command, text);
  }
  return text;
}

/** What is wrong with a block that is not run: an unknown `roster` command or flag, or a file that does not exist. */
async function staticProblems(block: Block): Promise<string[]> {
  const problems: string[] = [];
  for (const line of commands(block.code).map(withoutComment)) {
    for (const m of line.matchAll(/\broster ([a-z]+)((?:\s+(?!\||&|;)[^\s|;&]+)*)/g)) {
      const [, command = '', rest = ''] = m;
      const root = await helpOf('');
      if (!new RegExp(`^ {2}${command} `, 'm').test(root)) {
        problems.push(`roster ${command}: no such command`);
        continue;
      }
      const text = await helpOf(command);
      for (const flag of rest.match(/(?<![\w-])--[a-z][a-z-]*/g) ?? []) if (!text.includes(flag)) problems.push(`roster ${command} ${flag}: not in its --help`);
    }
    for (const m of line.matchAll(/(?:^|\s)((?:scripts|test|bench|local|cli|infra)\/[\w./-]*[\w/])/g)) {
      if (!existsSync(path.join(REPO_ROOT, m[1] ?? ''))) problems.push(`${m[1]}: no such file`);
    }
  }
  return problems;
}

// ─── The tests ──────────────────────────────────────────────────────────────────────────────────

let runtime: SpawnedRuntime | undefined;
let target: Target;

beforeAll(async () => {
  makeScratch();
  const dynamodbEndpoint = inject('dynamodbEndpoint');
  runtime = await spawnRuntime({ dynamodbEndpoint });
  target = { port: runtime.port, dynamodbEndpoint };
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
  rmSync(SCRATCH, { recursive: true, force: true });
});

describe('the documentation examples', () => {
  test('every fenced block says what it is, and every marker is one the test knows', () => {
    const untagged = ALL.filter((b) => b.lang === '').map((b) => `${b.file}:${b.line}: a fence without a language (use text for output)`);
    const bad = ALL.filter((b) => b.badMarker).map((b) => `${b.file}:${b.line}: unknown marker ${b.badMarker}`);
    const misplaced = ALL.filter((b) => b.marker?.kind === 'until-ctrl-c' && !SCRIPT_LANGS.has(b.lang)).map((b) => `${b.file}:${b.line}: until-ctrl-c is for TypeScript/JavaScript blocks`);
    expect([...untagged, ...bad, ...misplaced]).toEqual([]);
    expect(RUN.length).toBeGreaterThan(10);
  });

  test('the blocks that are not run say why, and name only commands, flags and files that exist', async () => {
    const lines: string[] = [];
    const problems: string[] = [];
    for (const block of NOT_RUN) {
      const reason = block.marker && 'reason' in block.marker ? block.marker.reason : '';
      lines.push(`  ${block.file}:${block.line}  [${block.marker?.kind}] ${reason}`);
      for (const p of await staticProblems(block)) problems.push(`${block.file}:${block.line}: ${p}`);
    }
    const aws = NOT_RUN.filter((b) => b.marker?.kind === 'aws').length;
    console.log(`documentation examples: ${RUN.length} blocks run, ${NOT_RUN.length} not run (${aws} need AWS):\n${lines.join('\n')}`);
    expect(problems).toEqual([]);
  }, 120_000);

  test('the TypeScript examples type-check against the SDK', () => {
    const files = RUN.filter((b) => b.lang === 'ts' || b.lang === 'typescript').map((b) => {
      const file = scriptFile(b);
      writeFileSync(file, b.code);
      return file;
    });
    expect(files.length).toBeGreaterThan(0);
    const config = ts.getParsedCommandLineOfConfigFile(path.join(REPO_ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
    const options = { ...config?.options, noEmit: true, typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')] };
    const program = ts.createProgram(files, options);
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file && files.includes(path.resolve(d.file.fileName)));
    expect(diagnostics.map((d) => `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)).toEqual([]);
  }, 120_000);

  test.each(RUN.map((b) => [`${b.file}:${b.line} (${b.lang})`, b] as const))('%s runs', async (_name, block) => {
    const script = blockScript(block, target);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ROSTER_URL: `http://127.0.0.1:${target.port}`,
      ROSTER_WS_URL: `ws://127.0.0.1:${target.port}/ws`,
      DOC_TEST_TMP: path.join(SCRATCH, '.doc-test'),
      DOC_TEST_READY_SECONDS: String(READY_SECONDS),
      NO_COLOR: '1',
      npm_config_update_notifier: 'false',
    };
    for (const name of ['ROSTER_TOKEN', 'ROSTER_OUTPUTS', 'ROSTER_STACK']) delete env[name];
    try {
      const { stdout, stderr } = await run('bash', ['-c', script], { cwd: SCRATCH, env, timeout: BLOCK_TIMEOUT_MS - 10_000, maxBuffer: 16 * 1024 * 1024 });
      if (process.env.DOC_TEST_VERBOSE) console.log(`${block.file}:${block.line} ran:\n${script}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`${block.file}:${block.line} failed (exit ${e.code}); it ran:\n${script}\n--- stdout\n${e.stdout}\n--- stderr\n${e.stderr}`, { cause: err });
    }
  }, BLOCK_TIMEOUT_MS);
});

describe('the rewrites the example test makes', () => {
  const t: Target = { port: 5555, dynamodbEndpoint: 'http://127.0.0.1:8000' };

  test('a server gets a free port and the shared DynamoDB Local, and runs until Ctrl-C', () => {
    expect(rewrite('npm start   # the whole information center', t)).toMatch(/^__doc_bg '\^WebSocket ws:\/\/' npm start -- --port 0 --dynamodb-endpoint http:\/\/127\.0\.0\.1:8000 --table doc-test-\d+-\d+$/);
    expect(rewrite('npm start -- --auth --data-dir .roster', t)).toBe("__doc_bg '^WebSocket ws://' npm start -- --auth --data-dir .roster --port 0");
    expect(rewrite('npx roster serve --port 0 --data-dir .roster', t)).toBe("__doc_bg '^WebSocket ws://' npx roster serve --port 0 --data-dir .roster");
  });

  test('agent and watch run until Ctrl-C; URLs point at the test runtime; comments go', () => {
    expect(rewrite('npx roster watch backup   # one line per event', t)).toBe("__doc_bg '[^s]connected' npx roster watch backup");
    expect(rewrite("curl 'http://127.0.0.1:4000/v1/clusters/backup/nodes?status=all'", t)).toBe("curl 'http://127.0.0.1:5555/v1/clusters/backup/nodes?status=all'");
    expect(withoutComment("curl -d '{\"a\":\"#b\"}' x # c")).toBe("curl -d '{\"a\":\"#b\"}' x");
    expect(commands('a \\\n   b\n# only a comment\n\nc')).toEqual(['a  b', 'c']);
  });

  test('a block that would reinstall, re-run the suite or reach AWS is refused', () => {
    for (const line of ['npm ci && npm start', 'npm test', 'npx cdk deploy --outputs-file x.json', 'aws secretsmanager put-secret-value']) {
      expect(() => rewrite(line, t), line).toThrow(/must not run in a test/);
    }
  });
});
