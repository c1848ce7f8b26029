/**
 * The two triggers the stack wires without an API, run locally as the
 * template defines them:
 * - the table's stream → its function (`AWS::Lambda::EventSourceMapping`:
 *   batch size, retries, filter criteria, … from the template), by the
 *   stream poller;
 * - the schedule → the sweeper (`AWS::Events::Rule`), on a timer whose every
 *   tick is one sweep, at the sweeper's own `SWEEP_INTERVAL_SECONDS`: on AWS
 *   the rule starts an invocation a minute that loops inside; locally each
 *   tick is one invocation, so detection is timed as on AWS.
 *
 * Before the mapping starts, the function's role is checked as Lambda checks
 * it when the mapping is created: it must be able to read the stream and
 * send to the on-failure destination, or the mapping is refused with
 * Lambda's message (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html,
 * "Execution role permissions").
 */
import type { DynamoDBBatchResponse } from 'aws-lambda';
import type { FailureDestination } from './failure-destination.ts';
import { invokeHandler, type LambdaHandler } from './handlers.ts';
import type { IamGate, Principal } from './iam/gate.ts';
import { gatewayId } from './ids.ts';
import type { RuntimeLog } from './log.ts';
import { RuntimeStartError } from './errors.ts';
import type { Store } from './store.ts';
import { StreamPoller, sdkStreamsApi } from './stream-poller.ts';
import type { FunctionSpec, StreamMappingSpec } from './template/deployment.ts';
import { startTicker } from './timer.ts';

export interface TriggerOptions {
  tableName: string;
  store: Store;
  mapping: StreamMappingSpec;
  fanout: { spec: FunctionSpec; handler: LambdaHandler; principal: Principal };
  sweeper: { spec: FunctionSpec; handler: LambdaHandler };
  region: string;
  pollIntervalMs: number;
  failures: FailureDestination;
  gate: IamGate | undefined;
  log: RuntimeLog;
  /** Robustness runs only (local/faults.ts): resolves when the part may run; a stall holds it. */
  pause?: (part: 'sweeper' | 'poller') => Promise<void>;
}

export interface Triggers {
  stop(): Promise<void>;
}

/** An EventBridge scheduled event, as the sweeper receives it on AWS. */
const scheduledEvent = (region: string) => ({
  version: '0',
  id: gatewayId(),
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: new Date().toISOString(),
  region,
  resources: [],
  detail: {},
});

/** What Lambda checks of the function's role when the mapping is created. */
async function checkMappingAccess(gate: IamGate, principal: Principal, mapping: StreamMappingSpec): Promise<void> {
  // ListStreams takes no resource: IAM evaluates it on "*".
  const streamActions: [string, string][] = [
    ['dynamodb:DescribeStream', mapping.eventSourceArn],
    ['dynamodb:GetRecords', mapping.eventSourceArn],
    ['dynamodb:GetShardIterator', mapping.eventSourceArn],
    ['dynamodb:ListStreams', '*'],
  ];
  for (const [action, resource] of streamActions) {
    if (!(await gate.check(principal, action, resource)).allowed) {
      throw new RuntimeStartError(
        `the event source mapping of ${principal.functionName} was refused: Cannot access stream ${mapping.eventSourceArn}. ` +
          'Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.',
      );
    }
  }
  if (mapping.onFailureArn?.includes(':sqs:') && !(await gate.check(principal, 'sqs:SendMessage', mapping.onFailureArn)).allowed) {
    throw new RuntimeStartError(
      `the event source mapping of ${principal.functionName} was refused: The provided execution role does not have permissions to call SendMessage on SQS (${mapping.onFailureArn})`,
    );
  }
}

/** The sweeper's schedule: its `SWEEP_INTERVAL_SECONDS` (the template's setting), one sweep per tick. */
const sweepIntervalMs = (sweeper: FunctionSpec): number => Number(sweeper.environment.SWEEP_INTERVAL_SECONDS ?? '1') * 1000;

/** Starts both; resolves once every record written from now on will reach the fan-out. */
export async function startTriggers(options: TriggerOptions): Promise<Triggers> {
  const { fanout, sweeper, mapping, log } = options;
  if (options.gate) await checkMappingAccess(options.gate, fanout.principal, mapping);
  const poller = new StreamPoller({
    tableName: options.tableName,
    api: sdkStreamsApi(options.store.dynamodb, options.store.streams),
    handler: async (event) => {
      await options.pause?.('poller');
      return (await invokeHandler(fanout.handler, event, fanout.spec.name, fanout.spec.timeoutMs)) as DynamoDBBatchResponse;
    },
    functionArn: fanout.spec.arn,
    filterPatterns: mapping.filters,
    batchSize: mapping.batchSize,
    batchingWindowMs: mapping.batchingWindowMs,
    maxRetryAttempts: mapping.maxRetryAttempts,
    bisectOnError: mapping.bisectOnError,
    maxRecordAgeSeconds: mapping.maxRecordAgeSeconds,
    reportBatchItemFailures: mapping.reportBatchItemFailures,
    startingPosition: mapping.startingPosition === 'TRIM_HORIZON' ? 'TRIM_HORIZON' : 'LATEST',
    pollIntervalMs: options.pollIntervalMs,
    onFailure: (failure) => options.failures.write(failure),
    log,
  });
  await poller.start();
  // The handler logs the sweeps that changed something.
  const sweep = async () => {
    await options.pause?.('sweeper');
    return invokeHandler(sweeper.handler, scheduledEvent(options.region), sweeper.spec.name, sweeper.spec.timeoutMs);
  };
  const schedule = startTicker('sweeper', sweepIntervalMs(sweeper.spec), sweep, log);
  return {
    stop: async () => {
      await Promise.all([poller.stop(), schedule.stop()]);
    },
  };
}
