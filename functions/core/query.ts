/** Following a Query's pages and a BatchGetItem's unprocessed keys, written once: every reader of more than one page or batch goes through here. */
import { BatchGetCommand, QueryCommand, type BatchGetCommandOutput, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Deps } from './deps.ts';
import { ThrottledError } from './errors.ts';

/**
 * Runs `input` page by page (`LastEvaluatedKey`), handing each page to
 * `onPage` in order, until the last page or until `onPage` returns `false`.
 * `perPage`, if given, adjusts each request before it is sent (a reader that
 * stops early sets each page's `Limit` to what it still needs).
 */
export async function queryPages(
  deps: Deps,
  input: QueryCommandInput,
  onPage: (page: QueryCommandOutput) => boolean | void,
  perPage?: () => Partial<QueryCommandInput>,
): Promise<void> {
  let startKey: Record<string, unknown> | undefined = input.ExclusiveStartKey;
  do {
    const page = await deps.db.send(new QueryCommand({ ...input, ...perPage?.(), ExclusiveStartKey: startKey }));
    if (onPage(page) === false) return;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Every item a query finds, following its pages. */
export async function queryAll(deps: Deps, input: QueryCommandInput): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  await queryPages(deps, input, (page) => {
    items.push(...(page.Items ?? []));
  });
  return items;
}

/** BatchGetItem may leave keys unprocessed under load; this many rounds, then the read fails. */
const BATCH_GET_ATTEMPTS = 5;
/** Keys in one BatchGetItem (its limit: BatchGetItem API reference). */
const BATCH_GET_KEYS = 100;

export interface BatchGetOptions {
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ConsistentRead?: boolean;
}

/**
 * The items of `keys` that exist, read with BatchGetItem (100 keys a request)
 * and the keys it left unprocessed asked again; ThrottledError (naming
 * `what`) when some are still unprocessed after BATCH_GET_ATTEMPTS rounds.
 */
export async function batchGetAll(deps: Deps, keys: readonly Record<string, unknown>[], options: BatchGetOptions, what: string): Promise<Record<string, unknown>[]> {
  const table = deps.config.tableName;
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_KEYS) {
    let left: Record<string, unknown>[] | undefined = keys.slice(i, i + BATCH_GET_KEYS);
    for (let attempt = 0; left && left.length > 0; attempt++) {
      if (attempt === BATCH_GET_ATTEMPTS) throw new ThrottledError(`${what} could not be read`);
      const out: BatchGetCommandOutput = await deps.db.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: left, ...options } } }));
      items.push(...(out.Responses?.[table] ?? []));
      left = out.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return items;
}
