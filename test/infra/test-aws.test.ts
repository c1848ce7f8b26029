/**
 * `npm run test:aws` (scripts/test-aws.ts), everything but the deploy itself
 * (nobody here can reach AWS): argument parsing, the credential check, the
 * plan, the dry run's output, and that the destroy step runs after a failure.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { credentialSource, parseOptions, plan, runAll, uniqueStackName, UsageError, type Step } from '../../scripts/test-aws.ts';
import { PROJECT_ROOT } from '../../infra/function.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'roster-test-aws-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the script as `npm run test:aws -- …` does, with exactly `env` (plus PATH) and an empty HOME. */
function script(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const home = mkdtempSync(path.join(scratch, 'home-'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/test-aws.ts', ...args], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: home, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('arguments', () => {
  it('default to a real run with a fresh, valid stack name, and take --keep, --dry-run and --stack-name', () => {
    const a = parseOptions([]);
    expect(a).toMatchObject({ keep: false, dryRun: false, help: false });
    expect(a.stackName).toMatch(/^Roster-test-\d{8}T\d{4}-[0-9a-z]{4}$/);
    expect(parseOptions([]).stackName).not.toBe(uniqueStackName(new Date(0), () => 0));
    expect(parseOptions(['--keep', '--dry-run', '--stack-name', 'Mine-1'])).toEqual({ keep: true, dryRun: true, stackName: 'Mine-1', help: false });
    expect(uniqueStackName(new Date('2026-11-29T23:50:00Z'), () => 0)).toBe('Roster-test-20261129T2350-0000');
  });

  it('refuse unknown flags, stray words and bad stack names', () => {
    expect(() => parseOptions(['--deploy-now'])).toThrow(UsageError);
    expect(() => parseOptions(['please'])).toThrow(UsageError);
    expect(() => parseOptions(['--stack-name', 'no_underscores'])).toThrow(/--stack-name/);
    expect(() => parseOptions(['--stack-name', '1abc'])).toThrow(/--stack-name/);
  });
});

describe('credentials', () => {
  it('are looked for in the environment and ~/.aws only', () => {
    const home = mkdtempSync(path.join(scratch, 'creds-'));
    expect(credentialSource({}, home)).toBeUndefined();
    expect(credentialSource({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's' }, home)).toBe('AWS_ACCESS_KEY_ID');
    expect(credentialSource({ AWS_ACCESS_KEY_ID: 'AKIA' }, home)).toBeUndefined();
    expect(credentialSource({ AWS_PROFILE: 'dev' }, home)).toBe('AWS_PROFILE=dev');
    mkdirSync(path.join(home, '.aws'));
    writeFileSync(path.join(home, '.aws', 'config'), '[default]\nregion = eu-west-1\n');
    expect(credentialSource({}, home)).toBe(path.join(home, '.aws', 'config'));
  });

  it('missing: one line, exit 2, nothing deployed', async () => {
    const { code, output } = await script([]);
    expect(code).toBe(2);
    expect(output.trim().split('\n')).toEqual([expect.stringMatching(/^npm run test:aws needs AWS credentials .*nothing was deployed\.$/)]);
  });

  it('a bad argument: the reason and the usage, exit 2', async () => {
    const { code, output } = await script(['--deploy-now']);
    expect(code).toBe(2);
    expect(output).toMatch(/--deploy-now/);
    expect(output).toMatch(/Usage: npm run test:aws/);
  });
});

describe('the plan', () => {
  it('deploys a destroyable copy, creates an admin token, runs the conformance suite on the outputs, and destroys it even after a failure', () => {
    const steps = plan({ keep: false, dryRun: false, help: false, stackName: 'Roster-test-x' }, '/w');
    expect(steps.map((s) => s.title)).toEqual(['deploy the stack', 'create an admin token', 'run the conformance suite', 'destroy the stack']);
    expect(steps[0]?.args).toEqual(['cdk', 'deploy', 'Roster-test-x', '-c', 'stackName=Roster-test-x', '-c', 'removalPolicy=destroy', '--require-approval', 'never', '--outputs-file', '/w/cdk-outputs.json']);
    expect(steps[1]?.args).toEqual(expect.arrayContaining(['token', 'create', '--outputs', '/w/cdk-outputs.json', '--cluster', '*', '--role', 'admin']));
    expect(steps[2]?.env).toEqual({ ROSTER_OUTPUTS: '/w/cdk-outputs.json', ROSTER_TOKEN: '<admin token>' });
    expect(steps[3]).toMatchObject({ args: ['cdk', 'destroy', 'Roster-test-x', '-c', 'stackName=Roster-test-x', '-c', 'removalPolicy=destroy', '--force'], always: true });
    expect(plan({ keep: true, dryRun: false, help: false, stackName: 'Roster-test-x' }, '/w').map((s) => s.title)).not.toContain('destroy the stack');
  });

  it('runs the destroy step after a failed suite, hands the token on, and exits non-zero', async () => {
    const marker = path.join(scratch, 'destroyed');
    const node = process.execPath;
    const steps: Step[] = [
      { title: 'create an admin token', command: node, args: ['-e', 'process.stdout.write("tok-123\\n")'], printsToken: true },
      { title: 'run the conformance suite', command: node, args: ['-e', 'process.exit(process.env.ROSTER_TOKEN === "tok-123" ? 1 : 3)'], env: { ROSTER_TOKEN: '<admin token>' } },
      { title: 'never reached', command: node, args: ['-e', 'require("fs").writeFileSync(process.argv[1], "x")', `${marker}-not`] },
      { title: 'destroy the stack', command: node, args: ['-e', 'require("fs").writeFileSync(process.argv[1], "x")', marker], always: true },
    ];
    const lines: string[] = [];
    expect(await runAll(steps, (l) => lines.push(l))).toBe(1);
    expect(lines.join('\n')).toMatch(/run the conformance suite failed \(exit 1\)/);
    expect(existsSync(marker)).toBe(true);
    expect(existsSync(`${marker}-not`)).toBe(false);
  });
});

describe('--dry-run', () => {
  it('synthesizes the named stack with its validation, keeps the template, prints the four steps and what a real run adds, and needs no credentials', async () => {
    const { code, output } = await script(['--dry-run', '--stack-name', 'Roster-test-dry']);
    expect(code, output).toBe(0);
    const lines = output.trim().split('\n');
    expect(lines[0]).toBe('npm run test:aws --dry-run: nothing is deployed.');
    expect(lines[1]).toMatch(/^Synthesized Roster-test-dry: \d+ resources; cdk-nag and Control Tower's proactive controls passed\.$/);
    expect(lines.filter((l) => /^ {2}\d\. /.test(l)).map((l) => l.replace(/:.*$/, ''))).toEqual([
      '  1. deploy the stack',
      '  2. create an admin token',
      '  3. run the conformance suite',
      '  4. destroy the stack',
    ]);
    expect(output).toMatch(/npx cdk deploy Roster-test-dry -c stackName=Roster-test-dry -c removalPolicy=destroy/);
    // Every path it prints exists (the kept template), or is the placeholder of the real run's own directory.
    const paths = [...output.matchAll(/(?:^|[\s=])(\/[^\s:')]+)/gm)].map((m) => m[1] as string);
    const template = paths.find((p) => p.endsWith('Roster-test-dry.template.json'));
    expect(template, output).toBeDefined();
    try {
      for (const p of paths) expect(existsSync(p), `${p} is printed but does not exist`).toBe(true);
      expect(output).toMatch(/--outputs-file <work dir>\/cdk-outputs\.json/);
      expect(output).toMatch(/<work dir> is a new directory/);
      // What a real run does that the dry run did not: bundle, and apply IAM changes without asking.
      expect(output).toMatch(/bundles every function with the locally installed esbuild/);
      expect(output).toMatch(/--require-approval never: cdk deploy creates the stack's [1-9]\d* IAM roles and [1-9]\d* IAM policies without asking/);
    } finally {
      if (template) rmSync(path.dirname(path.dirname(template)), { recursive: true, force: true });
    }
  }, 180_000);
});
