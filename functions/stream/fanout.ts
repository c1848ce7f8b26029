import type { Context, DynamoDBStreamEvent, DynamoDBBatchResponse } from 'aws-lambda';
import { createLambdaClient, createManagementClient } from '../core/aws.ts';
import { posterFor } from '../core/poster.ts';
import { SubscriberCache } from '../core/subscriber-cache.ts';
import { defaultDeps } from '../core/deps.ts';
import { fanOut, type FanoutDeps } from '../core/fanout.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { pageInvoker } from '../core/page-invoker.ts';
import { PostRate } from '../core/post-rate.ts';
import { perScope } from '../core/scope.ts';

/** The fan-out's dependencies, built at first use: once per process on Lambda, once per runtime locally. */
export const fanoutDeps = perScope((scope): FanoutDeps => {
  const base = defaultDeps();
  const url = base.config.websocketCallbackUrl;
  if (!url) throw new Error('Configuration error: WEBSOCKET_CALLBACK_URL is not set');
  // With an endpoint override (local runtime, LocalStack) the management API gets the same local defaults.
  const management = createManagementClient(url, base.config.dynamodbEndpoint !== undefined);
  const poster = posterFor(management, url);
  const pages = base.config.fanoutPageFunction;
  const lambda = pages ? createLambdaClient(base.config) : undefined;
  scope.onDispose(() => {
    poster.close();
    management.destroy();
    lambda?.destroy();
  });
  return {
    ...base,
    poster,
    subscriberCache: new SubscriberCache(),
    // One bucket per execution environment: the batches of its shard come one after another.
    postRate: new PostRate(base.config.fanoutPostsPerSecond),
    ...(lambda && pages ? { dispatchPage: pageInvoker(lambda, pages) } : {}),
  };
});

/** Stream trigger (filtered to event records): posts each event to the cluster's subscribers, within the invocation's time. */
export const handler = async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
  const deadline = context ? Date.now() + context.getRemainingTimeInMillis() : undefined;
  const result = await fanOut(fanoutDeps(), event.Records, { deadline });
  logger.info('fan-out batch', {
    records: event.Records.length,
    delivered: result.delivered,
    gone: result.gone,
    failed: result.batchItemFailures.length,
    owed: result.owed,
  });
  metrics.flush();
  return { batchItemFailures: result.batchItemFailures };
};
