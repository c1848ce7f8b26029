import type { DynamoDBStreamEvent, DynamoDBBatchResponse } from 'aws-lambda';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaClient, createManagementClient } from '../core/aws.ts';
import { connectionsApiFor } from '../core/connections-api.ts';
import { SubscriberCache } from '../core/connections.ts';
import { defaultDeps } from '../core/deps.ts';
import { fanOut, type FanoutDeps, type Page, type PageResult } from '../core/fanout.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { perScope } from '../core/scope.ts';

/** Hands a page to the page function and waits for its result (RequestResponse), so order and retries stay here. */
function invokePages(lambda: LambdaClient, functionName: string): (page: Page) => Promise<PageResult> {
  return async (page) => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(page)) }));
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) throw new Error(`page function failed (${out.FunctionError}): ${text.slice(0, 200)}`);
    return JSON.parse(text) as PageResult;
  };
}

/** The fan-out's dependencies, built at first use: once per process on Lambda, once per runtime locally. */
export const fanoutDeps = perScope((scope): FanoutDeps => {
  const base = defaultDeps();
  const url = base.config.websocketCallbackUrl;
  if (!url) throw new Error('Configuration error: WEBSOCKET_CALLBACK_URL is not set');
  // With an endpoint override (local runtime, LocalStack) the management API gets the same local defaults.
  const management = createManagementClient(url, base.config.dynamodbEndpoint !== undefined);
  const connections = connectionsApiFor(management, url);
  const pages = base.config.fanoutPageFunction;
  const lambda = pages ? createLambdaClient(base.config) : undefined;
  scope.onDispose(() => {
    connections.close();
    management.destroy();
    lambda?.destroy();
  });
  return { ...base, connections, subscriberCache: new SubscriberCache(), ...(lambda && pages ? { dispatchPage: invokePages(lambda, pages) } : {}) };
});

/** Stream trigger (filtered to event records): posts each event to the cluster's subscribers. */
export const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  const result = await fanOut(fanoutDeps(), event.Records);
  logger.info('fan-out batch', {
    records: event.Records.length,
    delivered: result.delivered,
    gone: result.gone,
    failed: result.batchItemFailures.length,
  });
  metrics.flush();
  return { batchItemFailures: result.batchItemFailures };
};
