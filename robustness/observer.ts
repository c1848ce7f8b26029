/**
 * The harness's view of what the information center itself decided: it
 * reads the table's DynamoDB stream (from the moment the run starts, with
 * the local stream poller) and records every event-producing write — every
 * NODE_REGISTERED, NODE_UPDATED and NODE_DOWN the fan-out was given —
 * whether or not a subscriber was connected to hear it. A NODE_DOWN written
 * while every client was reconnecting is still a NODE_DOWN. It also records
 * the sweeper's amnesty leases (EXTENDED: a new revision and no event), so a
 * detection that took an amnesty lease longer can say why.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { localOverrides } from '../functions/core/aws.ts';
import { toEvent, toNode, type NodeItem } from '../functions/core/model.ts';
import { silentLog } from '../local/log.ts';
import { StreamPoller, sdkStreamsApi } from '../local/stream-poller.ts';
import type { History } from './history.ts';
import { snap } from './recording.ts';

export interface StreamObserver {
  stop(): Promise<void>;
}

export async function observeStream(history: History, endpoint: string, tableName: string): Promise<StreamObserver> {
  const overrides = { ...localOverrides(endpoint), region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 2 };
  const dynamodb = new DynamoDBClient(overrides);
  const streams = new DynamoDBStreamsClient(overrides);
  const poller = new StreamPoller({
    tableName,
    api: sdkStreamsApi(dynamodb, streams),
    log: silentLog,
    handler: (event) => {
      for (const record of event.Records) {
        const image = record.dynamodb?.NewImage;
        if (!image) continue;
        const item = unmarshall(image as Record<string, AttributeValue>) as NodeItem;
        if (typeof item.sk !== 'string' || !item.sk.startsWith('N#')) continue;
        const ev = toEvent(item);
        if (ev) {
          history.add({ k: 'srv', t: Date.now(), at: Date.parse(ev.at), type: ev.type, n: snap(ev.node), ...(ev.reason ? { reason: ev.reason } : {}) });
          continue;
        }
        // A new revision without an event is the sweeper's amnesty: one more lease for an expired node.
        const old = record.dynamodb?.OldImage ? (unmarshall(record.dynamodb.OldImage as Record<string, AttributeValue>) as NodeItem) : undefined;
        if (old && item.revision > old.revision) {
          history.add({ k: 'srv', t: Date.now(), at: Date.now(), type: 'EXTENDED', n: snap(toNode(item, item.expiresAt - 1)) });
        }
      }
      return Promise.resolve();
    },
  });
  await poller.start();
  return {
    async stop() {
      await poller.stop();
      dynamodb.destroy();
      streams.destroy();
    },
  };
}
