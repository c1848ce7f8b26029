/**
 * A bare DynamoDB JSON-protocol client for one operation, UpdateItem, so the
 * throughput scenario can measure the store's own limit: DynamoDB Local
 * reads the access key from the Authorization header but does not check the
 * signature, so no signing, retries or middleware stand between the bench
 * and the engine. Only for the DynamoDB Local the bench started.
 */
import { Agent, request } from 'node:http';
import type { UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';

export interface BareUpdateItem {
  /** Sends one UpdateItem; resolves true when DynamoDB Local answered 200. */
  send(input: UpdateCommandInput): Promise<boolean>;
  close(): void;
}

export function bareUpdateItem(endpoint: string, maxSockets: number): BareUpdateItem {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const headers = {
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': 'DynamoDB_20120810.UpdateItem',
    authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0',
  };
  return {
    send(input) {
      const body = JSON.stringify({
        ...input,
        Key: marshall(input.Key ?? {}),
        ExpressionAttributeValues: marshall(input.ExpressionAttributeValues ?? {}, { removeUndefinedValues: true }),
      });
      return new Promise((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: Number(url.port),
            method: 'POST',
            path: '/',
            agent,
            headers: { ...headers, 'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''), 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            res.resume();
            res.once('end', () => resolve(res.statusCode === 200));
            res.once('error', reject);
          },
        );
        req.once('error', reject);
        req.end(body);
      });
    },
    close: () => agent.destroy(),
  };
}
