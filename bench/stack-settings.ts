/**
 * The settings of a Roster deployment that the capacity planner and the cost
 * model need, read from a synthesized CloudFormation template: the stage
 * throttles, the memory of the functions on the hot paths, the fan-out's
 * event source mapping, the detection settings the functions are given and
 * the log groups' retention.
 *
 * Nothing here restates a default of the stack. `synthesizedSettings()`
 * reads the template of the stack as `infra/app.ts` builds it (with
 * `cdk.json`'s context and any `-c key=value` given; bundling skipped, as the
 * template tests do; cached like the local runtime's) and `settingsFromTemplate()` reads
 * any template, e.g. `cdk synth`'s `cdk.out/Roster.template.json`. A change
 * of a stack default therefore reaches the planner without anyone editing
 * this file.
 */
import { readFile } from 'node:fs/promises';
import { variableOf, type SettingName } from '../functions/core/config.ts';
import { HTTP_ROUTES, type HttpRouteSpec } from '../functions/core/routes.ts';

export interface Throttle {
  /** Steady-state requests (messages) per second. */
  rateLimit: number;
  /** Token bucket size. */
  burstLimit: number;
}

export interface StageSettings {
  /** `DefaultRouteSettings`: the throttle every route of the stage gets. */
  defaultThrottle: Throttle;
  /** `RouteSettings` overrides, by route key. */
  routeThrottles: Record<string, Throttle>;
}

export interface FunctionSettings {
  memoryMb: number;
  timeoutSeconds: number;
  reservedConcurrency?: number;
  /** Retention of the function's log group in days; undefined = never expire. */
  logRetentionDays?: number;
  /** Which of Lambda's own lines it writes (`LoggingConfig.SystemLogLevel`, JSON format only); undefined = all of them (the text format). */
  systemLogLevel?: 'DEBUG' | 'INFO' | 'WARN';
}

export interface StackSettings {
  /** Where the settings come from (the in-process synth of the stack's defaults, or a template file). */
  source: string;
  http: StageSettings;
  webSocket: StageSettings;
  /** The HTTP stage's access log line (`$context` variables), if access logging is on. */
  httpAccessLogFormat?: string;
  /** Retention of the HTTP access log group in days; undefined = never expire. */
  httpAccessLogRetentionDays?: number;
  /** Whether the WebSocket stage writes access logs. */
  webSocketAccessLogs: boolean;
  /** The functions behind each HTTP route key (`POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive`, …). */
  httpFunctions: Record<string, FunctionSettings>;
  /** The functions behind each WebSocket route key (`$connect`, `ping`, …). */
  webSocketFunctions: Record<string, FunctionSettings>;
  fanout: FunctionSettings;
  fanoutPages: FunctionSettings;
  sweeper: FunctionSettings;
  /** The table's pre-warmed throughput (`WarmThroughput`), where set; a new on-demand table's own otherwise. */
  tableWarmThroughput?: { readUnitsPerSecond?: number; writeUnitsPerSecond?: number };
  /** The stream event source mapping of the fan-out. */
  fanoutMapping: { batchSize: number; parallelizationFactor: number; maximumBatchingWindowSeconds: number };
  /** The detection settings the sweeper is given (functions/core/config.ts names). */
  detection: Pick<Record<SettingName, number>, 'defaultLeaseSeconds' | 'disconnectGraceSeconds' | 'sweepIntervalSeconds' | 'sweepShards' | 'sweepLoopSeconds' | 'fanoutPostsPerSecond'>;
}

interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
}

export interface Template {
  Resources: Record<string, Resource>;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The logical id a `{Ref: id}` or `{"Fn::GetAtt": [id, 'Arn']}` names, searched anywhere inside `value` (an ARN built with `Fn::Join` included). */
function referencedId(value: unknown, kind: 'Ref' | 'GetAtt'): string | undefined {
  if (Array.isArray(value)) {
    for (const v of value) {
      const found = referencedId(v, kind);
      if (found) return found;
    }
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  if (kind === 'Ref' && typeof value.Ref === 'string') return value.Ref;
  const getAtt = value['Fn::GetAtt'];
  if (kind === 'GetAtt' && Array.isArray(getAtt) && typeof getAtt[0] === 'string' && getAtt[1] === 'Arn') return getAtt[0];
  for (const v of Object.values(value)) {
    const found = referencedId(v, kind);
    if (found) return found;
  }
  return undefined;
}

function numberOf(value: unknown, what: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new TemplateError(`${what} is not a number (${JSON.stringify(value)})`);
  return n;
}

function throttleOf(settings: unknown, what: string): Throttle {
  if (!isRecord(settings) || settings.ThrottlingRateLimit === undefined || settings.ThrottlingBurstLimit === undefined) {
    throw new TemplateError(`${what} has no throttling (ThrottlingRateLimit and ThrottlingBurstLimit)`);
  }
  return { rateLimit: numberOf(settings.ThrottlingRateLimit, `${what} ThrottlingRateLimit`), burstLimit: numberOf(settings.ThrottlingBurstLimit, `${what} ThrottlingBurstLimit`) };
}

/** Walks one template: resources by type, references between them. */
class TemplateReader {
  constructor(private readonly resources: Record<string, Resource>) {}

  ofType(type: string): [string, Resource][] {
    return Object.entries(this.resources).filter(([, r]) => r.Type === type);
  }

  props(id: string): Record<string, unknown> {
    return this.resources[id]?.Properties ?? {};
  }

  /** The logical id of the one API of `protocol` (HTTP or WEBSOCKET). */
  api(protocol: string): string {
    const found = this.ofType('AWS::ApiGatewayV2::Api').filter(([, r]) => r.Properties?.ProtocolType === protocol);
    if (found.length !== 1) throw new TemplateError(`expected one ${protocol} API, found ${found.length}`);
    return (found[0] as [string, Resource])[0];
  }

  stage(api: string): Record<string, unknown> {
    const stages = this.ofType('AWS::ApiGatewayV2::Stage').filter(([, r]) => referencedId(r.Properties?.ApiId, 'Ref') === api);
    if (stages.length !== 1) throw new TemplateError(`expected one stage of API ${api}, found ${stages.length}`);
    return (stages[0] as [string, Resource])[1].Properties ?? {};
  }

  stageSettings(stage: Record<string, unknown>, what: string): StageSettings {
    const routeThrottles: Record<string, Throttle> = {};
    for (const [key, settings] of Object.entries(isRecord(stage.RouteSettings) ? stage.RouteSettings : {})) {
      if (isRecord(settings) && settings.ThrottlingRateLimit !== undefined) routeThrottles[key] = throttleOf(settings, `${what} route ${key}`);
    }
    return { defaultThrottle: throttleOf(stage.DefaultRouteSettings, `${what} stage`), routeThrottles };
  }

  retention(logGroupId: string | undefined): number | undefined {
    if (logGroupId === undefined) return undefined;
    const days = this.props(logGroupId).RetentionInDays;
    return days === undefined ? undefined : numberOf(days, `log group ${logGroupId} RetentionInDays`);
  }

  function(id: string): FunctionSettings {
    const p = this.props(id);
    if (this.resources[id]?.Type !== 'AWS::Lambda::Function') throw new TemplateError(`${id} is not a Lambda function`);
    const logging = isRecord(p.LoggingConfig) ? p.LoggingConfig : {};
    return {
      // CloudFormation's defaults when a property is absent: 128 MB, 3 s.
      memoryMb: p.MemorySize === undefined ? 128 : numberOf(p.MemorySize, `${id} MemorySize`),
      timeoutSeconds: p.Timeout === undefined ? 3 : numberOf(p.Timeout, `${id} Timeout`),
      ...(p.ReservedConcurrentExecutions === undefined ? {} : { reservedConcurrency: numberOf(p.ReservedConcurrentExecutions, `${id} ReservedConcurrentExecutions`) }),
      logRetentionDays: this.retention(referencedId(logging.LogGroup, 'Ref')),
      ...(logging.LogFormat === 'JSON' && (logging.SystemLogLevel === 'DEBUG' || logging.SystemLogLevel === 'INFO' || logging.SystemLogLevel === 'WARN') ? { systemLogLevel: logging.SystemLogLevel } : {}),
    };
  }

  /** The function behind each route of `api`: route → integration → function. */
  routeFunctions(api: string): Record<string, FunctionSettings> {
    const out: Record<string, FunctionSettings> = {};
    for (const [, route] of this.ofType('AWS::ApiGatewayV2::Route')) {
      const p = route.Properties ?? {};
      if (referencedId(p.ApiId, 'Ref') !== api || typeof p.RouteKey !== 'string') continue;
      const integration = referencedId(p.Target, 'Ref');
      const fn = integration === undefined ? undefined : referencedId(this.props(integration).IntegrationUri, 'GetAtt');
      if (fn !== undefined) out[p.RouteKey] = this.function(fn);
    }
    return out;
  }

  environment(id: string): Record<string, unknown> {
    const env = this.props(id).Environment;
    return isRecord(env) && isRecord(env.Variables) ? env.Variables : {};
  }

  /** The fan-out (the stream mapping's function), its page function and the mapping. */
  fanout(): { fanout: string; pages: string; mapping: Record<string, unknown> } {
    const mappings = this.ofType('AWS::Lambda::EventSourceMapping');
    if (mappings.length !== 1) throw new TemplateError(`expected one event source mapping (the fan-out's), found ${mappings.length}`);
    const mapping = (mappings[0] as [string, Resource])[1].Properties ?? {};
    const fanout = referencedId(mapping.FunctionName, 'Ref');
    if (fanout === undefined) throw new TemplateError('the event source mapping names no function of the template');
    const pages = referencedId(this.environment(fanout).FANOUT_PAGE_FUNCTION, 'Ref');
    if (pages === undefined) throw new TemplateError('the fan-out function names no page function (FANOUT_PAGE_FUNCTION)');
    return { fanout, pages, mapping };
  }

  /** The sweeper: the one function told how long to loop. */
  sweeper(): string {
    const loopVariable = variableOf('sweepLoopSeconds');
    const ids = this.ofType('AWS::Lambda::Function')
      .map(([id]) => id)
      .filter((id) => loopVariable in this.environment(id));
    if (ids.length !== 1) throw new TemplateError(`expected one sweeper function (with ${loopVariable}), found ${ids.length}`);
    return ids[0] as string;
  }
}

/** Reads a template's settings (see the module comment); throws `TemplateError` naming what is missing. */
export function settingsFromTemplate(template: Template, source: string): StackSettings {
  if (!isRecord(template.Resources)) throw new TemplateError('not a CloudFormation template (no Resources)');
  const t = new TemplateReader(template.Resources);
  const httpApi = t.api('HTTP');
  const webSocketApi = t.api('WEBSOCKET');
  const httpStage = t.stage(httpApi);
  const webSocketStage = t.stage(webSocketApi);
  const { fanout, pages, mapping } = t.fanout();
  const sweeper = t.sweeper();
  const sweeperEnv = t.environment(sweeper);
  const detectionValue = (name: SettingName): number => numberOf(sweeperEnv[variableOf(name)], `the sweeper's ${variableOf(name)}`);
  const accessLogs = isRecord(httpStage.AccessLogSettings) ? httpStage.AccessLogSettings : undefined;
  const tables = t.ofType('AWS::DynamoDB::Table');
  if (tables.length !== 1) throw new TemplateError(`expected one DynamoDB table, found ${tables.length}`);
  const warm = (tables[0] as [string, Resource])[1].Properties?.WarmThroughput;
  return {
    source,
    http: t.stageSettings(httpStage, 'the HTTP'),
    webSocket: t.stageSettings(webSocketStage, 'the WebSocket'),
    ...(typeof accessLogs?.Format === 'string' ? { httpAccessLogFormat: accessLogs.Format } : {}),
    httpAccessLogRetentionDays: t.retention(referencedId(accessLogs?.DestinationArn, 'GetAtt')),
    webSocketAccessLogs: isRecord(webSocketStage.AccessLogSettings),
    httpFunctions: t.routeFunctions(httpApi),
    webSocketFunctions: t.routeFunctions(webSocketApi),
    fanout: t.function(fanout),
    fanoutPages: t.function(pages),
    sweeper: t.function(sweeper),
    ...(isRecord(warm)
      ? {
          tableWarmThroughput: {
            ...(warm.ReadUnitsPerSecond === undefined ? {} : { readUnitsPerSecond: numberOf(warm.ReadUnitsPerSecond, 'WarmThroughput ReadUnitsPerSecond') }),
            ...(warm.WriteUnitsPerSecond === undefined ? {} : { writeUnitsPerSecond: numberOf(warm.WriteUnitsPerSecond, 'WarmThroughput WriteUnitsPerSecond') }),
          },
        }
      : {}),
    fanoutMapping: {
      batchSize: mapping.BatchSize === undefined ? 100 : numberOf(mapping.BatchSize, 'BatchSize'),
      parallelizationFactor: mapping.ParallelizationFactor === undefined ? 1 : numberOf(mapping.ParallelizationFactor, 'ParallelizationFactor'),
      maximumBatchingWindowSeconds: mapping.MaximumBatchingWindowInSeconds === undefined ? 0 : numberOf(mapping.MaximumBatchingWindowInSeconds, 'MaximumBatchingWindowInSeconds'),
    },
    detection: {
      defaultLeaseSeconds: detectionValue('defaultLeaseSeconds'),
      disconnectGraceSeconds: detectionValue('disconnectGraceSeconds'),
      sweepIntervalSeconds: detectionValue('sweepIntervalSeconds'),
      sweepShards: detectionValue('sweepShards'),
      sweepLoopSeconds: detectionValue('sweepLoopSeconds'),
      fanoutPostsPerSecond: detectionValue('fanoutPostsPerSecond'),
    },
  };
}

/** The route key of an HTTP route of the contract, as the stack names its route. */
export const httpRouteKey = (route: Pick<HttpRouteSpec, 'method' | 'path'>): string => `${route.method} ${route.path}`;

/** The route key of the HTTP route served by handler module `handler` (`keepalive`, `list-nodes`, `register`). */
export function httpRouteKeyOf(handler: string): string {
  const route = HTTP_ROUTES.find((r) => r.handler === handler);
  if (!route) throw new Error(`no HTTP route is served by ${handler}`);
  return httpRouteKey(route);
}

/** The throttle a route of a stage gets: its own override, else the stage's default. */
export const routeThrottle = (stage: StageSettings, routeKey: string): Throttle => stage.routeThrottles[routeKey] ?? stage.defaultThrottle;

/** A template file (`cdk synth` writes `cdk.out/<Stack>.template.json`). */
export async function settingsFromFile(file: string): Promise<StackSettings> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err instanceof Error ? err.message : String(err);
    throw new TemplateError(`cannot read ${file}: ${reason}`);
  }
  if (!isRecord(parsed) || !isRecord(parsed.Resources)) throw new TemplateError(`${file} is not a CloudFormation template (no Resources)`);
  return settingsFromTemplate(parsed as unknown as Template, `template ${file}`);
}

/**
 * The template of the stack as `cdk synth` would make it from this checkout,
 * with `cdk.json`'s context and `context` on top (the `-c key=value` of
 * `cdk deploy`): the local runtime's template (local/template/source.ts),
 * synthesized in a child process without bundling and kept in
 * `node_modules/.cache/roster/templates/` by a hash of the app's sources and
 * the context, so a second `roster capacity` of the same checkout starts at
 * once instead of after a synth of several seconds.
 */
export async function synthesizeTemplate(context: Record<string, string> = {}): Promise<Template> {
  const { loadTemplate, SynthesisError } = await import('../local/template/source.ts');
  try {
    return (await loadTemplate({ context })).template as unknown as Template;
  } catch (err) {
    // The app's own message (a context value it refuses), as `cdk synth` prints it.
    if (err instanceof SynthesisError) throw new Error(err.reason, { cause: err });
    throw err;
  }
}

/** The stack's own settings (its defaults, and `context` where given): see `synthesizeTemplate`. */
export async function synthesizedSettings(context: Record<string, string> = {}): Promise<StackSettings> {
  const shown = Object.entries(context).map(([k, v]) => ` -c ${k}=${v}`).join('');
  return settingsFromTemplate(await synthesizeTemplate(context), `the stack in this checkout (infra/roster-stack.ts, synthesized${shown || ' with its defaults'})`);
}
