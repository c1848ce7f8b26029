/**
 * The table's physical shape, defined once: the CDK stack and the local
 * runtime (which creates the table in DynamoDB Local) both build from this.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { EXPIRY_INDEX } from './model.ts';

export const TABLE_SHAPE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'ttl',
  streamViewType: 'NEW_AND_OLD_IMAGES',
  expiryIndex: {
    name: EXPIRY_INDEX,
    partitionKey: 'sweepPk',
    /** Number attribute: the announced deadline, epoch milliseconds (never changed by a keepalive). */
    sortKey: 'sweepAt',
    /**
     * Which cluster to read when a deadline comes. Only attributes a keepalive
     * never changes: a changed projected attribute would cost an index write
     * on every keepalive.
     */
    nonKeyAttributes: ['clusterId', 'nodeId'],
  },
} as const;

export function createTableInput(tableName: string): CreateTableCommandInput {
  const { partitionKey, sortKey, expiryIndex } = TABLE_SHAPE;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: partitionKey, AttributeType: 'S' },
      { AttributeName: sortKey, AttributeType: 'S' },
      { AttributeName: expiryIndex.partitionKey, AttributeType: 'S' },
      { AttributeName: expiryIndex.sortKey, AttributeType: 'N' },
    ],
    KeySchema: [
      { AttributeName: partitionKey, KeyType: 'HASH' },
      { AttributeName: sortKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: expiryIndex.name,
        KeySchema: [
          { AttributeName: expiryIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: expiryIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...expiryIndex.nonKeyAttributes] },
      },
    ],
    StreamSpecification: { StreamEnabled: true, StreamViewType: TABLE_SHAPE.streamViewType },
  };
}
