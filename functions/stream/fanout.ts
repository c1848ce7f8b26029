import type { DynamoDBStreamEvent, DynamoDBBatchResponse } from 'aws-lambda';
import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { createLambdaClient, createManagementClient } from '../core/aws.ts';
import { connectionsApiFrom } from '../core/connections-api.ts';
import { defaultDeps } from '../core/deps.ts';
import { fanOut, type FanoutDeps, type Page, type PageResult } from '../core/fanout.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';

let deps: Promise<FanoutDeps> | undefined;

/** Hands a page to the page function and waits for its result (RequestResponse), so order and retries stay here. */
function invokePages(lambda: LambdaClient, functionName: string): (page: Page) => Promise<PageResult> {
  return async (page) => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(page)) }));
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) throw new Error(`page function failed (${out.FunctionError}): ${text.slice(0, 200)}`);
    return JSON.parse(text) as PageResult;
  };
}

/** The fan-out's dependencies, built once per container (cold start). */
export function fanoutDeps(): Promise<FanoutDeps> {
  deps ??= (async () => {
    const base = defaultDeps();
    const url = base.config.websocketCallbackUrl;
    if (!url) throw new Error('Configuration error: WEBSOCKET_CALLBACK_URL is not set');
    // With an endpoint override (local runtime, LocalStack) the management API gets the same local defaults.
    const connections = await connectionsApiFrom(createManagementClient(url, base.config.dynamodbEndpoint !== undefined));
    const pages = base.config.fanoutPageFunction;
    return { ...base, connections, ...(pages ? { dispatchPage: invokePages(createLambdaClient(base.config), pages) } : {}) };
  })();
  // A failed start is not cached: the next invocation tries again.
  deps.catch(() => (deps = undefined));
  return deps;
}

/** Stream trigger (filtered to event records): posts each event to the cluster's subscribers. */
export const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => {
  const result = await fanOut(await fanoutDeps(), event.Records);
  logger.info('fan-out batch', {
    records: event.Records.length,
    delivered: result.delivered,
    gone: result.gone,
    failed: result.batchItemFailures.length,
  });
  metrics.flush();
  return { batchItemFailures: result.batchItemFailures };
};
