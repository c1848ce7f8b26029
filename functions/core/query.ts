/** Following a Query's pages, written once: every reader of more than one page goes through here. */
import { QueryCommand, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Deps } from './deps.ts';

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
