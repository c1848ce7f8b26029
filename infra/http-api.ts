/**
 * The HTTP API: one route and one function per `HTTP_ROUTES` entry
 * (`functions/core/routes.ts`, the table the local runtime routes with too),
 * a `$default` route for JSON 404/405, the token authorizer on every route
 * that is not public, and a throttled `$default` stage with access logs.
 */
import { Stack, Validations, type Duration } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import type { CfnStage} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination, type HttpRoute, type ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, type HttpRouteSpec } from '../functions/core/routes.ts';
import { CONSOLE_FUNCTION_PROPS, CONSOLE_HANDLER } from './console.ts';
import { acknowledgeControl, CONTROLS } from './control-tower.ts';
import { applyRouteThrottles } from './deployment-size.ts';
import { authorizerFunction, constructIdOf, handlerFunction, type RosterFunction, rosterLogGroup, type FunctionDefaults } from './function.ts';
import { HTTP_TABLE_ACCESS } from './table-access.ts';

export interface RosterHttpApiProps {
  readonly functions: FunctionDefaults;
  readonly table: ITable;
  readonly tokenSecret: ISecret;
  /** Steady-state requests per second and burst of the stage's routes (`DefaultRouteSettings`). */
  readonly throttle: ThrottleSettings;
  /** Routes with a throttle of their own (`RouteSettings`), by route key (`POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive`). */
  readonly routeThrottles: Readonly<Record<string, ThrottleSettings>>;
  /**
   * How long API Gateway caches the authorizer's result per `Authorization`
   * header value (0 to 1 h); 0 turns caching off and drops the identity source.
   */
  readonly authorizerCacheTtl: Duration;
}

export class RosterHttpApi extends Construct {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  /** Verifies bearer tokens; the only HTTP function that may read the token secret. */
  readonly authorizer: RosterFunction;
  /** Serves the console page; it learns the WebSocket URL with `useWebSocketUrl`. */
  readonly consoleFunction: RosterFunction;
  /** The route handlers (and `$default`'s), keyed by construct id. */
  readonly handlers = new Map<string, RosterFunction>();
  /** The routes of `HTTP_ROUTES` (the stage's route settings name them). */
  private readonly routes: HttpRoute[] = [];

  constructor(scope: Construct, id: string, props: RosterHttpApiProps) {
    super(scope, id);
    if (props.authorizerCacheTtl.toSeconds() > 3600) throw new Error("authorizerCacheTtl must be at most one hour (API Gateway's limit)");
    this.authorizer = authorizerFunction(this, props.functions, props.tokenSecret, 'functions/auth/http-authorizer.ts', 'Roster HTTP authorizer: verifies bearer tokens');
    const cached = props.authorizerCacheTtl.toSeconds() > 0;
    const authorizer = new HttpLambdaAuthorizer('TokenAuthorizer', this.authorizer, {
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      // The cache key. Without caching there is no identity source, so a request without the header reaches the authorizer too.
      identitySource: cached ? ['$request.header.Authorization'] : [],
      resultsCacheTtl: props.authorizerCacheTtl,
    });

    const notFound = this.handler(props, HTTP_DEFAULT_HANDLER, 'Roster HTTP $default: JSON 404, or 405 with Allow');
    // 'Default' leaves the construct's own id out of the API's logical id: it stays what it was before
    // this construct existed, so an update keeps the API and its URL.
    this.api = new HttpApi(this, 'Default', {
      // Named after the stack: two stacks in one account (`-c stackName=`) are told apart in the console.
      apiName: `${Stack.of(this).stackName}-http`,
      description: 'Roster HTTP API (v1): the information center for cluster membership and node health',
      // The stage is created below, with throttling and access logs.
      createDefaultStage: false,
      defaultIntegration: new HttpLambdaIntegration('NotFoundIntegration', notFound),
    });
    const integrations = new Map<string, HttpLambdaIntegration>();
    for (const route of HTTP_ROUTES) {
      let integration = integrations.get(route.handler);
      if (!integration) {
        const fn = this.handler(props, route.handler, `Roster HTTP ${route.method} ${route.path}`);
        integration = new HttpLambdaIntegration(`Http${constructIdOf(route.handler)}Integration`, fn);
        integrations.set(route.handler, integration);
      }
      const routes = this.api.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration,
        // Every route that is not public goes through the authorizer; the handler then checks cluster and role.
        authorizer: route.access === 'public' ? undefined : authorizer,
      });
      this.routes.push(...routes);
      if (route.access === 'public') for (const r of routes) acknowledgePublicRoute(r, publicReason(route));
    }
    const defaultRoute = this.api.node.tryFindChild('DefaultRoute');
    if (!defaultRoute) throw new Error('the HTTP API has no $default route');
    acknowledgePublicRoute(
      defaultRoute,
      'The $default route only answers requests no route matched, with a JSON 404 or 405; its function reads and writes ' +
        'nothing, so a token would protect nothing, and unauthenticated clients learn only what docs/operating/access-control.md documents.',
    );
    const consoleFunction = this.handlers.get(`${constructIdOf(CONSOLE_HANDLER)}Handler`);
    if (!consoleFunction) throw new Error('HTTP_ROUTES has no console route');
    this.consoleFunction = consoleFunction;
    this.stage = this.createStage(props);
  }

  /** The console page connects to the WebSocket API, whose URL exists only once that API does. */
  useWebSocketUrl(url: string): void {
    this.consoleFunction.addEnvironment('WEBSOCKET_URL', url);
  }

  private handler(props: RosterHttpApiProps, module: string, description: string): RosterFunction {
    return handlerFunction(this, { defaults: props.functions, table: props.table, folder: 'http', handlers: this.handlers }, module, HTTP_TABLE_ACCESS[module], {
      description,
      // The console's page is written next to its bundle (infra/console.ts).
      ...(module === CONSOLE_HANDLER ? CONSOLE_FUNCTION_PROPS : {}),
    });
  }

  private createStage(props: RosterHttpApiProps): HttpStage {
    const stage = new HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(rosterLogGroup(this, 'AccessLogs', props.functions)),
        // No query string and no headers: a token must never reach the logs. Every keepalive writes this line and the
        // stack keeps it a year, so it holds what an operator searches by and no more (the log event's own timestamp is
        // the request's; the route key names the method): 1,000 nodes' keepalives write 29 GB a month of it.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLatency: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
            // Who (the token's sub, never the token) and why an authorizer failed.
            principal: '$context.authorizer.sub',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });
    // The stage's logical id from before this construct existed: a new one would make CloudFormation create a
    // second `$default` stage before deleting the first, which API Gateway refuses.
    (stage.node.defaultChild as CfnStage).overrideLogicalId('HttpStageB46AEAD3');
    applyRouteThrottles(stage.node.defaultChild as CfnStage, props.routeThrottles, this.routes);
    return stage;
  }
}

function publicReason(route: HttpRouteSpec): string {
  return (
    `${route.method} ${route.path} is public by design (access 'public' in functions/core/routes.ts): it reads and ` +
    'writes no membership data, and health checks and the console page must load without a token.'
  );
}

/** A route without an authorizer, on purpose: cdk-nag's APIG4 and Control Tower's CT.APIGATEWAY.PR.5 are told why. */
export function acknowledgePublicRoute(route: IConstruct, reason: string): void {
  Validations.of(route).acknowledge({ id: 'AwsSolutions-APIG4', reason });
  acknowledgeControl(route, CONTROLS.apiRouteAuthorization, reason);
}
