/**
 * The WebSocket API: `$connect` (with the token authorizer, the only route
 * API Gateway lets have one), `$disconnect`, the client messages of
 * `WS_ROUTES` (`functions/core/routes.ts`) and `$default`, each with its own
 * function, on a throttled `live` stage.
 *
 * Access logging of a WebSocket stage needs API Gateway's account-level
 * CloudWatch Logs role (HTTP APIs do not), a setting the whole account and
 * region share. By default the stack neither writes that setting (it would
 * replace a role a landing zone or another team set) nor logs WebSocket
 * access (which fails to deploy where no role is set). See `accessLogs`.
 */
import { RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat, CfnAccount } from 'aws-cdk-lib/aws-apigateway';
import type { CfnStage} from 'aws-cdk-lib/aws-apigatewayv2';
import { LogGroupLogDestination, WebSocketApi, WebSocketStage, type ThrottleSettings, type WebSocketRoute } from 'aws-cdk-lib/aws-apigatewayv2';
import { WebSocketLambdaAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { WebSocketLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { WS_ROUTES, WS_ROUTE_SELECTION } from '../functions/core/routes.ts';
import { acknowledgeControl, CONTROLS } from './control-tower.ts';
import { applyRouteThrottles } from './deployment-size.ts';
import { authorizerFunction, constructIdOf, handlerFunction, type RosterFunction, rosterLogGroup, type FunctionDefaults } from './function.ts';
import { WS_TABLE_ACCESS } from './table-access.ts';

/** The WebSocket stage: clients connect to `wss://…/live`. */
export const WEBSOCKET_STAGE_NAME = 'live';
/** WebSocket routes whose handler's return body is sent back to the client. `$connect`/`$disconnect` have no client to answer. */
const WS_ROUTES_WITH_RESPONSE = new Set(['subscribe', 'unsubscribe', 'ping', '$default']);

/**
 * - `none`: no access logs for the WebSocket stage; the account setting is left alone.
 * - `accountRoleExists`: access logs, relying on the account's CloudWatch Logs role (set by a landing zone, another stack, or once by hand).
 * - `createAccountRole`: access logs, and the stack creates the role and sets it for the account and region —
 *   replacing any role set before (it is retained on destroy: other APIs may rely on it).
 */
export type WebSocketAccessLogs = 'none' | 'accountRoleExists' | 'createAccountRole';

export interface RosterWebSocketApiProps {
  readonly functions: FunctionDefaults;
  readonly table: ITable;
  readonly tokenSecret: ISecret;
  /** Messages per second and burst of the stage's routes (`DefaultRouteSettings`, `$connect` included). */
  readonly throttle: ThrottleSettings;
  /** Routes with a throttle of their own (`RouteSettings`), by route key (`ping`, `$connect`). */
  readonly routeThrottles: Readonly<Record<string, ThrottleSettings>>;
  readonly accessLogs: WebSocketAccessLogs;
}

export class RosterWebSocketApi extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  /** The `$connect` authorizer; the only WebSocket function that may read the token secret. */
  readonly authorizer: RosterFunction;
  /** The route handlers, keyed by construct id. */
  readonly handlers = new Map<string, RosterFunction>();
  /** The routes (the stage's route settings name them). */
  private readonly routes: WebSocketRoute[] = [];

  constructor(scope: Construct, id: string, props: RosterWebSocketApiProps) {
    super(scope, id);
    this.authorizer = authorizerFunction(
      this,
      props.functions,
      props.tokenSecret,
      'functions/auth/ws-authorizer.ts',
      'Roster WebSocket $connect authorizer: verifies the token query parameter',
    );
    // 'Default' keeps the API's logical id (and so its URL) from before this construct existed.
    this.api = new WebSocketApi(this, 'Default', {
      // Named after the stack, like the HTTP API (`{stackName}-http`).
      apiName: `${Stack.of(this).stackName}-ws`,
      description: 'Roster membership events',
      routeSelectionExpression: WS_ROUTE_SELECTION,
    });
    const handlers = { defaults: props.functions, table: props.table, folder: 'ws' as const, handlers: this.handlers };
    for (const route of WS_ROUTES) {
      const name = constructIdOf(route.handler);
      const fn = handlerFunction(this, handlers, route.handler, WS_TABLE_ACCESS[route.handler], { description: `Roster WebSocket ${route.routeKey}` });
      const wsRoute = this.api.addRoute(route.routeKey, {
        integration: new WebSocketLambdaIntegration(`Ws${name}Integration`, fn),
        returnResponse: WS_ROUTES_WITH_RESPONSE.has(route.routeKey),
        authorizer:
          route.routeKey === '$connect'
            ? new WebSocketLambdaAuthorizer('ConnectAuthorizer', this.authorizer, { identitySource: ['route.request.querystring.token'] })
            : undefined,
      });
      this.routes.push(wsRoute);
      if (route.routeKey !== '$connect') {
        const reason =
          `API Gateway allows an authorizer on a WebSocket API's $connect route only; ${route.routeKey} runs on a connection ` +
          'that $connect already authorized, and its handler checks the cluster of each message against the token claims ' +
          'API Gateway passes on from $connect.';
        Validations.of(wsRoute).acknowledge({ id: 'AwsSolutions-APIG4', reason });
        acknowledgeControl(wsRoute, CONTROLS.apiRouteAuthorization, reason);
      }
    }
    this.stage = this.createStage(props);
  }

  private createStage(props: RosterWebSocketApiProps): WebSocketStage {
    const logged = props.accessLogs !== 'none';
    const stage = new WebSocketStage(this, 'Stage', {
      webSocketApi: this.api,
      stageName: WEBSOCKET_STAGE_NAME,
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: logged
        ? {
            destination: new LogGroupLogDestination(rosterLogGroup(this, 'AccessLogs', props.functions)),
            // The console's JSON preset for WebSocket APIs. No query string: `?token=` must never reach the logs.
            format: AccessLogFormat.custom(
              JSON.stringify({
                requestId: '$context.requestId',
                ip: '$context.identity.sourceIp',
                requestTime: '$context.requestTime',
                eventType: '$context.eventType',
                routeKey: '$context.routeKey',
                status: '$context.status',
                connectionId: '$context.connectionId',
              }),
            ),
          }
        : undefined,
    });
    // The stage's logical id from before this construct existed: API Gateway refuses a second `live` stage.
    (stage.node.defaultChild as CfnStage).overrideLogicalId('WebSocketStageC46B7E43');
    applyRouteThrottles(stage.node.defaultChild as CfnStage, props.routeThrottles, this.routes);
    if (props.accessLogs === 'createAccountRole') stage.node.addDependency(this.apiGatewayLogsAccount());
    if (!logged) {
      acknowledgeControl(
        stage,
        CONTROLS.apiStageAccessLogging,
        'WebSocket access logs need the account-level API Gateway CloudWatch Logs role, which the stack does not overwrite by default; ' +
          'turn them on with -c webSocketAccessLogs=true where the account has that role (docs/operating/deploy.md).',
      );
      Validations.of(stage).acknowledge({
        id: 'AwsSolutions-APIG1',
        reason:
          'WebSocket access logs need the account-level API Gateway CloudWatch Logs role; setting it would replace one a landing ' +
          'zone or another team set, and logging without it fails the deployment. They are opt-in (-c webSocketAccessLogs=true); ' +
          'API Gateway metrics and every function log are on regardless.',
      });
    }
    return stage;
  }

  /** API Gateway's account-level CloudWatch Logs role, which WebSocket (and REST) access logging needs. */
  private apiGatewayLogsAccount(): CfnAccount {
    const role = new Role(this, 'ApiGatewayLogsRole', {
      assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway account-level role for pushing access logs to CloudWatch Logs',
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonAPIGatewayPushToCloudWatchLogs')],
    });
    // The account setting outlives this stack; deleting the role would break logging of other APIs.
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        "This is the policy AWS documents for API Gateway's account-level logging role; AWS maintains it as API Gateway's " +
        'logging needs change. The role can only be assumed by apigateway.amazonaws.com.',
    });
    const account = new CfnAccount(this, 'ApiGatewayAccount', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    return account;
  }
}
