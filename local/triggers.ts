/**
 * The two triggers the stack wires without an API, run locally:
 * - the table's stream → the fan-out function (the Lambda event source
 *   mapping, with the same filter criteria and retries), by the stream poller;
 * - the schedule → the sweeper function (the EventBridge rule), on a timer
 *   whose every tick is one sweep.
 */
import type { DynamoDBBatchResponse } from 'aws-lambda';
import { localRegion } from '../functions/core/aws.ts';
import { FANOUT_FILTER_PATTERNS } from '../functions/core/stream-filter.ts';
import type { FailureDestination } from './failure-destination.ts';
import { invokeHandler, type LambdaHandler } from './handlers.ts';
import { gatewayId } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import type { Store } from './store.ts';
import { StreamPoller, sdkStreamsApi } from './stream-poller.ts';
import { startTicker } from './timer.ts';

/** The functions' timeouts on the stack. */
const FANOUT_TIMEOUT_MS = 60_000;
const SWEEPER_TIMEOUT_MS = 60_000;

export interface TriggerOptions {
  tableName: string;
  store: Store;
  fanout: LambdaHandler;
  sweeper: LambdaHandler;
  pollIntervalMs: number;
  streamRetryAttempts: number;
  sweepIntervalSeconds: number;
  failures: FailureDestination;
  log: RuntimeLog;
  /** Robustness runs only (local/faults.ts): resolves when the part may run; a stall holds it. */
  gate?: (part: 'sweeper' | 'poller') => Promise<void>;
}

export interface Triggers {
  stop(): Promise<void>;
}

/** An EventBridge scheduled event, as the sweeper receives it on AWS. */
const scheduledEvent = () => ({
  version: '0',
  id: gatewayId(),
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: new Date().toISOString(),
  region: localRegion(),
  resources: [],
  detail: {},
});

/** Starts both; resolves once every record written from now on will reach the fan-out. */
export async function startTriggers(options: TriggerOptions): Promise<Triggers> {
  const { fanout, sweeper, log } = options;
  const poller = new StreamPoller({
    tableName: options.tableName,
    api: sdkStreamsApi(options.store.dynamodb, options.store.streams),
    handler: async (event) => {
      await options.gate?.('poller');
      return (await invokeHandler(fanout, event, 'fanout', FANOUT_TIMEOUT_MS)) as DynamoDBBatchResponse;
    },
    filterPatterns: FANOUT_FILTER_PATTERNS,
    pollIntervalMs: options.pollIntervalMs,
    maxRetryAttempts: options.streamRetryAttempts,
    onFailure: (failure) => options.failures.write(failure),
    log,
  });
  await poller.start();
  // The handler logs the sweeps that changed something.
  const sweep = async () => {
    await options.gate?.('sweeper');
    return invokeHandler(sweeper, scheduledEvent(), 'sweeper', SWEEPER_TIMEOUT_MS);
  };
  const schedule = startTicker('sweeper', options.sweepIntervalSeconds * 1000, sweep, log);
  return {
    stop: async () => {
      await Promise.all([poller.stop(), schedule.stop()]);
    },
  };
}
