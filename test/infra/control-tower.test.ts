/**
 * AWS Control Tower's proactive controls (cfn-guard rules from
 * @cdklabs/cdk-validator-cfnguard) run on every synth, as `infra/app.ts`
 * registers them: they pass on each configuration that changes which apply,
 * every control set aside is set aside with a reason written in the code
 * and in docs/operating/control-tower.md, and a template that breaks a control fails
 * the synth (so the rules really run).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Alarm, Metric } from 'aws-cdk-lib/aws-cloudwatch';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROLS, disabledControls } from '../../infra/control-tower.ts';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { addRoster } from '../../infra/roster-app.ts';
import { removeAssemblies, rosterApp } from './support.ts';

afterAll(removeAssemblies);

interface Violation {
  ruleName: string;
  description: string;
  violatingConstructs: { constructPath: string }[];
}
interface Report {
  pluginReports: { pluginName: string; conclusion: string; violations: Violation[]; suppressedViolations?: Violation[] }[];
}

/** Synthesizes as `infra/app.ts` does and returns the Control Tower plugin's part of the validation report. */
function controlTowerReport(context: Record<string, unknown>): Report['pluginReports'][number] {
  const app = rosterApp(context);
  addRoster(app);
  const assembly = app.synth();
  const report = JSON.parse(readFileSync(path.join(assembly.directory, 'validation-report.json'), 'utf8')) as Report;
  const found = report.pluginReports.find((r) => r.pluginName === 'cdk-validator-cfnguard');
  if (!found) throw new Error('the Control Tower validator did not run');
  return found;
}

/** Which control each acknowledged finding belongs to, and where. */
const suppressed = (report: Report['pluginReports'][number]): string[] =>
  (report.suppressedViolations ?? []).flatMap((v) => v.violatingConstructs.map((c) => `${/\[(CT\.[A-Z0-9.]+)\]/.exec(v.description)?.[1]} ${c.constructPath}`)).sort();

describe('Control Tower proactive controls at synth', () => {
  it('pass on the default stack; only public routes, the unlogged WebSocket stage, the failure queue and permissions the rule cannot read are acknowledged', () => {
    const report = controlTowerReport({});
    expect(report.conclusion).toBe('success');
    expect(report.violations).toEqual([]);
    const acknowledged = suppressed(report);
    const controlsAcknowledged = [...new Set(acknowledged.map((a) => a.split(' ')[0]))].sort();
    expect(controlsAcknowledged).toEqual(['CT.APIGATEWAY.PR.4', 'CT.APIGATEWAY.PR.5', 'CT.LAMBDA.PR.2', 'CT.SQS.PR.1']);
    expect(acknowledged.filter((a) => a.startsWith('CT.APIGATEWAY.PR.4'))).toEqual(['CT.APIGATEWAY.PR.4 Roster/WebSocketApi/Stage/Resource']);
    expect(acknowledged.filter((a) => a.startsWith('CT.SQS.PR.1'))).toEqual(['CT.SQS.PR.1 Roster/Fanout/Failures/Resource']);
    // Every route but the authorized ones: the public HTTP routes, HTTP $default, and the WebSocket routes after $connect.
    const routes = acknowledged.filter((a) => a.startsWith('CT.APIGATEWAY.PR.5'));
    expect(routes.some((a) => a.includes('$connect'))).toBe(false);
    expect(routes.some((a) => /v1--clusters/.test(a))).toBe(false);
    // Permissions for API Gateway only: the schedule's permission references its rule, which the control reads.
    expect(acknowledged.filter((a) => a.startsWith('CT.LAMBDA.PR.2')).every((a) => /Roster\/(HttpApi|WebSocketApi)\//.test(a))).toBe(true);
  });

  it('pass with a customer-managed key and WebSocket access logs, where the log-group encryption control runs and nothing about logging is acknowledged', () => {
    const context = { kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', webSocketAccessLogs: 'true' };
    expect(disabledControls({ customerManagedKey: true, logRetentionDays: 365 }).map((d) => d.control.id)).toEqual([CONTROLS.lambdaInVpc.id]);
    const report = controlTowerReport(context);
    expect(report.conclusion).toBe('success');
    expect(suppressed(report).filter((a) => a.startsWith('CT.APIGATEWAY.PR.4'))).toEqual([]);
  });

  it('pass with a shorter log retention asked for, which sets the one-year retention control aside', () => {
    expect(disabledControls({ customerManagedKey: false, logRetentionDays: 30 }).map((d) => d.control.id)).toContain(CONTROLS.logGroupRetention.id);
    expect(controlTowerReport({ logRetentionDays: '30' }).conclusion).toBe('success');
  });

  it('fail the synth on a template that breaks them: an alarm without an action, a log group kept a week', () => {
    const app = rosterApp();
    const stack = addRoster(app);
    new Alarm(stack, 'Unheard', { metric: new Metric({ namespace: 'X', metricName: 'Y', period: Duration.minutes(1) }), threshold: 1, evaluationPeriods: 1 });
    new LogGroup(stack, 'Forgotten', { retention: RetentionDays.ONE_WEEK });
    expect(() => app.synth()).toThrow();
    const report = JSON.parse(readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8')) as Report;
    const guard = report.pluginReports.find((r) => r.pluginName === 'cdk-validator-cfnguard');
    expect(guard?.conclusion).toBe('failure');
    const found = (guard?.violations ?? []).flatMap((v) => v.violatingConstructs.map((c) => `${/\[(CT\.[A-Z0-9.]+)\]/.exec(v.description)?.[1]} ${c.constructPath}`));
    expect(found.sort()).toEqual(['CT.CLOUDWATCH.PR.1 Roster/Unheard/Resource', 'CT.CLOUDWATCH.PR.2 Roster/Forgotten/Resource']);
  });

  it('set aside and acknowledge controls only with a reason, each listed in docs/operating/control-tower.md', () => {
    const docs = readFileSync(path.join(PROJECT_ROOT, 'docs', 'operating', 'control-tower.md'), 'utf8');
    const everyDisabled = [
      ...disabledControls({ customerManagedKey: false, logRetentionDays: 30 }),
      ...disabledControls({ customerManagedKey: true, logRetentionDays: 365 }),
    ];
    for (const { control, reason } of everyDisabled) {
      expect(reason.length, control.id).toBeGreaterThan(40);
      expect(docs, control.id).toContain(control.id);
    }
    for (const control of Object.values(CONTROLS)) expect(docs, control.id).toContain(control.id);
  });
});

describe('the validator package', () => {
  it('ships cfn-guard for this platform inside the npm package, executable, with no install script to run', () => {
    const dir = path.join(PROJECT_ROOT, 'node_modules', '@cdklabs', 'cdk-validator-cfnguard');
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) expect(pkg.scripts?.[hook], hook).toBeUndefined();
    const platform = process.platform === 'darwin' ? 'macos' : 'ubuntu';
    const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    const binary = path.join(dir, 'bin', platform, arch, 'cfn-guard');
    expect(existsSync(binary)).toBe(true);
    expect(statSync(binary).mode & 0o111).not.toBe(0);
  });
});
