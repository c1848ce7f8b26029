/**
 * AWS Control Tower's proactive controls, run at synth: the same rules, as
 * cfn-guard policies, from `@cdklabs/cdk-validator-cfnguard` (it ships the
 * cfn-guard binary for Linux and macOS inside the npm package: no install
 * script, no download, works offline). `npx cdk synth` fails on a finding
 * that is neither fixed nor acknowledged here.
 *
 * Two ways to set a control aside, each with its reason (docs/operating/control-tower.md
 * lists them all):
 * - `disabledControls`: a rule that cannot fit the design as a whole (or not
 *   in this configuration) is not run at all;
 * - `acknowledgeControl`: one resource is exempt (a public route), every
 *   other resource is still checked.
 */
import {
  Aspects,
  AspectPriority,
  Stack,
  Token,
  Validations,
  type IAspect,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
} from 'aws-cdk-lib';
import { CfnPermission } from 'aws-cdk-lib/aws-lambda';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import type { IConstruct } from 'constructs';

/** A Control Tower control: its id, the rule file that implements it and the rule name findings are acknowledged by. */
export interface Control {
  readonly id: string;
  /** The rule file's name in the package (what `disabledRules` takes). */
  readonly file: string;
  /** The cfn-guard rule name (what a finding is acknowledged by). */
  readonly rule: string;
}

export const CONTROLS = {
  apiRouteAuthorization: { id: 'CT.APIGATEWAY.PR.5', file: 'ct-apigateway-pr-5', rule: 'api_gw_v2_authorization_type_configured_check' },
  apiStageAccessLogging: { id: 'CT.APIGATEWAY.PR.4', file: 'ct-apigateway-pr-4', rule: 'api_gw_v2_access_logs_enabled_check' },
  logGroupRetention: { id: 'CT.CLOUDWATCH.PR.2', file: 'ct-cloudwatch-pr-2', rule: 'cloudwatch_log_group_retention_period_check' },
  logGroupEncryption: { id: 'CT.CLOUDWATCH.PR.3', file: 'ct-cloudwatch-pr-3', rule: 'cloudwatch_log_group_encrypted_check' },
  lambdaPublicAccess: { id: 'CT.LAMBDA.PR.2', file: 'ct-lambda-pr-2', rule: 'lambda_function_public_access_prohibited_check' },
  lambdaInVpc: { id: 'CT.LAMBDA.PR.3', file: 'ct-lambda-pr-3', rule: 'lambda_inside_vpc_check' },
  sqsDeadLetterQueue: { id: 'CT.SQS.PR.1', file: 'ct-sqs-pr-1', rule: 'sqs_dlq_check' },
} as const satisfies Record<string, Control>;

/** The namespace CDK gives the validator's findings (its name). */
const PLUGIN_NAMESPACE = 'cdk-validator-cfnguard';

/** What the configuration decides about the controls. */
export interface ControlTowerOptions {
  /** A customer-managed KMS key encrypts the log groups (`-c kmsKeyArn=`). */
  readonly customerManagedKey: boolean;
  /** Log retention in days, as deployed. */
  readonly logRetentionDays: number;
}

export interface DisabledControl {
  readonly control: Control;
  readonly reason: string;
}

/** The controls not run for this configuration, each with its one-line reason. */
export function disabledControls(options: ControlTowerOptions): DisabledControl[] {
  const disabled: DisabledControl[] = [
    {
      control: CONTROLS.lambdaInVpc,
      reason:
        'Roster is a public, VPC-less information center: its functions reach only DynamoDB, Secrets Manager and API Gateway over AWS endpoints; a VPC would add NAT or endpoint costs and protect nothing.',
    },
  ];
  if (!options.customerManagedKey) {
    disabled.push({
      control: CONTROLS.logGroupEncryption,
      reason: 'Log groups can only be encrypted with a customer-managed key, which is opt-in (-c kmsKeyArn=); without one CloudWatch Logs encrypts them with its own key.',
    });
  }
  if (options.logRetentionDays < 365) {
    disabled.push({
      control: CONTROLS.logGroupRetention,
      reason: `A log retention of ${options.logRetentionDays} days was asked for (-c logRetentionDays); the default, one year, meets this control.`,
    });
  }
  return disabled;
}

/**
 * The CfnGuardValidator, with every finding an error. The validator leaves a
 * finding's `severity` unset, and once any finding of a plugin is
 * acknowledged CDK recounts the plugin's success as "no finding of severity
 * error" — so without this, one acknowledged public route would let every
 * other finding pass the synth (test/infra/control-tower.test.ts shows it fails).
 */
class ControlTowerChecks implements IPolicyValidationPlugin {
  readonly name: string;
  readonly version?: string;
  readonly ruleIds?: string[];

  constructor(private readonly guard: CfnGuardValidator) {
    // The plugin's name is the namespace its findings are acknowledged in: keep the validator's.
    this.name = guard.name;
    this.version = guard.version;
    this.ruleIds = guard.ruleIds;
  }

  validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const report = this.guard.validate(context);
    return { ...report, violations: report.violations.map((violation) => ({ ...violation, severity: violation.severity ?? 'error' })) };
  }
}

/** The validator `addRoster` registers on the app. */
export function controlTowerValidator(options: ControlTowerOptions): IPolicyValidationPlugin {
  return new ControlTowerChecks(new CfnGuardValidator({ disabledRules: disabledControls(options).map((d) => d.control.file) }));
}

/** Exempts `scope` (and what it contains) from one control, with the reason. */
export function acknowledgeControl(scope: IConstruct, control: Control, reason: string): void {
  Validations.of(scope).acknowledge({ id: `${PLUGIN_NAMESPACE}::${control.rule}`, reason: `${control.id}: ${reason}` });
}

/**
 * Every Lambda permission for an AWS service names the account it serves
 * (`SourceAccount`), on top of the `SourceArn` CDK already sets: API Gateway
 * or EventBridge of another account cannot invoke a Roster function
 * (CT.LAMBDA.PR.2). The stack is environment-agnostic, so the account is
 * `{ Ref: AWS::AccountId }`, which the rule cannot read as a string at
 * synth; such a permission is acknowledged with that reason, unless its
 * `SourceArn` is a reference to a resource of the template (which the rule accepts).
 */
class PermissionsNameTheirAccount implements IAspect {
  visit(node: IConstruct): void {
    if (!(node instanceof CfnPermission) || !node.principal.endsWith('.amazonaws.com')) return;
    node.sourceAccount ??= Stack.of(node).account;
    const arn: unknown = Stack.of(node).resolve(node.sourceArn);
    const localReference = typeof arn === 'object' && arn !== null && ('Ref' in arn || 'Fn::GetAtt' in arn);
    if (Token.isUnresolved(node.sourceAccount) && !localReference) {
      acknowledgeControl(
        node,
        CONTROLS.lambdaPublicAccess,
        'the permission is for an AWS service principal and names both the account (SourceAccount) and this API (SourceArn); in an environment-agnostic template both are CloudFormation expressions, which the rule cannot read at synth.',
      );
    }
  }
}

/** Applies the stack-wide fixes for Control Tower's controls. */
export function applyControlTowerFixes(stack: Stack): void {
  Aspects.of(stack).add(new PermissionsNameTheirAccount(), { priority: AspectPriority.MUTATING });
}
