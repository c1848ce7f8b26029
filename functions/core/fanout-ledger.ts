/**
 * The fan-out's ledger: what a failed attempt at a cluster's events already
 * delivered, kept in the table so that the event source mapping's retry of
 * the record posts only what is still owed.
 *
 * Why in the table. When a group of events cannot be delivered to every
 * subscriber before the invocation's deadline, the fan-out reports a batch
 * item failure and Lambda invokes it again with the same records — quite
 * possibly in another execution environment, so memory cannot carry what
 * the first attempt achieved. The ledger is written only then, on the
 * failure path: a fan-out that delivers everything writes nothing.
 *
 * What it holds, per cluster (one ledger at a time: a shard delivers a
 * cluster's records in order, so only one stretch of them can be failing):
 * - `covered`, the revisions the failed attempts posted (or tried to);
 * - `owed`, per connection that did not acknowledge all of them, the
 *   revisions it still needs.
 * A subscriber not in `owed` acknowledged every covered revision — or
 * subscribed after the attempt read the list, which is after those events
 * were written, so the list it reads after subscribing already reflects
 * them (docs/running-nodes/wire-protocol.md: subscribe first, then read).
 *
 * Where. The owed connections are written in chunks of LEDGER_CHUNK entries
 * (`S#{clusterId}` / `FANOUT#{id}#{n}`, beside the subscriptions, which the
 * fan-out reads by `begins_with(sk, 'WS#')` and so never sees these), then a
 * small reference (`fanoutLedger`: id, covered revisions, chunk count) on the
 * cluster's subscriptions version item, which the fan-out reads for every
 * event anyway: a cluster without a ledger costs no extra read, one with a
 * ledger costs one query when its events are retried. The reference is
 * written last, so a reader that sees it finds every chunk (or, missing one,
 * ignores the ledger and posts to everyone: at least once still holds).
 * Chunks expire by TTL after LEDGER_TTL_SECONDS; the reference is removed
 * once the retried events were delivered.
 */
import { randomUUID } from 'node:crypto';
import { BatchWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from './conditions.ts';
import type { Deps } from './deps.ts';
import { subscriptionPk, subscriptionsVersionKey } from './model.ts';
import { queryAll } from './query.ts';

/** Owed connections per chunk item: about 30 KB, well under DynamoDB's 400 KB item limit. */
export const LEDGER_CHUNK = 1000;
/**
 * How long ledger chunks are kept: the event source mapping gives up on a
 * record after 15 minutes (infra/fanout.ts, `maxRecordAge`), so an hour is
 * past any retry.
 */
export const LEDGER_TTL_SECONDS = 3600;

const CHUNK_PREFIX = 'FANOUT#';

/** The reference on the subscriptions version item. */
export interface LedgerRef {
  id: string;
  /** Revisions the ledger speaks for. */
  covered: number[];
  /** Chunk items written before the reference. */
  chunks: number;
}

export interface Ledger {
  ref: LedgerRef;
  covered: ReadonlySet<number>;
  /** Connection id → the covered revisions it still needs. */
  owed: ReadonlyMap<string, readonly number[]>;
}

/** The reference as stored, or undefined for anything else. */
export function ledgerRefOf(value: unknown): LedgerRef | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, covered, chunks } = value as Record<string, unknown>;
  if (typeof id !== 'string' || !Array.isArray(covered) || typeof chunks !== 'number') return undefined;
  return { id, covered: covered.map(Number), chunks };
}

/** Reads the ledger `ref` points to (consistently); undefined when a chunk is missing, and the ledger cannot be trusted. */
export async function readLedger(deps: Deps, clusterId: string, ref: LedgerRef): Promise<Ledger | undefined> {
  const items = await queryAll(deps, {
    TableName: deps.config.tableName,
    KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
    ExpressionAttributeValues: { ':pk': subscriptionPk(clusterId), ':prefix': `${CHUNK_PREFIX}${ref.id}#` },
    ConsistentRead: true,
  });
  if (items.length !== ref.chunks) return undefined;
  const owed = new Map<string, number[]>();
  for (const item of items) {
    for (const [connectionId, revisions] of Object.entries((item.owed ?? {}) as Record<string, unknown[]>)) owed.set(connectionId, revisions.map(Number));
  }
  return { ref, covered: new Set(ref.covered), owed };
}

/**
 * Writes a ledger for `clusterId`: the chunks, then the reference that
 * replaces any earlier one. Throws if it could not be written (the retry
 * then posts to everyone: at least once, with duplicates).
 */
export async function writeLedger(deps: Deps, clusterId: string, covered: readonly number[], owed: ReadonlyMap<string, readonly number[]>): Promise<void> {
  const id = randomUUID().slice(0, 13);
  const ttl = Math.ceil(deps.now() / 1000) + LEDGER_TTL_SECONDS;
  const entries = [...owed];
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < entries.length; i += LEDGER_CHUNK) {
    items.push({ pk: subscriptionPk(clusterId), sk: `${CHUNK_PREFIX}${id}#${items.length}`, owed: Object.fromEntries(entries.slice(i, i + LEDGER_CHUNK)), ttl });
  }
  for (let i = 0; i < items.length; i += 25) {
    let requests: Record<string, unknown>[] | undefined = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    // BatchWrite may leave items unprocessed under load; retry those, and give up (throw) if they stay.
    for (let attempt = 0; requests && requests.length > 0; attempt++) {
      if (attempt === 5) throw new Error(`fan-out ledger of ${clusterId}: ${requests.length} chunks stayed unprocessed`);
      const out = await deps.db.send(new BatchWriteCommand({ RequestItems: { [deps.config.tableName]: requests } }));
      requests = out.UnprocessedItems?.[deps.config.tableName] as Record<string, unknown>[] | undefined;
    }
  }
  const ref: LedgerRef = { id, covered: [...covered].sort((a, b) => a - b), chunks: items.length };
  await deps.db.send(
    new UpdateCommand({
      TableName: deps.config.tableName,
      Key: subscriptionsVersionKey(clusterId),
      UpdateExpression: 'SET fanoutLedger = :ref',
      ExpressionAttributeValues: { ':ref': ref },
    }),
  );
}

/** Removes the reference to ledger `id` (its chunks expire); a newer ledger is left alone. */
export async function clearLedger(deps: Deps, clusterId: string, id: string): Promise<void> {
  try {
    await deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: subscriptionsVersionKey(clusterId),
        UpdateExpression: 'REMOVE fanoutLedger',
        ConditionExpression: 'fanoutLedger.id = :id',
        ExpressionAttributeValues: { ':id': id },
      }),
    );
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
}
