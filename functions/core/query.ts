/** Following a Query's pages, written once: every reader of more than one page goes through here. */
import { QueryCommand, type QueryCommandInput, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import type { Deps } from './deps.ts';

/** Runs `input` page by page (`LastEvaluatedKey`), handing each page to `onPage` in order. */
export async function queryPages(deps: Deps, input: QueryCommandInput, onPage: (page: QueryCommandOutput) => void): Promise<void> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await deps.db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
    onPage(page);
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/** Every item a query finds, following its pages. */
export async function queryAll(deps: Deps, input: QueryCommandInput): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  await queryPages(deps, input, (page) => items.push(...(page.Items ?? [])));
  return items;
}
