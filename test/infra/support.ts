/**
 * Synthesizes the Roster stack in-process, the way `infra/app.ts` does (same
 * `cdk.json` context, same validation plugins), and reads the template back.
 * Control Tower's controls cost a few seconds of cfn-guard per synth, so the
 * variants a test builds for other reasons leave them out unless asked;
 * `control-tower.test.ts` runs them on every configuration that changes them.
 *
 * Bundling is skipped here (`aws:cdk:bundling-stacks: []`, the mechanism
 * behind `cdk synth --exclusively`): these tests are about the template.
 * `synth.test.ts` runs the real, bundling `cdk synth` once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { addPolicyValidation, buildRoster } from '../../infra/roster-app.ts';
import type { RosterStack, RosterStackProps } from '../../infra/roster-stack.ts';

export const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> })
  .context;

export interface Synthesized {
  app: App;
  stack: RosterStack;
  template: Template;
  /** The raw template, for walking resources by hand. */
  json: TemplateJson;
  logicalId(construct: IConstruct): string;
}

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: Record<string, unknown>;
}

export interface TemplateJson {
  Resources: Record<string, TemplateResource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

/** Cloud assemblies of this test file, removed by `removeAssemblies()` (CDK would leave them in the temp dir). */
let scratch: string | undefined;

export function removeAssemblies(): void {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

/** A fresh app as `infra/app.ts` builds it, with `cdk.json` context, writing its assembly under the scratch dir. */
export function rosterApp(context: Record<string, unknown> = {}): App {
  scratch ??= mkdtempSync(path.join(tmpdir(), 'roster-infra-'));
  return new App({
    outdir: mkdtempSync(path.join(scratch, 'cdk.out-')),
    context: { ...CDK_JSON_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context },
  });
}

export function synthRoster(context: Record<string, unknown> = {}, props: RosterStackProps = {}, checks: { controlTower?: boolean } = {}): Synthesized {
  const app = rosterApp(context);
  const stack = buildRoster(app, props);
  addPolicyValidation(app, stack, { controlTower: checks.controlTower ?? false });
  const template = Template.fromStack(stack);
  return {
    app,
    stack,
    template,
    json: template.toJSON() as TemplateJson,
    logicalId: (construct) => Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement),
  };
}

export function resourcesOfType(json: TemplateJson, type: string): [string, TemplateResource][] {
  return Object.entries(json.Resources).filter(([, r]) => r.Type === type);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

export const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
export const resourcesOf = (s: Statement): unknown[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

/** Every statement of every inline policy attached to the role with this logical id. */
export function statementsOfRole(json: TemplateJson, roleLogicalId: string): Statement[] {
  return resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, p]) => (p.Properties?.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId })))
    .flatMap(([, p]) => (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement);
}
