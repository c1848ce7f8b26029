/**
 * Where the local runtime's template comes from: a synthesized template the
 * user names (`--template FILE`), or the template of this repository's CDK
 * app with the runtime's settings as context — the very stack `cdk deploy`
 * would ship with `-c key=value` for each.
 *
 * Synthesizing takes a few seconds (local/template/synth.ts), so templates
 * are kept in `node_modules/.cache/roster/templates/`, named by a hash of
 * everything that can change them: the CDK app's sources (`infra/`, and
 * `functions/` and `contract/` that it imports), `cdk.json`, the lock file
 * (the CDK library's version) and the context. A change to any of them is a
 * new name, so a stale template is never used.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RuntimeStartError } from '../errors.ts';
import { hashSources } from '../source-hash.ts';
import type { CfnTemplate } from './deployment.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SYNTH = fileURLToPath(new URL('./synth.ts', import.meta.url));
/** What the CDK app is made of. */
const APP_SOURCES = ['infra', 'functions', 'contract'];
const APP_FILES = ['cdk.json', 'package-lock.json'];

/** CDK context values, as `-c key=value` gives them. */
export type CdkContext = Readonly<Record<string, string | number | boolean>>;

export interface TemplateSource {
  /** A synthesized template (e.g. `cdk.out/Roster.template.json`); the context is then not used. */
  file?: string;
  /** Context for the repository's app: the runtime's settings by their context keys (infra/roster-app.ts). */
  context?: CdkContext;
  /** @default node_modules/.cache/roster/templates in the repository */
  cacheDir?: string;
}

export interface LoadedTemplate {
  template: CfnTemplate;
  /** The file it was read from. */
  file: string;
  /** Whether it was synthesized for this start (no cached copy). */
  synthesized: boolean;
}

/** The cache key of the app's template with `context`: a hash of the app's sources and the context. */
export function templateKey(context: CdkContext = {}): string {
  const sorted = Object.fromEntries(Object.entries(context).sort(([a], [b]) => a.localeCompare(b)));
  return hashSources(REPO_ROOT, [...APP_SOURCES, ...APP_FILES], /\.(ts|json)$/, JSON.stringify(sorted));
}

/** The app refused to synthesize (a context value out of range, say): `reason` is its own message, first line. */
export class SynthesisError extends RuntimeStartError {
  constructor(readonly reason: string) {
    super(`could not synthesize the stack's template: ${reason}`);
    this.name = 'SynthesisError';
  }
}

function runSynth(outFile: string, context: CdkContext): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', SYNTH, outFile, JSON.stringify(context)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) resolve();
      else reject(new SynthesisError(stderr.trim().split('\n')[0] || `exit ${code ?? signal}`));
    });
  });
}

async function readTemplate(file: string): Promise<CfnTemplate> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RuntimeStartError(`cannot read the template ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new RuntimeStartError(`${file} is not a JSON CloudFormation template (cdk synth writes one to cdk.out/<stack>.template.json)`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { Resources?: unknown }).Resources !== 'object') {
    throw new RuntimeStartError(`${file} has no Resources: not a CloudFormation template`);
  }
  return parsed as CfnTemplate;
}

/** The template to run: the given file, or the app's (from the cache, else synthesized now). */
export async function loadTemplate(source: TemplateSource): Promise<LoadedTemplate> {
  if (source.file !== undefined) return { template: await readTemplate(source.file), file: source.file, synthesized: false };
  const context = source.context ?? {};
  const cacheDir = source.cacheDir ?? path.join(REPO_ROOT, 'node_modules', '.cache', 'roster', 'templates');
  const file = path.join(cacheDir, `${templateKey(context)}.json`);
  try {
    return { template: await readTemplate(file), file, synthesized: false };
  } catch {
    mkdirSync(cacheDir, { recursive: true });
    await runSynth(file, context);
    return { template: await readTemplate(file), file, synthesized: true };
  }
}
