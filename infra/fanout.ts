/**
 * The stream fan-out: the table's stream, filtered so that keepalives never
 * invoke it, drives one function that posts each membership event to the
 * cluster's WebSocket subscribers. A cluster with more subscribers than one
 * page (500) has its pages handed to the page function, one invocation per
 * page, all in parallel (RequestResponse: the fan-out waits for them, so
 * order and retries stay with the stream). What it cannot deliver after its
 * retries is described in an SQS on-failure queue; clients recover from the
 * gap by resynchronising.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type { WebSocketStage } from 'aws-cdk-lib/aws-apigatewayv2';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { FilterCriteria, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FANOUT_MEMORY_MB } from '../functions/core/fanout-sizing.ts';
import { FANOUT_FILTER_PATTERNS } from '../functions/core/stream-filter.ts';
import { acknowledgeControl, CONTROLS } from './control-tower.ts';
import { RosterFunction, type FunctionDefaults } from './function.ts';
import { FANOUT_TABLE_ACCESS } from './table-access.ts';

export { FANOUT_MEMORY_MB };

export interface RosterFanoutProps {
  readonly functions: FunctionDefaults;
  /** The table whose stream drives the fan-out (it must have one). */
  readonly table: ITable;
  /** The stage whose `@connections` endpoint the events are posted to. */
  readonly stage: WebSocketStage;
}

export class RosterFanout extends Construct {
  readonly function: RosterFunction;
  /** Delivers one page of a large cluster's subscribers (invoked by `function`). */
  readonly pages: RosterFunction;
  /** Where records that still fail after every retry are described. */
  readonly failures: Queue;

  constructor(scope: Construct, id: string, props: RosterFanoutProps) {
    super(scope, id);
    this.failures = new Queue(this, 'Failures', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS allows: time to inspect what could not be delivered.
      retentionPeriod: Duration.days(14),
    });
    // Both post to subscribers and, on a 410, clean up as `$disconnect` does: the same memory, table access and grant.
    const poster = (id: string, entry: string, description: string, timeout: Duration): RosterFunction => {
      // CPU-bound in posting (a SigV4-signed request per subscriber); Lambda's CPU grows with memory.
      const fn = new RosterFunction(this, id, { ...props.functions, entry, description, timeout, memorySize: FANOUT_MEMORY_MB });
      fn.useTable(props.table, FANOUT_TABLE_ACCESS);
      fn.useConnections(props.stage);
      return fn;
    };
    // A batch posts its events to up to one page of subscribers itself and waits for the page function for more.
    this.function = poster('Function', 'functions/stream/fanout.ts', 'Roster stream fan-out: membership events to WebSocket subscribers', Duration.seconds(60));
    this.pages = poster('PageFunction', 'functions/stream/fanout-page.ts', "Roster fan-out page: one page of a large cluster's subscribers, in parallel with the others", Duration.seconds(30));
    this.function.usePageFunction(this.pages);
    this.function.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: StartingPosition.LATEST,
        // The very patterns the local stream poller applies: keepalives never invoke the fan-out.
        filters: FANOUT_FILTER_PATTERNS.map((pattern) => FilterCriteria.filter(pattern)),
        batchSize: 100,
        // Latency is the point of the fan-out: never wait to fill a batch.
        maxBatchingWindow: Duration.seconds(0),
        // One batch per shard at a time keeps each cluster's events in stream (revision) order.
        parallelizationFactor: 1,
        reportBatchItemFailures: true,
        bisectBatchOnError: true,
        retryAttempts: 5,
        // An older record has been superseded by every client's periodic refresh (and its revision
        // gap check); retrying it longer would only hold the newer records of its shard back.
        maxRecordAge: Duration.minutes(15),
        onFailure: new SqsDlq(this.failures),
      }),
    );
    this.acknowledgeFindings();
  }

  private acknowledgeFindings(): void {
    Validations.of(this.function.executionRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "dynamodb:ListStreams (added by the stream event source) lists the account's streams and takes no stream ARN, so " +
        "it cannot be scoped to one resource; the stream read actions (DescribeStream, GetRecords, GetShardIterator) are " +
        "scoped to this table's stream ARN.",
    });
    const dlq =
      'This queue is itself the dead-letter destination: the on-failure destination of the stream event source mapping. ' +
      'Nothing consumes it, so nothing can fail to process its messages; a queue behind it would have nothing to catch.';
    Validations.of(this.failures).acknowledge({ id: 'AwsSolutions-SQS3', reason: dlq });
    acknowledgeControl(this.failures, CONTROLS.sqsDeadLetterQueue, dlq);
  }
}
