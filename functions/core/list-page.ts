/**
 * The pages of a cluster's list (`GET /v1/clusters/{clusterId}/nodes`).
 *
 * Why pages. A list answer passes through two limits: Lambda's response
 * payload of 6 MB for a synchronous invocation, in which the HTTP body is a
 * JSON string with its quotes escaped
 * (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html),
 * and the HTTP API's payload of 10 MB
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html).
 * 10,000 nodes with 1 KiB of metadata each are about 14 MB of JSON. So a page
 * holds at most `limit` nodes and ends before its nodes would take more than
 * `PAGE_MAX_BYTES` in the Lambda response (each node measured as it is
 * written there, escapes included): half of Lambda's limit. A gzip-compressed
 * page (http-handler.ts) travels as base64, at most 4/3 of the compressed bytes,
 * which are no more than the JSON's (gzip adds at most a few bytes per
 * 16 KiB stored block): under 4.2 MB either way.
 *
 * The cursor. A walk's first page reads the cluster revision R before its
 * nodes; the cursor of each following page carries R and the last node id
 * sent, and the next page is the nodes after that id (the sort key orders
 * them by node id). Every page of the walk says `revision` R. The pages
 * together then hold every node as it was at R or later — each page was read
 * after R — which is exactly what a single read promises (and what the
 * revision rules of a client rely on: contract/revisioned-map.ts, rule 3): a
 * change after R shows in a node's own revision, or comes as an event the
 * client re-applies. A node registered after R with an id before the cursor
 * is not in the walk, and its NODE_REGISTERED (after R) is what brings it.
 * Only a cluster whose counter went below R (the server lost its state: an
 * in-memory local runtime restarted) cannot continue a walk: 410
 * `CURSOR_EXPIRED`, and the client starts again from the first page.
 */
import { isValidId } from '@roster/contract';
import type { Deps } from './deps.ts';
import { ValidationError } from './errors.ts';
import { queryPages } from './query.ts';
import { NODE_SK_PREFIX, clusterPk, nodeItemKey, toNode, type Node, type NodeItem } from './model.ts';

/** The most a page's nodes may take in Lambda's response (as JSON written inside a JSON string): half of its 6 MB. */
export const PAGE_MAX_BYTES = 3 * 1024 * 1024;

/** Where a walk stands: the list of `clusterId` (`all`: with DOWN nodes) at `revision`, continued after node `after`. */
export interface Cursor {
  clusterId: string;
  revision: number;
  all: boolean;
  after: string;
}

const CURSOR_VERSION = 1;

/** A cursor as the client gets it: base64url of a small JSON array. Opaque to clients; not a secret (it names nothing they cannot read). */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, cursor.clusterId, cursor.revision, cursor.all ? 'all' : 'up', cursor.after])).toString('base64url');
}

/** The cursor in `text`, for the list of `clusterId` (`all` as asked); a cursor made for anything else is a 400. */
export function decodeCursor(text: string, clusterId: string, all: boolean): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 5 || parsed[0] !== CURSOR_VERSION) {
    throw new ValidationError('invalid query parameters: cursor: not a cursor this server made (pass the `next` of a list page as it is)');
  }
  const [, cluster, revision, variant, after] = parsed as unknown[];
  if (!isValidId(cluster) || !Number.isSafeInteger(revision) || (revision as number) < 0 || (variant !== 'all' && variant !== 'up') || !isValidId(after)) {
    throw new ValidationError('invalid query parameters: cursor: not a cursor this server made (pass the `next` of a list page as it is)');
  }
  if (cluster !== clusterId || (variant === 'all') !== all) {
    const asked = `${clusterId} with status=${all ? 'all' : 'up'}`;
    throw new ValidationError(`invalid query parameters: cursor: it continues the list of ${String(cluster)} with status=${String(variant)}, not of ${asked}`);
  }
  return { clusterId, revision: revision as number, all, after: after as string };
}

/** What `node` adds to the Lambda response: its JSON, escaped inside the body string, and a comma. */
export const pageBytesOf = (node: Node): number => Buffer.byteLength(JSON.stringify(JSON.stringify(node))) - 2 + 1;

/**
 * One page of the cluster's nodes after node id `after` (from the first
 * without it): at most `limit` nodes (only UP ones unless `all`) and at most
 * `PAGE_MAX_BYTES`, always at least one node if there is one. `more` is true
 * when a node that belongs on a later page exists.
 */
export async function readPage(
  deps: Deps,
  clusterId: string,
  { all, after, limit, maxBytes = PAGE_MAX_BYTES }: { all: boolean; after?: string; limit: number; maxBytes?: number },
): Promise<{ nodes: Node[]; more: boolean }> {
  const nodes: Node[] = [];
  let bytes = 0;
  let more = false;
  const now = deps.now();
  await queryPages(
    deps,
    {
      TableName: deps.config.tableName,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
      ExpressionAttributeValues: { ':pk': clusterPk(clusterId), ':prefix': NODE_SK_PREFIX },
      ConsistentRead: true,
      ExclusiveStartKey: after === undefined ? undefined : nodeItemKey(clusterId, after),
    },
    (page) => {
      for (const item of page.Items ?? []) {
        const node = toNode(item as unknown as NodeItem, now);
        if (!all && node.status !== 'UP') continue;
        const size = pageBytesOf(node);
        if (nodes.length >= limit || (nodes.length > 0 && bytes + size > maxBytes)) {
          more = true;
          return false;
        }
        nodes.push(node);
        bytes += size;
      }
      return true;
    },
    // What the page still needs and one more, which says whether another page follows: a read of 1 MB
    // for a page that needs a few nodes would cost up to 256 read units for nothing.
    () => ({ Limit: limit - nodes.length + 1 }),
  );
  return { nodes, more };
}
