import type { DynamoDBStreamEvent, DynamoDBBatchResponse } from 'aws-lambda';
import { createManagementClient } from '../core/aws.ts';
import { defaultDeps } from '../core/deps.ts';
import { fanOut, type FanoutDeps } from '../core/fanout.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { perScope } from '../core/scope.ts';

const fanoutDeps = perScope((scope): FanoutDeps => {
  const base = defaultDeps();
  const url = base.config.websocketCallbackUrl;
  if (!url) throw new Error('Configuration error: WEBSOCKET_CALLBACK_URL is not set');
  // With an endpoint override (local runtime, LocalStack) the management API gets the same local defaults.
  const management = createManagementClient(url, base.config.dynamodbEndpoint !== undefined);
  scope.onDispose(() => management.destroy());
  return { ...base, management };
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
