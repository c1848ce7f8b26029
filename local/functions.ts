/**
 * The template's Lambda functions, as the local runtime runs them: each one
 * the handler module its template entry names (`roster:entry`), with the
 * environment the template gives it, the credentials of its own execution
 * role, and a scope of its own (functions/core/scope.ts) — its settings, its
 * clients, and an HTTP handler that asks IAM before any AWS call leaves.
 *
 * What the runtime adds to a function's environment, and nothing else:
 * where the services are (`DYNAMODB_ENDPOINT`, `LAMBDA_ENDPOINT`,
 * `SECRETSMANAGER_ENDPOINT`, and `WEBSOCKET_CALLBACK_URL` pointing at the
 * local `@connections` endpoint), the region and role credentials Lambda
 * would set, `ROSTER_AUTH=off` unless `--auth`, the log level and form, and for the
 * sweeper the runtime's own schedule (one sweep per tick, amnesty on start:
 * see `sweeperOverrides`).
 */
import { NO_METRICS, type MetricsSink } from '../functions/core/metrics.ts';
import { Scope } from '../functions/core/scope.ts';
import { credentialsFor, IamGate, type GateConfig, type Principal } from './iam/gate.ts';
import { GatedRequestHandler } from './iam/request-handler.ts';
import type { LambdaHandler } from './handlers.ts';
import { moduleUrl } from './modules.ts';
import type { Deployment, FunctionSpec } from './template/deployment.ts';
import { TemplateError } from './template/deployment.ts';

/** Where the runtime serves what a function calls. */
export interface Endpoints {
  dynamodb: string;
  /** The local `@connections` endpoint; the stage path is appended as on AWS. */
  callbackUrl: string;
  lambda: string;
  secretsManager: string | undefined;
}

export interface FunctionOptions {
  auth: boolean;
  verbose: boolean;
  /** Evaluate IAM for every AWS call (the default). */
  iam: boolean;
  iamLogFile: string | undefined;
  metrics: MetricsSink | undefined;
  /** Extra environment by handler entry (the console's page). */
  extraEnvironment?: Readonly<Record<string, Record<string, string>>>;
}

export interface LocalFunction {
  spec: FunctionSpec;
  principal: Principal;
  /** The environment the function runs with, in process or in a forked execution environment. */
  env: Record<string, string>;
  /** The gate's settings for a forked execution environment of this function (local/lambda-worker.ts). */
  gate: GateConfig | undefined;
}

export interface LocalFunctions {
  byId: Map<string, LocalFunction>;
  gate: IamGate | undefined;
  /** The function's handler module, run in the function's scope. */
  handler(functionId: string): Promise<LambdaHandler>;
  dispose(): void;
}

/** What the runtime's schedule changes for the sweeper: its timer is the schedule, each invocation sweeps once. */
const sweeperOverrides = {
  SWEEP_LOOP_SECONDS: '0',
  // The sweeper lives in this process with the API: when the runtime was down, nodes could not keep alive.
  SWEEPER_AMNESTY_ON_START: 'true',
};

function environmentOf(spec: FunctionSpec, principal: Principal, deployment: Deployment, endpoints: Endpoints, o: FunctionOptions): Record<string, string> {
  const { region } = deployment.placement;
  const has = (name: string) => spec.environment[name] !== undefined;
  return {
    ...spec.environment,
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: principal.accessKeyId,
    AWS_SECRET_ACCESS_KEY: principal.secretAccessKey,
    ...(has('TABLE_NAME') ? { DYNAMODB_ENDPOINT: endpoints.dynamodb } : {}),
    ...(has('WEBSOCKET_CALLBACK_URL') ? { WEBSOCKET_CALLBACK_URL: `${endpoints.callbackUrl}/${deployment.webSocketApi.stage.name}` } : {}),
    ...(has('FANOUT_PAGE_FUNCTION') ? { LAMBDA_ENDPOINT: endpoints.lambda } : {}),
    ...(has('TOKEN_SECRET_ARN') && endpoints.secretsManager ? { SECRETSMANAGER_ENDPOINT: endpoints.secretsManager } : {}),
    ...(spec.logicalId === deployment.schedule.functionId ? sweeperOverrides : {}),
    ...o.extraEnvironment?.[spec.entry],
    // On AWS the handlers always require tokens (their default); locally only with --auth.
    ROSTER_AUTH: o.auth ? 'required' : 'off',
    POWERTOOLS_LOG_LEVEL: o.verbose ? 'INFO' : 'WARN',
    // The handlers' log lines in the runtime's own one-line form (functions/core/log.ts); on Lambda they stay JSON.
    ROSTER_LOG_FORMAT: 'text',
  };
}

function principalOf(spec: FunctionSpec, deployment: Deployment): Principal {
  const { account, stackName } = deployment.placement;
  return {
    functionId: spec.logicalId,
    functionName: spec.name,
    roleArn: spec.role.arn,
    sessionArn: `arn:aws:sts::${account}:assumed-role/${spec.role.name}/${spec.name}`,
    ...credentialsFor(spec.logicalId, stackName),
    policies: spec.role.policies,
  };
}

/** The URL a handler module loads from (its source, or its copy in the bundle); only modules of this repository's `functions/` run. */
export function entryUrl(entry: string): string {
  if (!/^functions\/[a-z0-9/_-]+\.ts$/.test(entry)) throw new TemplateError(`a function's handler module must be under functions/, not ${entry}`);
  return moduleUrl(entry);
}

export function prepareFunctions(deployment: Deployment, endpoints: Endpoints, o: FunctionOptions): LocalFunctions {
  const principals = new Map([...deployment.functions.values()].map((spec) => [spec.logicalId, principalOf(spec, deployment)]));
  const gateConfig = (only?: Principal): GateConfig | undefined =>
    o.iam ? { account: deployment.placement.account, principals: only ? [only] : [...principals.values()], logFile: o.iamLogFile } : undefined;
  const gate = o.iam ? new IamGate(gateConfig() as GateConfig) : undefined;
  const byId = new Map(
    [...deployment.functions.values()].map((spec) => {
      const principal = principals.get(spec.logicalId) as Principal;
      return [spec.logicalId, { spec, principal, env: environmentOf(spec, principal, deployment, endpoints, o), gate: gateConfig(principal) }] as const;
    }),
  );
  const scopes = new Map<string, Scope>();
  const loaded = new Map<string, Promise<LambdaHandler>>();
  const scopeOf = (fn: LocalFunction): Scope => {
    let scope = scopes.get(fn.spec.logicalId);
    if (!scope) {
      scope = new Scope({
        env: fn.env,
        metrics: o.metrics ?? NO_METRICS,
        awsRequestHandler: gate ? (options) => new GatedRequestHandler(gate, deployment.placement.region, options) : undefined,
      });
      scopes.set(fn.spec.logicalId, scope);
    }
    return scope;
  };
  return {
    byId,
    gate,
    handler(functionId) {
      const fn = byId.get(functionId);
      if (!fn) return Promise.reject(new TemplateError(`no function ${functionId} in the template`));
      let handler = loaded.get(functionId);
      if (!handler) {
        handler = import(entryUrl(fn.spec.entry)).then((mod: { handler?: unknown }) => {
          if (typeof mod.handler !== 'function') throw new TemplateError(`${fn.spec.entry} does not export a handler function`);
          return scopeOf(fn).bind(mod.handler as LambdaHandler);
        });
        loaded.set(functionId, handler);
      }
      return handler;
    },
    dispose() {
      for (const scope of scopes.values()) scope.dispose();
    },
  };
}

/**
 * Imports the handler modules the runtime invokes in its own process (every
 * function but those only other functions invoke, which run in forked
 * environments), so that their loading overlaps DynamoDB Local's start; a
 * module reads its settings at its first invocation, not when imported.
 */
export async function preloadHandlers(deployment: Deployment): Promise<void> {
  const inProcess = new Set<string>([deployment.streamMapping.functionId, deployment.schedule.functionId]);
  for (const api of [deployment.httpApi, deployment.webSocketApi]) {
    for (const route of api.routes.values()) {
      inProcess.add(route.functionId);
      if (route.authorizer) inProcess.add(route.authorizer.functionId);
    }
  }
  const entries = new Set([...inProcess].flatMap((id) => deployment.functions.get(id)?.entry ?? []));
  await Promise.all([...entries].map((entry) => import(entryUrl(entry))));
}
