/**
 * Every unit price the cost model (bench/cost.ts) uses, in one place, each
 * with where it comes from and when it was checked. US East (N. Virginia),
 * on-demand, first pricing tier, no free tier. Prices change: re-check the
 * sources before quoting a figure, and update `checked` when you do.
 *
 * `how` says how the figure was confirmed on the date: `aws page` = read on
 * the AWS pricing page or AWS documentation itself; `secondary` = the AWS
 * page could not be read from here, the figure was confirmed in current
 * third-party summaries of that page (the source URL is still AWS's page).
 */

export interface Price {
  /** US dollars per `unit` (in the first tier, when there are tiers). */
  usd: number;
  /** Volume tiers: from `above` units a month on, the price is `usd` per unit. */
  tiers?: readonly { above: number; usd: number }[];
  unit: string;
  source: string;
  checked: string;
  how: 'aws page' | 'secondary';
  note?: string;
}

const CHECKED = '2026-11-25';

export const PRICES = {
  httpApiRequest: {
    usd: 1.0 / 1e6,
    tiers: [
      { above: 300e6, usd: 0.9 / 1e6 },
      { above: 1e9, usd: 0.8 / 1e6 },
    ],
    unit: 'HTTP API request ($1.00 per million for the first 300 million a month, $0.90 for the next 700 million, $0.80 beyond)',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  websocketMessage: {
    usd: 1.0 / 1e6,
    tiers: [{ above: 1e9, usd: 0.8 / 1e6 }],
    unit: 'WebSocket message sent or received, metered in 32 KB units ($1.00 per million for the first billion a month, $0.80 beyond)',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
    checked: CHECKED,
    how: 'aws page',
    note: 'the 32 KB metering and "sent and received" are from the page; the rate from secondary summaries',
  },
  websocketConnectionMinute: {
    usd: 0.25 / 1e6,
    unit: 'WebSocket connection minute',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  lambdaRequest: {
    usd: 0.2 / 1e6,
    unit: 'Lambda invocation',
    source: 'https://aws.amazon.com/lambda/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  lambdaArmGbSecond: {
    usd: 0.0000133334,
    unit: 'Lambda GB-second, Arm (first 7.5 billion GB-s a month)',
    source: 'https://aws.amazon.com/lambda/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  dynamodbWriteUnit: {
    usd: 0.625 / 1e6,
    unit: 'DynamoDB on-demand write request unit (1 KB), Standard table class',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    checked: CHECKED,
    how: 'secondary',
    note: 'rate in force since the 1 November 2024 on-demand price reduction',
  },
  dynamodbReadUnit: {
    usd: 0.125 / 1e6,
    unit: 'DynamoDB on-demand read request unit (4 KB strongly consistent, or two eventually consistent)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    checked: CHECKED,
    how: 'secondary',
    note: 'rate in force since the 1 November 2024 on-demand price reduction',
  },
  dynamodbStreamReadForLambda: {
    usd: 0,
    unit: 'DynamoDB Streams read request made by a Lambda trigger',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    checked: CHECKED,
    how: 'secondary',
    note: 'GetRecords calls made by Lambda event source mappings are not charged',
  },
  dynamodbStorageGbMonth: {
    usd: 0.25,
    unit: 'DynamoDB storage, GB-month (first 25 GB are free)',
    source: 'https://aws.amazon.com/dynamodb/pricing/on-demand/',
    checked: CHECKED,
    how: 'secondary',
  },
  cloudMapInstanceMonth: {
    usd: 0.1,
    unit: 'Cloud Map registered resource (instance), per month',
    source: 'https://aws.amazon.com/cloud-map/pricing/',
    checked: CHECKED,
    how: 'secondary',
    note: 'also in AWS\'s price list file (usage type Cloud-Map-Resources, $0.10 per Resource-Month)',
  },
  cloudMapDiscoveryCall: {
    usd: 1.0 / 1e6,
    unit: 'Cloud Map discovery API call (DiscoverInstances, DiscoverInstancesRevision)',
    source: 'https://aws.amazon.com/cloud-map/pricing/',
    checked: CHECKED,
    how: 'secondary',
    note: 'AWS price list usage type Cloud-Map-DIR-API-Calls, $0.000001 per call',
  },
  route53HealthCheckMonth: {
    usd: 0.5,
    unit: 'Route 53 basic health check of an AWS endpoint, per month',
    source: 'https://aws.amazon.com/route53/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  route53FastIntervalMonth: {
    usd: 1.0,
    unit: 'Route 53 health check option "fast interval" (10 s), AWS endpoint, per month',
    source: 'https://aws.amazon.com/route53/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
  cloudwatchLogsIngestGb: {
    usd: 0.5,
    unit: 'CloudWatch Logs data ingested, Standard log class, per GB (first tier)',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    checked: '2026-12-07',
    how: 'secondary',
    note: 'lower prices for large monthly volumes (terabytes) are not modelled',
  },
  cloudwatchLogsStorageGbMonth: {
    usd: 0.03,
    unit: 'CloudWatch Logs archived (stored) data, per GB-month',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    checked: '2026-12-07',
    how: 'secondary',
    note: 'AWS meters stored logs after its own compression, at a ratio it does not publish; the model counts the ingested bytes, an upper bound',
  },
  ec2T4gSmallHour: {
    usd: 0.0168,
    unit: 'EC2 t4g.small (2 vCPU, 2 GiB, Arm), Linux, on-demand hour',
    source: 'https://aws.amazon.com/ec2/pricing/on-demand/',
    checked: CHECKED,
    how: 'secondary',
  },
  ebsGp3GbMonth: {
    usd: 0.08,
    unit: 'EBS gp3 storage, GB-month (3,000 IOPS and 125 MB/s included)',
    source: 'https://aws.amazon.com/ebs/pricing/',
    checked: CHECKED,
    how: 'secondary',
  },
} as const satisfies Record<string, Price>;

export type PriceName = keyof typeof PRICES;

/** Hours in the month every monthly figure assumes (AWS's own convention). */
export const HOURS_PER_MONTH = 730;
export const SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600;

/** What `quantity` units cost in a month at `price`, tier by tier. */
export function tieredUsd(price: Price, quantity: number): number {
  const steps = [{ above: 0, usd: price.usd }, ...(price.tiers ?? [])];
  let usd = 0;
  for (const [i, step] of steps.entries()) {
    const upTo = steps[i + 1]?.above ?? Infinity;
    if (quantity <= step.above) break;
    usd += (Math.min(quantity, upTo) - step.above) * step.usd;
  }
  return usd;
}
