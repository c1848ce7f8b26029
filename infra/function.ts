/**
 * The one Lambda function construct of Roster. Every handler is a
 * `RosterFunction`, so runtime, architecture, bundling, logging and the
 * execution role are decided here, once.
 *
 * The `use*` helpers pair an environment variable with the IAM grant that
 * makes it usable: a function is never told about a resource it cannot reach,
 * and never reaches one it was not told about.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, Stack, Validations, type CfnElement, type CfnResource, type RemovalPolicy } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Grant, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, LoggingFormat, Runtime, type SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { toEnvironment, type Settings } from '../functions/core/config.ts';
import { HANDLER_ENTRY_METADATA } from '../functions/core/routes.ts';

/** The repository root: handler entries and the lock file are resolved from here, not from the caller's cwd. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Bundling must never fall back to Docker (CDK does so silently when it cannot
 * find esbuild). Fail at synth with an actionable message instead.
 */
function assertLocalEsbuild(): void {
  try {
    createRequire(import.meta.url).resolve('esbuild/package.json');
  } catch (err) {
    throw new Error('esbuild is not installed locally; run `npm ci`. Roster bundles with the local esbuild and never with Docker.', {
      cause: err,
    });
  }
}

/**
 * Bundled CommonJS dependencies may `require()` Node built-ins; an ES module
 * has no `require`, so give the bundle one. The alias avoids clashing with any
 * `createRequire` binding inside the bundle.
 */
const ESM_REQUIRE_SHIM = "import { createRequire as __rosterCreateRequire } from 'node:module'; const require = __rosterCreateRequire(import.meta.url);";

/** A DynamoDB data-plane action a handler performs, as the core calls it. */
export type TableAction = 'GetItem' | 'Query' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'BatchWriteItem' | 'BatchGetItem';

/** Exactly what a function does with the table: actions on the base table, and the indexes it queries. */
export interface TableAccess {
  /** Actions on the base table itself (never on its indexes). */
  readonly actions: readonly TableAction[];
  /** Global secondary indexes the function queries; each gets `Query` on that index only. @default none */
  readonly queryIndexes?: readonly string[];
}

/** The detection settings every function gets (the sweeper's loop length is its own). */
export type DetectionSettings = Omit<Settings, 'sweepLoopSeconds'>;

/** What every function of a stack shares: settings and logging. */
export interface FunctionDefaults {
  /** Detection settings, passed to every function so all of them agree. */
  readonly settings: DetectionSettings;
  readonly logRetention: RetentionDays;
  /**
   * Which of Lambda's own log lines reach CloudWatch Logs (the functions log
   * in JSON, which log-level filtering needs). Lambda writes START and REPORT
   * at INFO, so WARN drops them: 3 lines and 264 bytes on every invocation,
   * 1,000 nodes' keepalives alone 42 GB a month (docs/operating/cost.md);
   * Lambda's Duration, Errors and Throttles metrics count the same without
   * them (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
   */
  readonly systemLogLevel: SystemLogLevel;
  readonly logRemovalPolicy: RemovalPolicy;
  /** Customer-managed key for the log group. @default CloudWatch Logs' own encryption */
  readonly logEncryptionKey?: IKey;
}

export interface RosterFunctionProps extends FunctionDefaults {
  /** Handler module, relative to the repository root, e.g. `functions/http/register.ts`; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  /** Extra environment (e.g. `SWEEP_LOOP_SECONDS` for the sweeper). @default none */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default 256 — enough CPU for a quick cold start of the bundled SDK; handlers are I/O bound. */
  readonly memorySize?: number;
  /** @default 10 seconds — API Gateway gives up on an integration after 29 s anyway. */
  readonly timeout?: Duration;
  /** @default none (the account's unreserved pool) */
  readonly reservedConcurrentExecutions?: number;
  /** Shell commands around bundling, e.g. writing a file next to the bundle (infra/console.ts). @default none */
  readonly commandHooks?: ICommandHooks;
}

/** `Register` from `register`, `Connect` from `$connect`, `GetNode` from `get-node`: a construct id for a handler module or route. */
export const constructIdOf = (name: string): string =>
  name
    .replace(/^\$/, '')
    .split(/[^A-Za-z0-9]+/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/** A log group with the stack's retention, removal policy and key: for functions and for access logs. */
export function rosterLogGroup(scope: Construct, id: string, defaults: Omit<FunctionDefaults, 'settings'>): LogGroup {
  return new LogGroup(scope, id, {
    retention: defaults.logRetention,
    removalPolicy: defaults.logRemovalPolicy,
    encryptionKey: defaults.logEncryptionKey,
  });
}

export class RosterFunction extends NodejsFunction {
  /** The execution role; cdk-nag acknowledgements for its policy are attached here. */
  readonly executionRole: Role;
  private usesTable = false;

  constructor(scope: Construct, id: string, props: RosterFunctionProps) {
    assertLocalEsbuild();
    // An explicit log group (instead of the deprecated `logRetention` custom resource) lets the
    // stack own retention and removal, and lets the role be scoped to exactly this group.
    const logGroup = rosterLogGroup(scope, `${id}Logs`, props);
    // Our own role: the default one carries the AWS-managed AWSLambdaBasicExecutionRole, which may
    // write to any log group in the account. This one may write only to the group above.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the Roster ${id} function`,
    });
    super(scope, id, {
      entry: path.join(PROJECT_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(10),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      systemLogLevelV2: props.systemLogLevel,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      environment: {
        POWERTOOLS_SERVICE_NAME: 'roster',
        // Stack traces in the logs point at the TypeScript sources, not at the minified bundle.
        NODE_OPTIONS: '--enable-source-maps',
        ...toEnvironment(props.settings),
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        // Prefer the ES module builds of dependencies; the shim covers the CommonJS ones left.
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_SHIM,
        minify: true,
        sourceMap: true,
        // Mappings only: stack traces need no embedded sources, and a smaller map loads faster.
        sourcesContent: false,
        // The AWS SDK v3 is bundled rather than taken from the runtime: the handlers then run with
        // exactly the SDK version the tests ran (the runtime's copy changes under us without notice),
        // and a tree-shaken, minified bundle starts faster than loading the runtime's full packages.
        bundleAwsSDK: true,
        forceDockerBundling: false,
        commandHooks: props.commandHooks,
      },
    });
    this.executionRole = role;
    // Which module the function runs, for the local runtime that runs this template (local/template/deployment.ts);
    // CloudFormation ignores resource metadata.
    (this.node.defaultChild as CfnResource).addMetadata(HANDLER_ENTRY_METADATA, props.entry);
    logGroup.grantWrite(role);
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'nodejs22.x is the runtime the Roster design contract fixes (Node.js 22 LTS, maintained upstream until April 2027); ' +
        'the handlers and their tests target it. Moving to a newer runtime is a deliberate, tested change of that contract.',
    });
  }

  /**
   * Lets the function use the table with exactly `access`, and tells it the
   * table's name (`TABLE_NAME`). The grant names the base table for item
   * actions and each queried index by name, so no function gets `index/*`.
   */
  useTable(table: ITable, access: TableAccess): Grant {
    // The functions know one table (config.ts reads one TABLE_NAME); a second would silently win.
    if (this.usesTable) throw new Error(`${this.node.path} already uses a table`);
    this.usesTable = true;
    this.addEnvironmentOf({ tableName: table.tableName });
    // With a customer-managed key (`-c kmsKeyArn=`) the item actions need the key too; the AWS managed key needs no grant.
    if (table.encryptionKey) {
      table.encryptionKey.grantEncryptDecrypt(this);
      for (const action of ['kms:ReEncrypt*', 'kms:GenerateDataKey*']) {
        Validations.of(this.executionRole).acknowledge({
          id: `AwsSolutions-IAM5[Action::${action}]`,
          reason:
            'The actions DynamoDB needs on a customer-managed table key, as CDK grants them (kms:Encrypt, kms:Decrypt, ' +
            'kms:ReEncrypt*, kms:GenerateDataKey*); they name this one key, never another resource.',
        });
      }
    }
    const grants: Grant[] = [];
    if (access.actions.length > 0) {
      grants.push(
        Grant.addToPrincipal({
          grantee: this,
          actions: access.actions.map((action) => `dynamodb:${action}`),
          resourceArns: [table.tableArn],
        }),
      );
    }
    for (const index of access.queryIndexes ?? []) {
      grants.push(
        Grant.addToPrincipal({
          grantee: this,
          actions: ['dynamodb:Query'],
          resourceArns: [`${table.tableArn}/index/${index}`],
        }),
      );
    }
    const [first, ...rest] = grants;
    if (!first) throw new Error(`${this.node.path}: a table access needs at least one action`);
    return rest.reduce((all, grant) => all.combine(grant), first);
  }

  /** Sets configuration variables by the names `functions/core/config.ts` reads. */
  private addEnvironmentOf(config: Parameters<typeof toEnvironment>[0]): void {
    for (const [name, value] of Object.entries(toEnvironment(config))) this.addEnvironment(name, value);
  }

  /**
   * Lets the function read the token signing secret, and tells it which:
   * `TOKEN_SECRET_ARN`. Only the authorizers get this.
   */
  useTokenSecret(secret: ISecret): Grant {
    this.addEnvironment('TOKEN_SECRET_ARN', secret.secretArn);
    return secret.grantRead(this);
  }

  /**
   * Lets the function invoke `pages` (RequestResponse) and tells it which:
   * `FANOUT_PAGE_FUNCTION`. Only the fan-out gets this.
   */
  usePageFunction(pages: RosterFunction): Grant {
    this.addEnvironmentOf({ fanoutPageFunction: pages.functionName });
    const grant = pages.grantInvoke(this);
    const pagesLogicalId = Stack.of(pages).getLogicalId(pages.node.defaultChild as CfnElement);
    Validations.of(this.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${pagesLogicalId}.Arn>:*]`,
      reason:
        'CDK grants lambda:InvokeFunction on the page function and on its versions and aliases (`:*`); it names that one ' +
        'function and no other.',
    });
    return grant;
  }

  /**
   * Lets the function post to (and disconnect) clients of the WebSocket stage,
   * and tells it where: `WEBSOCKET_CALLBACK_URL`.
   */
  useConnections(stage: WebSocketStage): Grant {
    this.addEnvironmentOf({ websocketCallbackUrl: stage.callbackUrl });
    const grant = stage.grantManagementApiAccess(this);
    const apiLogicalId = Stack.of(stage).getLogicalId(stage.api.node.defaultChild as CfnElement);
    Validations.of(this.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<${apiLogicalId}>/${stage.stageName}/*/@connections/*]`,
      reason:
        'Connection ids exist only at run time, so the @connections resource ends in a wildcard; it is scoped to this ' +
        'WebSocket API and stage, and execute-api:ManageConnections is the only action granted on it.',
    });
    return grant;
  }
}

/** The function behind an API's authorizer (construct id `Authorizer`), the only one of its API that may read the token secret. */
export function authorizerFunction(scope: Construct, defaults: FunctionDefaults, secret: ISecret, entry: string, description: string): RosterFunction {
  const fn = new RosterFunction(scope, 'Authorizer', { ...defaults, entry, description });
  fn.useTokenSecret(secret);
  return fn;
}

/**
 * The function of one API handler module, `functions/<folder>/<module>.ts` (construct id `<Module>Handler`),
 * with the table access the module is granted, if any, and noted in `handlers` under its id: the HTTP and
 * WebSocket APIs build their route handlers alike.
 */
export function handlerFunction(
  scope: Construct,
  api: { defaults: FunctionDefaults; table: ITable; folder: 'http' | 'ws'; handlers: Map<string, RosterFunction> },
  module: string,
  access: TableAccess | undefined,
  props: Omit<RosterFunctionProps, keyof FunctionDefaults | 'entry'>,
): RosterFunction {
  const fnId = `${constructIdOf(module)}Handler`;
  const fn = new RosterFunction(scope, fnId, { ...api.defaults, entry: `functions/${api.folder}/${module}.ts`, ...props });
  if (access) fn.useTable(api.table, access);
  api.handlers.set(fnId, fn);
  return fn;
}
