/**
 * The one DynamoDB table, from the one definition of its shape
 * (`functions/core/table.ts`; the handler tests create their tables from it, the local runtime from the synthesized template).
 */
import type { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, StreamViewType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { TABLE_SHAPE } from '../functions/core/table.ts';

export interface RosterTableProps {
  /** What `cdk destroy` does with the table (and its data). */
  readonly removalPolicy: RemovalPolicy;
  /**
   * A customer-managed KMS key (`-c kmsKeyArn=`). Handlers that use the table
   * are granted the key with their table grant (`RosterFunction.useTable`).
   * @default the AWS managed key `aws/dynamodb` (encrypted with a KMS key, as Control Tower's CT.DYNAMODB.PR.2 asks, at no key charge)
   */
  readonly encryptionKey?: IKey;
  /**
   * Write units a second the table serves from the start (`WarmThroughput`,
   * pre-warming: a one-time charge, https://aws.amazon.com/dynamodb/pricing/on-demand/).
   * DynamoDB never lowers it again.
   * @default a new on-demand table's own (4,000)
   */
  readonly warmWriteUnitsPerSecond?: number;
}

/** On-demand, TTL as garbage collection, a NEW_AND_OLD_IMAGES stream for the fan-out, the sparse expiry index, point-in-time recovery. */
export class RosterTable extends Table {
  constructor(scope: Construct, id: string, props: RosterTableProps) {
    const { partitionKey, sortKey, ttlAttribute, expiryIndex, streamViewType } = TABLE_SHAPE;
    super(scope, id, {
      partitionKey: { name: partitionKey, type: AttributeType.STRING },
      sortKey: { name: sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: ttlAttribute,
      stream: StreamViewType[streamViewType],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: props.encryptionKey ? TableEncryption.CUSTOMER_MANAGED : TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
      ...(props.warmWriteUnitsPerSecond === undefined ? {} : { warmThroughput: { writeUnitsPerSecond: props.warmWriteUnitsPerSecond } }),
    });
    this.addGlobalSecondaryIndex({
      indexName: expiryIndex.name,
      partitionKey: { name: expiryIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: expiryIndex.sortKey, type: AttributeType.NUMBER },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...expiryIndex.nonKeyAttributes],
    });
  }
}
