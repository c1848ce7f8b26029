/**
 * Every AWS limit the capacity planner (bench/planner.ts) holds a Roster
 * deployment against, in one place, each with the AWS documentation page
 * that states it and, where only a quota increase lifts it, the quota's
 * name and code in Service Quotas. Defaults of a commercial region such as
 * us-east-1; some regions have lower ones (the API Gateway page lists them).
 * Checked on 2026-12-01: re-check before quoting a figure.
 */

export interface AwsLimit {
  value: number;
  unit: string;
  /** The AWS documentation page that states the figure. */
  source: string;
  /** The Service Quotas entry that raises it, when a quota increase can; absent for limits nothing lifts. */
  quota?: { service: string; name: string; code: string };
  note?: string;
}

const APIGW_QUOTAS = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html';
const WS_QUOTAS = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html';
const HTTP_QUOTAS = 'https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html';
const LAMBDA_QUOTAS = 'https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html';
const DDB_QUOTAS = 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html';
const DDB_WARM = 'https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html';

export const AWS_LIMITS = {
  /** Shared by every REST, HTTP and WebSocket API of the account in the region and by `@connections` calls. */
  apiGatewayAccountRate: {
    value: 10_000,
    unit: 'requests/s',
    source: APIGW_QUOTAS,
    quota: { service: 'Amazon API Gateway', name: 'Throttle rate', code: 'L-8A5B8E43' },
    note: 'across HTTP APIs, REST APIs, WebSocket APIs and WebSocket callback APIs (@connections), per account and region; 2,500 in some newer regions',
  },
  apiGatewayAccountBurst: {
    value: 5_000,
    unit: 'requests',
    source: APIGW_QUOTAS,
    note: "the token bucket's size; AWS sets it from the rate quota, it cannot be asked for on its own",
  },
  webSocketNewConnections: {
    value: 500,
    unit: 'connections/s',
    source: WS_QUOTAS,
    quota: { service: 'Amazon API Gateway', name: 'WebSocket new connections rate', code: 'L-9ED1E49A' },
    note: 'across all WebSocket APIs of the account in the region',
  },
  webSocketFrameBytes: { value: 32 * 1024, unit: 'bytes', source: WS_QUOTAS, note: 'a larger frame closes the connection (1009); cannot be increased' },
  httpPayloadBytes: { value: 10 * 1024 * 1024, unit: 'bytes', source: HTTP_QUOTAS, note: 'HTTP API payload size; cannot be increased' },
  lambdaConcurrency: {
    value: 1_000,
    unit: 'concurrent executions',
    source: LAMBDA_QUOTAS,
    quota: { service: 'AWS Lambda', name: 'Concurrent executions', code: 'L-B99A9384' },
    note: 'per account and region, shared by every function',
  },
  /**
   * "New AWS accounts have reduced concurrency and memory quotas" (the Lambda
   * quotas page); the page gives no figure. 10 is what new accounts have been
   * seen to get, and what infra/sweeper.ts plans for.
   */
  lambdaConcurrencyNewAccount: {
    value: 10,
    unit: 'concurrent executions',
    source: LAMBDA_QUOTAS,
    quota: { service: 'AWS Lambda', name: 'Concurrent executions', code: 'L-B99A9384' },
    note: 'a new account: reduced, raised by AWS with use; no figure is published',
  },
  /** "Lambda enforces a request per second limit equal to 10 times your account concurrency" (across all functions). */
  lambdaRequestsPerConcurrency: {
    value: 10,
    unit: 'requests/s per unit of concurrency',
    source: 'https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html#concurrency-vs-requests-per-second',
    quota: { service: 'AWS Lambda', name: 'Concurrent executions', code: 'L-B99A9384' },
    note: 'raised with the concurrency quota',
  },
  lambdaResponseBytes: { value: 6 * 1024 * 1024, unit: 'bytes', source: LAMBDA_QUOTAS, note: 'synchronous invocation response payload; cannot be increased' },
  /** Per partition (and so per partition key, and per item, which never splits). */
  dynamodbPartitionWrites: { value: 1_000, unit: 'write units/s', source: DDB_WARM, note: 'per partition; split for heat may spread a key\'s items over partitions, never one item' },
  dynamodbPartitionReads: { value: 3_000, unit: 'read units/s', source: DDB_WARM, note: 'per partition' },
  dynamodbTableWrites: {
    value: 40_000,
    unit: 'write request units/s',
    source: DDB_QUOTAS,
    quota: { service: 'Amazon DynamoDB', name: 'Table-level write throughput limit', code: 'L-AB614373' },
    note: 'on-demand, per table with its indexes',
  },
  dynamodbTableReads: {
    value: 40_000,
    unit: 'read request units/s',
    source: DDB_QUOTAS,
    quota: { service: 'Amazon DynamoDB', name: 'Table-level read throughput limit', code: 'L-CF0CBE56' },
    note: 'on-demand, per table with its indexes',
  },
  /** A new on-demand table serves this at once; above it, DynamoDB adjusts (a table can be pre-warmed with `WarmThroughput`). */
  dynamodbNewTableWarmWrites: { value: 4_000, unit: 'write units/s', source: DDB_WARM, note: 'warm throughput of a new on-demand table; it rises with the peak the table has served' },
  dynamodbNewTableWarmReads: { value: 12_000, unit: 'read units/s', source: DDB_WARM, note: 'warm throughput of a new on-demand table' },
  /** Lambda reads each shard of a DynamoDB stream with one batch at a time per `ParallelizationFactor`. */
  streamBatchesPerShard: { value: 1, unit: 'concurrent batches per shard and ParallelizationFactor', source: 'https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html' },
  /** Lambda polls each shard of a DynamoDB stream four times a second while it has nothing to hand over. */
  streamIdlePollMs: { value: 250, unit: 'ms between polls of an idle shard', source: 'https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html' },
} as const satisfies Record<string, AwsLimit>;

export type AwsLimitName = keyof typeof AWS_LIMITS;
