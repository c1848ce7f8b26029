/**
 * Synthesizes the Roster stack's template for the local runtime, in a child
 * process of its own (the CDK library stays out of the runtime's memory):
 *
 *   node --import tsx local/template/synth.ts <out.json> '<context as JSON>'
 *
 * The app is the one `cdk synth` builds (`infra/roster-app.ts`, `cdk.json`'s
 * context plus the given keys), with two things left out that do not change
 * the template: bundling (`aws:cdk:bundling-stacks: []`, what `cdk synth
 * --exclusively` relies on) and the validation plugins (cdk-nag, Control
 * Tower's controls, CDK's built-in CloudFormation validation, ~5 s of WASM).
 * `test/local/template.test.ts` checks that this template equals the one
 * `cdk synth` writes, but for the asset hashes of the bundles.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { buildRoster } from '../../infra/roster-app.ts';

const [outFile, contextJson = '{}'] = process.argv.slice(2);
if (!outFile) {
  process.stderr.write('usage: node --import tsx local/template/synth.ts <out.json> [context JSON]\n');
  process.exit(2);
}
const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
const outdir = mkdtempSync(path.join(tmpdir(), 'roster-synth-'));
try {
  const app = new App({
    outdir,
    builtinCloudFormationValidation: false,
    context: { ...cdkJson.context, ...(JSON.parse(contextJson) as Record<string, unknown>), 'aws:cdk:bundling-stacks': [] },
  });
  const stack = buildRoster(app);
  const template: unknown = app.synth().getStackByName(stack.stackName).template;
  const partial = `${outFile}.${process.pid}.tmp`;
  writeFileSync(partial, JSON.stringify(template));
  // A rename is atomic: a runtime starting meanwhile reads the whole template or none.
  renameSync(partial, outFile);
} catch (err) {
  // A bad setting (`-c sweepIntervalSeconds=0`) is the user's error: its message alone, as `cdk synth` prints it.
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
