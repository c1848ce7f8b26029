/**
 * `npm run test:aws` — the conformance suite against a real deployment, for a
 * user who has an AWS account:
 *
 *   1. deploy a uniquely named copy of the stack (`-c stackName=Roster-test-…`,
 *      everything destroyable) with the user's credentials;
 *   2. create an admin token from the stack's secret (`roster token create`);
 *   3. run the conformance suite against it (`ROSTER_OUTPUTS`, `ROSTER_TOKEN`);
 *   4. destroy the stack — also when step 2 or 3 failed — unless `--keep`.
 *
 * `--dry-run` deploys nothing: it synthesizes the stack (with cdk-nag and
 * Control Tower's controls, as `cdk synth` does, without bundling), keeps the
 * template where it says, and prints the steps, with what a real run adds:
 * the bundling, and IAM changes applied without asking (`--require-approval
 * never`). Without credentials it says so in one line and exits 2; the
 * credential check reads only the environment and ~/.aws (it never asks
 * a metadata endpoint).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { addRoster } from '../infra/roster-app.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const USAGE = `Usage: npm run test:aws -- [--keep] [--dry-run] [--stack-name NAME]

Deploys a uniquely named Roster stack with your AWS credentials, runs the conformance
suite against it and destroys it, also when the suite fails.

  --keep             leave the stack deployed (destroy it later with: npx cdk destroy NAME -c stackName=NAME)
  --dry-run          synthesize and print the steps; deploy nothing (needs no credentials)
  --stack-name NAME  the stack's name (default Roster-test-<time>-<random>)
  -h, --help         show this help`;

export interface Options {
  keep: boolean;
  dryRun: boolean;
  stackName: string;
  help: boolean;
}

export class UsageError extends Error {}

/** `Roster-test-20261129T2350-k3f9`: unique per run, and a valid CloudFormation stack name. */
export function uniqueStackName(now: Date = new Date(), random: () => number = Math.random): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 13);
  const suffix = Math.floor(random() * 36 ** 4).toString(36).padStart(4, '0');
  return `Roster-test-${stamp}-${suffix}`;
}

export function parseOptions(argv: readonly string[], name: () => string = uniqueStackName): Options {
  let values: { keep?: boolean; 'dry-run'?: boolean; 'stack-name'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { keep: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, 'stack-name': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const stackName = values['stack-name'] ?? name();
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) throw new UsageError(`--stack-name must be a letter, then up to 127 letters, digits or hyphens; not "${stackName}"`);
  return { keep: values.keep ?? false, dryRun: values['dry-run'] ?? false, stackName, help: values.help ?? false };
}

/**
 * Where the AWS SDK and the CDK CLI would find credentials, looking only at
 * the environment and the shared files (never at a metadata endpoint).
 * Undefined when there is none.
 */
export function credentialSource(env: NodeJS.ProcessEnv, home: string = homedir()): string | undefined {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return 'AWS_ACCESS_KEY_ID';
  if (env.AWS_PROFILE) return `AWS_PROFILE=${env.AWS_PROFILE}`;
  if (env.AWS_WEB_IDENTITY_TOKEN_FILE) return 'AWS_WEB_IDENTITY_TOKEN_FILE';
  if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) return 'the container credentials endpoint';
  for (const file of [env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials'), env.AWS_CONFIG_FILE ?? path.join(home, '.aws', 'config')]) {
    if (existsSync(file)) return file;
  }
  return undefined;
}

export interface Step {
  /** What the step does, in a few words. */
  title: string;
  command: string;
  args: string[];
  /** Extra environment; a value in <angle brackets> is filled in when the step runs. */
  env?: Record<string, string>;
  /** Runs even when an earlier step failed. */
  always?: boolean;
  /** Its stdout is the admin token later steps get for `<admin token>`. */
  printsToken?: boolean;
}

/** The placeholder for the token in a step's environment. */
export const TOKEN_PLACEHOLDER = '<admin token>';
/** Where a real run's files go, in the steps the dry run prints: a directory the real run makes (and names) then. */
export const WORK_DIR_PLACEHOLDER = '<work dir>';

/** The steps of a real run, in order. */
export function plan(options: Options, workDir: string): Step[] {
  const outputs = path.join(workDir, 'cdk-outputs.json');
  const context = ['-c', `stackName=${options.stackName}`, '-c', 'removalPolicy=destroy'];
  const steps: Step[] = [
    {
      title: 'deploy the stack',
      command: 'npx',
      args: ['cdk', 'deploy', options.stackName, ...context, '--require-approval', 'never', '--outputs-file', outputs],
    },
    {
      title: 'create an admin token',
      command: 'npx',
      args: ['roster', 'token', 'create', '--outputs', outputs, '--stack', options.stackName, '--cluster', '*', '--role', 'admin', '--ttl', '2h', '--sub', 'test-aws'],
      printsToken: true,
    },
    {
      title: 'run the conformance suite',
      command: 'npx',
      args: ['vitest', 'run', 'test/conformance'],
      env: { ROSTER_OUTPUTS: outputs, ROSTER_TOKEN: TOKEN_PLACEHOLDER },
    },
  ];
  if (!options.keep) steps.push({ title: 'destroy the stack', command: 'npx', args: ['cdk', 'destroy', options.stackName, ...context, '--force'], always: true });
  return steps;
}

/** A placeholder stays as it is, so that it reads as one and not as a quoted file name. */
const shellQuote = (arg: string): string =>
  /^[\w@%+=:,./-]+$/.test(arg) || arg === TOKEN_PLACEHOLDER || arg.startsWith(WORK_DIR_PLACEHOLDER) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;

export function describeStep(step: Step, index: number): string {
  const env = Object.entries(step.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)} `).join('');
  const note = step.always ? '   (also when an earlier step failed)' : '';
  return `  ${index + 1}. ${step.title}: ${env}${[step.command, ...step.args].map(shellQuote).join(' ')}${note}`;
}

/** What the dry run reports of a synthesized template. */
export interface Synthesized {
  resources: number;
  /** IAM roles and policies (inline or managed): what `--require-approval never` creates without asking. */
  roles: number;
  policies: number;
  /** The template file, kept for the reader. */
  templateFile: string;
}

/** Synthesizes the stack as `cdk synth` does (same context, same validation), without bundling. */
export function synthesize(options: Options, outdir: string): Synthesized {
  const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  const app = new App({
    outdir,
    context: { ...cdkJson.context, stackName: options.stackName, removalPolicy: 'destroy', 'aws:cdk:bundling-stacks': [] },
  });
  const stack = addRoster(app);
  const artifact = app.synth().getStackByName(stack.stackName);
  const types = Object.values((artifact.template as { Resources: Record<string, { Type: string }> }).Resources).map((r) => r.Type);
  const count = (...wanted: string[]) => types.filter((t) => wanted.includes(t)).length;
  return {
    resources: types.length,
    roles: count('AWS::IAM::Role'),
    policies: count('AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'),
    templateFile: path.join(outdir, artifact.templateFile),
  };
}


function run(step: Step, env: NodeJS.ProcessEnv, capture: boolean): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(step.command, step.args, { cwd: ROOT, env: { ...env, ...step.env }, stdio: ['ignore', capture ? 'pipe' : 'inherit', 'inherit'] });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** A real run: each step in turn; an `always` step (the destroy) whatever happened before it. Resolves to the exit code. */
export async function runAll(steps: readonly Step[], log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let failed: string | undefined;
  let token = '';
  for (const [i, step] of steps.entries()) {
    if (failed && !step.always) continue;
    log(`\n== ${i + 1}/${steps.length} ${step.title}`);
    const stepEnv = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, v === TOKEN_PLACEHOLDER ? token : v]));
    const result = await run({ ...step, env: stepEnv }, env, step.printsToken ?? false);
    if (step.printsToken) token = result.stdout.trim();
    if (result.code !== 0) failed ??= `${step.title} failed (exit ${result.code})`;
  }
  log(failed ? `\nnpm run test:aws: ${failed}.` : '\nnpm run test:aws: the conformance suite passed against AWS.');
  return failed ? 1 : 0;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, log: (line: string) => void = console.log): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log(`npm run test:aws: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    log(USAGE);
    return 0;
  }
  const source = credentialSource(env);
  if (!source && !options.dryRun) {
    log('npm run test:aws needs AWS credentials (none in AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE or ~/.aws); nothing was deployed.');
    return 2;
  }
  if (options.dryRun) return dryRun(options, log);
  const workDir = mkdtempSync(path.join(tmpdir(), 'roster-test-aws-'));
  log(
    `npm run test:aws: deploying ${options.stackName} with credentials from ${source}; outputs in ${workDir}. ` +
      `cdk deploy runs with --require-approval never: the stack's IAM roles and policies are created without asking (npm run test:aws -- --dry-run shows them).`,
  );
  return runAll(plan(options, workDir), log);
}

/**
 * Synthesizes into a directory it keeps (the template is what a reader wants
 * to look at) and prints the steps of a real run, whose own directory does
 * not exist yet: every path printed is either real or `<work dir>`.
 */
function dryRun(options: Options, log: (line: string) => void): number {
  const dir = mkdtempSync(path.join(tmpdir(), 'roster-test-aws-dry-run-'));
  let synthesized: Synthesized;
  try {
    synthesized = synthesize(options, path.join(dir, 'cdk.out'));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { resources, roles, policies, templateFile } = synthesized;
  log(`npm run test:aws --dry-run: nothing is deployed.`);
  log(`Synthesized ${options.stackName}: ${resources} resources; cdk-nag and Control Tower's proactive controls passed.`);
  log(`The template (kept; remove it with rm -r ${dir}): ${templateFile}`);
  log(`A real run (it needs AWS credentials) takes these steps; ${WORK_DIR_PLACEHOLDER} is a new directory under ${tmpdir()} that it makes and names:`);
  plan(options, WORK_DIR_PLACEHOLDER).forEach((step, i) => log(describeStep(step, i)));
  log(`Step 1 also bundles every function with the locally installed esbuild, which this dry run skipped.`);
  log(
    `Step 1 passes --require-approval never: cdk deploy creates the stack's ${roles} IAM roles and ${policies} IAM policies without asking you to confirm them. ` +
      `Read them in the template above first. To be asked, deploy it yourself first without the flag ` +
      `(npx cdk deploy ${options.stackName} -c stackName=${options.stackName} -c removalPolicy=destroy), then run npm run test:aws -- --stack-name ${options.stackName}: nothing is left to approve.`,
  );
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2), process.env).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`npm run test:aws: ${(err as Error).message}`);
      process.exitCode = 1;
    },
  );
}
