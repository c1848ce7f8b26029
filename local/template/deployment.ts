/**
 * A synthesized CloudFormation template, read as the deployment the local
 * runtime runs: which module each function runs, with which environment,
 * timeout and role; the APIs with their routes, authorizers and stage
 * throttles; the stream's event source mapping; the schedule; the table.
 * Everything a user's stack would give AWS, so that what runs locally is what
 * `cdk deploy` ships, not the runtime's own idea of it.
 *
 * Resources get local names (`localNames`): functions `{stack}-{logicalId}`,
 * the table the runtime's table name, APIs an id from their logical id, in
 * account 000000000000 of the runtime's region. Intrinsics are resolved
 * against those names (intrinsics.ts), so a role's policy names the very
 * ARNs the local calls are made on.
 */
import { HANDLER_ENTRY_METADATA } from '../../functions/core/routes.ts';
import type { FilterPattern } from '../../functions/core/stream-filter.ts';
import { Resolver, TemplateError, type PhysicalResource, type Placement, type Resolved } from './intrinsics.ts';

export { TemplateError } from './intrinsics.ts';

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  Condition?: string;
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Conditions?: Record<string, unknown>;
  Outputs?: Record<string, { Value: unknown }>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: unknown[];
}

export interface RoleSpec {
  logicalId: string;
  name: string;
  arn: string;
  /** Every policy attached to the role (its inline policies and the `AWS::IAM::Policy` resources naming it). */
  policies: { name: string; document: PolicyDocument }[];
}

export interface FunctionSpec {
  logicalId: string;
  name: string;
  arn: string;
  /** The handler module, relative to the repository root (`functions/http/register.ts`). */
  entry: string;
  environment: Record<string, string>;
  timeoutMs: number;
  memoryMb: number;
  reservedConcurrency: number | undefined;
  role: RoleSpec;
}

export interface ThrottleSpec {
  rateLimit: number;
  burstLimit: number;
}

export interface StageSpec {
  name: string;
  /** `DefaultRouteSettings`: each route's own bucket, unless `routes` has one for it. */
  defaultThrottle: ThrottleSpec | undefined;
  /** `RouteSettings` by route key. */
  routeThrottles: Map<string, ThrottleSpec>;
}

export interface AuthorizerSpec {
  logicalId: string;
  functionId: string;
  identitySource: string[];
  /** Seconds a result is cached (HTTP APIs only; WebSocket authorizers are not cached). */
  resultTtlSeconds: number;
  payloadFormatVersion: string | undefined;
  simpleResponses: boolean;
}

export interface RouteSpec {
  routeKey: string;
  functionId: string;
  /** The authorizer of a route with `AuthorizationType: CUSTOM`. */
  authorizer: AuthorizerSpec | undefined;
  /** API Gateway's wait for the integration. */
  timeoutMs: number;
  payloadFormatVersion: string | undefined;
  /** WebSocket: whether the route has a route response, i.e. the integration's answer is sent back to the client. */
  respond: boolean;
}

export interface ApiSpec {
  logicalId: string;
  id: string;
  name: string;
  protocol: 'HTTP' | 'WEBSOCKET';
  routeSelectionExpression: string | undefined;
  routes: Map<string, RouteSpec>;
  stage: StageSpec;
}

export interface StreamMappingSpec {
  functionId: string;
  batchSize: number;
  batchingWindowMs: number;
  /** -1: until the record expires. */
  maxRetryAttempts: number;
  bisectOnError: boolean;
  /** -1: never too old. */
  maxRecordAgeSeconds: number;
  filters: FilterPattern[];
  onFailureArn: string | undefined;
  reportBatchItemFailures: boolean;
  startingPosition: string;
  parallelizationFactor: number;
  eventSourceArn: string;
}

export interface ScheduleSpec {
  functionId: string;
  expression: string;
}

export interface TableSpec {
  logicalId: string;
  name: string;
  arn: string;
  streamArn: string;
  properties: Record<string, Resolved>;
}

export interface SecretSpec {
  logicalId: string;
  arn: string;
  kmsKeyId: string | undefined;
}

export interface Deployment {
  placement: Placement;
  functions: Map<string, FunctionSpec>;
  httpApi: ApiSpec;
  webSocketApi: ApiSpec;
  streamMapping: StreamMappingSpec;
  schedule: ScheduleSpec;
  table: TableSpec;
  secret: SecretSpec | undefined;
  /** Every resource's local names, for resolving anything else (tests walk alarms and topics with it). */
  resolver: Resolver;
}

/** Lambda's defaults when the template leaves them out (AWS::Lambda::Function, AWS::Lambda::EventSourceMapping). */
const LAMBDA_DEFAULT_TIMEOUT_S = 3;
const LAMBDA_DEFAULT_MEMORY_MB = 128;
/** API Gateway's integration timeout when `TimeoutInMillis` is absent: 30 s for HTTP APIs, 29 s for WebSocket APIs. */
const HTTP_INTEGRATION_TIMEOUT_MS = 30_000;
const WS_INTEGRATION_TIMEOUT_MS = 29_000;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An API Gateway id: ten lower-case letters and digits, from the logical id. */
const apiIdOf = (logicalId: string): string => (logicalId.toLowerCase().replace(/[^a-z0-9]/g, '') + '0000000000').slice(0, 10);

/** The names CloudFormation would give each resource, in the local account and region. */
export function localNames(template: CfnTemplate, placement: Placement, tableName: string): (logicalId: string) => PhysicalResource | undefined {
  const { region, account, stackName, partition } = placement;
  const arn = (service: string, resource: string, inRegion = true) => `arn:${partition}:${service}:${inRegion ? region : ''}:${account}:${resource}`;
  const names = new Map<string, PhysicalResource>();
  for (const [id, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    const name = `${stackName}-${id}`;
    let physical: PhysicalResource;
    switch (resource.Type) {
      case 'AWS::DynamoDB::Table':
        physical = { ref: tableName, attributes: { Arn: arn('dynamodb', `table/${tableName}`), StreamArn: arn('dynamodb', `table/${tableName}/stream/local`) } };
        break;
      case 'AWS::Lambda::Function':
        physical = { ref: name, attributes: { Arn: arn('lambda', `function:${name}`) } };
        break;
      case 'AWS::IAM::Role':
        physical = { ref: name, attributes: { Arn: arn('iam', `role/${name}`, false), RoleId: `AROA${id.toUpperCase().slice(0, 17)}` } };
        break;
      case 'AWS::ApiGatewayV2::Api': {
        const apiId = apiIdOf(id);
        const scheme = props.ProtocolType === 'WEBSOCKET' ? 'wss' : 'https';
        physical = { ref: apiId, attributes: { ApiId: apiId, ApiEndpoint: `${scheme}://${apiId}.execute-api.${region}.amazonaws.com` } };
        break;
      }
      case 'AWS::ApiGatewayV2::Stage':
        physical = { ref: typeof props.StageName === 'string' ? props.StageName : id, attributes: {} };
        break;
      case 'AWS::SecretsManager::Secret':
        physical = { ref: arn('secretsmanager', `secret:${name}-AbCdEf`), attributes: { Id: arn('secretsmanager', `secret:${name}-AbCdEf`) } };
        break;
      case 'AWS::SQS::Queue':
        physical = { ref: `https://sqs.${region}.amazonaws.com/${account}/${name}`, attributes: { Arn: arn('sqs', name), QueueName: name, QueueUrl: `https://sqs.${region}.amazonaws.com/${account}/${name}` } };
        break;
      case 'AWS::SNS::Topic':
        physical = { ref: arn('sns', name), attributes: { TopicArn: arn('sns', name), TopicName: name } };
        break;
      case 'AWS::Logs::LogGroup':
        physical = { ref: name, attributes: { Arn: arn('logs', `log-group:${name}:*`) } };
        break;
      case 'AWS::CloudWatch::Alarm':
        physical = { ref: name, attributes: { Arn: arn('cloudwatch', `alarm:${name}`) } };
        break;
      case 'AWS::Events::Rule':
        physical = { ref: name, attributes: { Arn: arn('events', `rule/${name}`) } };
        break;
      case 'AWS::KMS::Key':
        physical = { ref: id, attributes: { Arn: arn('kms', `key/${id}`), KeyId: id } };
        break;
      default:
        // Integrations, routes, authorizers, policies, permissions…: referred to by id only.
        physical = { ref: id, attributes: {} };
    }
    names.set(id, physical);
  }
  return (logicalId) => names.get(logicalId);
}

/** Reads `template` as the deployment the local runtime runs. Throws `TemplateError` for anything it cannot run. */
export function readDeployment(template: CfnTemplate, placement: Placement, tableName: string): Deployment {
  const resolver = new Resolver(placement, localNames(template, placement, tableName), template.Conditions ?? {});
  const resources = Object.entries(template.Resources).filter(([, r]) => r.Condition === undefined || resolver.condition(r.Condition));
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const props = (id: string, r: CfnResource) => resolver.resolve(r.Properties ?? {}, id) as Record<string, Resolved>;

  const roles = readRoles(ofType('AWS::IAM::Role'), ofType('AWS::IAM::Policy'), resolver, props);
  const functions = readFunctions(ofType('AWS::Lambda::Function'), roles, resolver, props);
  const functionByArn = (text: string, where: string): string => {
    const match = /function:([^/:]+)/.exec(text);
    const found = [...functions.values()].find((f) => f.name === match?.[1]);
    if (!found) throw new TemplateError(`${where}: ${text} is not a function of this template`);
    return found.logicalId;
  };
  const apis = readApis(resources, resolver, props, functionByArn);
  const one = <T>(list: T[], what: string): T => {
    if (list.length !== 1) throw new TemplateError(`expected exactly one ${what} in the template, found ${list.length}`);
    return list[0] as T;
  };
  const table = one(
    ofType('AWS::DynamoDB::Table').map(([id, r]): TableSpec => {
      const names = localNames(template, placement, tableName)(id) as PhysicalResource;
      return { logicalId: id, name: names.ref, arn: names.attributes.Arn as string, streamArn: names.attributes.StreamArn as string, properties: props(id, r) };
    }),
    'DynamoDB table',
  );
  const secrets = ofType('AWS::SecretsManager::Secret').map(([id, r]): SecretSpec => {
    const p = props(id, r);
    return { logicalId: id, arn: resolver.string({ Ref: id }, id), kmsKeyId: typeof p.KmsKeyId === 'string' ? p.KmsKeyId : undefined };
  });
  return {
    placement,
    functions,
    httpApi: one(apis.filter((a) => a.protocol === 'HTTP'), 'HTTP API'),
    webSocketApi: one(apis.filter((a) => a.protocol === 'WEBSOCKET'), 'WebSocket API'),
    streamMapping: one(ofType('AWS::Lambda::EventSourceMapping').map(([id, r]) => readStreamMapping(id, props(id, r), functionByArn)), 'event source mapping'),
    schedule: one(ofType('AWS::Events::Rule').flatMap(([id, r]) => readSchedule(id, props(id, r), functionByArn)), 'scheduled rule with a function target'),
    table,
    secret: secrets[0],
    resolver,
  };
}

type PropsOf = (id: string, r: CfnResource) => Record<string, Resolved>;

function asPolicy(document: unknown, where: string): PolicyDocument {
  if (!isRecord(document) || !Array.isArray(document.Statement)) throw new TemplateError(`${where}: not a policy document`);
  return document as unknown as PolicyDocument;
}

function readRoles(roleResources: [string, CfnResource][], policyResources: [string, CfnResource][], resolver: Resolver, props: PropsOf): Map<string, RoleSpec> {
  const roles = new Map<string, RoleSpec>();
  for (const [id, r] of roleResources) {
    const p = props(id, r);
    if (Array.isArray(p.ManagedPolicyArns) && p.ManagedPolicyArns.length > 0) {
      throw new TemplateError(`${id}: managed policies (${p.ManagedPolicyArns.join(', ')}) cannot be evaluated locally: their documents are not in the template`);
    }
    const inline = (Array.isArray(p.Policies) ? p.Policies : []).map((policy, i) => {
      const entry = isRecord(policy) ? policy : {};
      return { name: String(entry.PolicyName ?? `${id}-inline-${i}`), document: asPolicy(entry.PolicyDocument, `${id}.Policies[${i}]`) };
    });
    roles.set(resolver.string({ Ref: id }, id), { logicalId: id, name: resolver.string({ Ref: id }, id), arn: resolver.string({ 'Fn::GetAtt': [id, 'Arn'] }, id), policies: inline });
  }
  for (const [id, r] of policyResources) {
    const p = props(id, r);
    for (const roleName of Array.isArray(p.Roles) ? p.Roles : []) {
      const role = roles.get(String(roleName));
      if (!role) throw new TemplateError(`${id}: attached to ${String(roleName)}, which is not a role of this template`);
      role.policies.push({ name: String(p.PolicyName ?? id), document: asPolicy(p.PolicyDocument, `${id}.PolicyDocument`) });
    }
  }
  return new Map([...roles.values()].map((role) => [role.arn, role]));
}

function readFunctions(fnResources: [string, CfnResource][], roles: Map<string, RoleSpec>, resolver: Resolver, props: PropsOf): Map<string, FunctionSpec> {
  const functions = new Map<string, FunctionSpec>();
  for (const [id, r] of fnResources) {
    const entry = r.Metadata?.[HANDLER_ENTRY_METADATA];
    if (typeof entry !== 'string') throw new TemplateError(`${id}: no ${HANDLER_ENTRY_METADATA} metadata naming its handler module (was the template synthesized from this repository's infra/?)`);
    const p = props(id, r);
    const role = roles.get(String(p.Role));
    if (!role) throw new TemplateError(`${id}: its role ${String(p.Role)} is not a role of this template`);
    const variables = isRecord(p.Environment) && isRecord(p.Environment.Variables) ? p.Environment.Variables : {};
    functions.set(id, {
      logicalId: id,
      name: resolver.string({ Ref: id }, id),
      arn: resolver.string({ 'Fn::GetAtt': [id, 'Arn'] }, id),
      entry,
      environment: Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)])),
      timeoutMs: (typeof p.Timeout === 'number' ? p.Timeout : LAMBDA_DEFAULT_TIMEOUT_S) * 1000,
      memoryMb: typeof p.MemorySize === 'number' ? p.MemorySize : LAMBDA_DEFAULT_MEMORY_MB,
      reservedConcurrency: typeof p.ReservedConcurrentExecutions === 'number' ? p.ReservedConcurrentExecutions : undefined,
      role,
    });
  }
  return functions;
}

const throttleOf = (settings: unknown): ThrottleSpec | undefined =>
  isRecord(settings) && typeof settings.ThrottlingRateLimit === 'number' && typeof settings.ThrottlingBurstLimit === 'number'
    ? { rateLimit: settings.ThrottlingRateLimit, burstLimit: settings.ThrottlingBurstLimit }
    : undefined;

function readApis(resources: [string, CfnResource][], resolver: Resolver, props: PropsOf, functionByArn: (arn: string, where: string) => string): ApiSpec[] {
  const all = resources.map(([id, r]) => ({ id, r, p: props(id, r) }));
  const ofType = (type: string) => all.filter((x) => x.r.Type === type);
  return ofType('AWS::ApiGatewayV2::Api').map(({ id, p }): ApiSpec => {
    const apiId = resolver.string({ Ref: id }, id);
    const mine = (type: string) => ofType(type).filter((x) => x.p.ApiId === apiId);
    for (const { id: authId, p: a } of mine('AWS::ApiGatewayV2::Authorizer')) {
      // The runtime answers as API Gateway does for REQUEST authorizers with simple responses (HTTP) or IAM policies (WebSocket) only.
      if (a.AuthorizerType !== 'REQUEST') throw new TemplateError(`${authId}: a ${String(a.AuthorizerType)} authorizer is not imitated (REQUEST authorizers only)`);
      if (p.ProtocolType === 'HTTP' && a.EnableSimpleResponses !== true) throw new TemplateError(`${authId}: an HTTP authorizer answering with IAM policies is not imitated (simple responses only)`);
    }
    const authorizers = new Map(
      mine('AWS::ApiGatewayV2::Authorizer').map(({ id: authId, p: a }): [string, AuthorizerSpec] => [
        resolver.string({ Ref: authId }, authId),
        {
          logicalId: authId,
          functionId: functionByArn(String(a.AuthorizerUri), authId),
          identitySource: Array.isArray(a.IdentitySource) ? a.IdentitySource.map(String) : [],
          resultTtlSeconds: typeof a.AuthorizerResultTtlInSeconds === 'number' ? a.AuthorizerResultTtlInSeconds : 0,
          payloadFormatVersion: typeof a.AuthorizerPayloadFormatVersion === 'string' ? a.AuthorizerPayloadFormatVersion : undefined,
          simpleResponses: a.EnableSimpleResponses === true,
        },
      ]),
    );
    const integrations = new Map(mine('AWS::ApiGatewayV2::Integration').map((x) => [resolver.string({ Ref: x.id }, x.id), x.p]));
    const responded = new Set(mine('AWS::ApiGatewayV2::RouteResponse').map((x) => String(x.p.RouteId)));
    const routes = new Map<string, RouteSpec>();
    for (const { id: routeId, p: route } of mine('AWS::ApiGatewayV2::Route')) {
      const integrationId = String(route.Target ?? '').replace(/^integrations\//, '');
      const integration = integrations.get(integrationId);
      if (!integration) throw new TemplateError(`${routeId}: its target ${String(route.Target)} is not an integration of the API`);
      if (integration.IntegrationType !== 'AWS_PROXY') throw new TemplateError(`${routeId}: a ${String(integration.IntegrationType)} integration is not imitated (Lambda proxy integrations only)`);
      if (p.ProtocolType === 'HTTP' && integration.PayloadFormatVersion !== '2.0') {
        throw new TemplateError(`${routeId}: payload format ${String(integration.PayloadFormatVersion ?? '1.0')} is not imitated (2.0 only)`);
      }
      const authorizer = route.AuthorizationType === 'CUSTOM' ? authorizers.get(String(route.AuthorizerId)) : undefined;
      if (route.AuthorizationType === 'CUSTOM' && !authorizer) throw new TemplateError(`${routeId}: its authorizer ${String(route.AuthorizerId)} is not in the template`);
      routes.set(String(route.RouteKey), {
        routeKey: String(route.RouteKey),
        functionId: functionByArn(String(integration.IntegrationUri), routeId),
        authorizer,
        timeoutMs: typeof integration.TimeoutInMillis === 'number' ? integration.TimeoutInMillis : p.ProtocolType === 'WEBSOCKET' ? WS_INTEGRATION_TIMEOUT_MS : HTTP_INTEGRATION_TIMEOUT_MS,
        payloadFormatVersion: typeof integration.PayloadFormatVersion === 'string' ? integration.PayloadFormatVersion : undefined,
        respond: responded.has(resolver.string({ Ref: routeId }, routeId)),
      });
    }
    const stages = mine('AWS::ApiGatewayV2::Stage');
    if (stages.length !== 1) throw new TemplateError(`${id}: expected one stage, found ${stages.length}`);
    const stage = (stages[0] as { p: Record<string, Resolved> }).p;
    const routeSettings = isRecord(stage.RouteSettings) ? stage.RouteSettings : {};
    return {
      logicalId: id,
      id: apiId,
      name: String(p.Name ?? id),
      protocol: p.ProtocolType === 'WEBSOCKET' ? 'WEBSOCKET' : 'HTTP',
      routeSelectionExpression: typeof p.RouteSelectionExpression === 'string' ? p.RouteSelectionExpression : undefined,
      routes,
      stage: {
        name: String(stage.StageName),
        defaultThrottle: throttleOf(stage.DefaultRouteSettings),
        routeThrottles: new Map(Object.entries(routeSettings).flatMap(([key, s]) => (throttleOf(s) ? [[key, throttleOf(s) as ThrottleSpec]] : []))),
      },
    };
  });
}

function readStreamMapping(id: string, p: Record<string, Resolved>, functionByArn: (arn: string, where: string) => string): StreamMappingSpec {
  const filters = isRecord(p.FilterCriteria) && Array.isArray(p.FilterCriteria.Filters) ? p.FilterCriteria.Filters : [];
  const onFailure = isRecord(p.DestinationConfig) && isRecord(p.DestinationConfig.OnFailure) ? p.DestinationConfig.OnFailure.Destination : undefined;
  const number = (value: Resolved | undefined, fallback: number) => (typeof value === 'number' ? value : fallback);
  return {
    // FunctionName may be a name or an ARN.
    functionId: functionByArn(String(p.FunctionName).includes(':function:') ? String(p.FunctionName) : `function:${String(p.FunctionName)}`, id),
    // Defaults of AWS::Lambda::EventSourceMapping for DynamoDB streams.
    batchSize: number(p.BatchSize, 100),
    batchingWindowMs: number(p.MaximumBatchingWindowInSeconds, 0) * 1000,
    maxRetryAttempts: number(p.MaximumRetryAttempts, -1),
    bisectOnError: p.BisectBatchOnFunctionError === true,
    maxRecordAgeSeconds: number(p.MaximumRecordAgeInSeconds, -1),
    filters: filters.map((f, i) => {
      const pattern = isRecord(f) ? f.Pattern : undefined;
      if (typeof pattern !== 'string') throw new TemplateError(`${id}.FilterCriteria.Filters[${i}]: no Pattern`);
      return JSON.parse(pattern) as FilterPattern;
    }),
    onFailureArn: typeof onFailure === 'string' ? onFailure : undefined,
    reportBatchItemFailures: Array.isArray(p.FunctionResponseTypes) && p.FunctionResponseTypes.includes('ReportBatchItemFailures'),
    startingPosition: String(p.StartingPosition ?? 'LATEST'),
    parallelizationFactor: number(p.ParallelizationFactor, 1),
    eventSourceArn: String(p.EventSourceArn),
  };
}

function readSchedule(id: string, p: Record<string, Resolved>, functionByArn: (arn: string, where: string) => string): ScheduleSpec[] {
  if (typeof p.ScheduleExpression !== 'string' || p.State === 'DISABLED') return [];
  const targets = (Array.isArray(p.Targets) ? p.Targets : []).filter((t): t is Record<string, Resolved> => isRecord(t));
  return targets.filter((t) => String(t.Arn).includes(':function:')).map((t) => ({ functionId: functionByArn(String(t.Arn), id), expression: p.ScheduleExpression as string }));
}
