/**
 * AWS SDK clients honouring endpoint overrides, so that the same code runs on
 * AWS, LocalStack and DynamoDB Local. Who keeps them for how long is deps.ts's
 * business (once per scope).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import type { Config } from './config.ts';
import { currentScope, type Environment } from './scope.ts';

/** The region of clients with an endpoint override: the environment's, else a placeholder. */
export const localRegion = (env: Environment = process.env): string => env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';

/**
 * With an endpoint override (DynamoDB Local, LocalStack), the scope's region
 * and credentials: a local runtime gives each function the credentials of
 * its own role in its scope's environment, as Lambda does in the process's
 * (local/iam/gate.ts). Without any in the environment, placeholder
 * credentials and a default region: those engines accept any, and a
 * developer should not need an AWS profile to run Roster. They are passed to
 * the client, never put into `process.env`: a local runtime embedded in
 * another program must not change that program's AWS settings.
 */
export function localOverrides(endpoint: string | undefined) {
  if (!endpoint) return {};
  const { env } = currentScope();
  const fromScope = env !== process.env && env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY;
  return {
    endpoint,
    region: localRegion(env),
    ...(fromScope
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID as string, secretAccessKey: env.AWS_SECRET_ACCESS_KEY as string, sessionToken: env.AWS_SESSION_TOKEN } }
      : process.env.AWS_ACCESS_KEY_ID
        ? {}
        : { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  };
}

/** What a client sends with: the scope's handler (the local runtime's IAM) when it has one, else the SDK's own, built from `options`. */
export function requestHandlerFor(options: NodeHttpHandlerOptions = {}) {
  const { awsRequestHandler } = currentScope();
  return awsRequestHandler ? awsRequestHandler(options) : options;
}

export function createDocumentClient(cfg: Pick<Config, 'dynamodbEndpoint'>): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    ...localOverrides(cfg.dynamodbEndpoint),
    requestHandler: requestHandlerFor(),
    // Adaptive retry spreads out retries when DynamoDB throttles instead of hammering it.
    retryMode: 'adaptive',
    maxAttempts: 4,
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: {
      removeUndefinedValues: true,
      // The marshaller takes a map whose "constructor" key is a string (metadata may have any key)
      // for a class instance and throws; Roster's items hold plain objects only, so maps are always right.
      convertClassInstanceToMap: true,
    },
  });
}

/**
 * The `@connections` client. The fan-out posts through `posterFor`
 * (functions/core/poster.ts), which signs with this client's region
 * and credentials but skips its per-request machinery.
 */
export function createManagementClient(endpoint: string, local = false): ApiGatewayManagementApiClient {
  return new ApiGatewayManagementApiClient({ ...(local ? localOverrides(endpoint) : { endpoint }), maxAttempts: 2 });
}

/** The Lambda client the fan-out hands its pages to the page function with (the local runtime's Invoke API with an override). */
export function createLambdaClient(cfg: Pick<Config, 'lambdaEndpoint'>): LambdaClient {
  // No retries of its own: a failed page fails the record, and the event source mapping retries it.
  // Every page of an event is invoked at once: the SDK's default of 50 sockets would queue them.
  const agent = { maxSockets: 512, keepAlive: true };
  return new LambdaClient({ ...localOverrides(cfg.lambdaEndpoint), maxAttempts: 1, requestHandler: requestHandlerFor({ httpsAgent: agent, httpAgent: agent }) });
}
