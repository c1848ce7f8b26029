/**
 * Many conditional updates, each standing or falling on its own condition,
 * sent as DynamoDB transactions of up to 100: the sweeper's way of declaring
 * a storm's nodes down (sweeper.ts).
 *
 * Why transactions. One UpdateItem per node costs the sender a request's CPU
 * (the SDK's middleware, signing, a round trip) per node: 1,000 downs are
 * seconds of CPU on a 128 MB function. A `TransactWriteItems` carries 100
 * updates in one request (docs/measured/sweep.md has both). It is
 * all-or-nothing, which these updates do not need: when DynamoDB cancels
 * one, its `CancellationReasons` say which update's condition failed
 * (`ConditionalCheckFailed`: a keepalive won its race, the update's outcome
 * is settled), and the others (`None`) are sent again without it. A
 * conflict with another write of the same item (`TransactionConflict`) or
 * throttling is retried after a backoff. A cancellation without reasons
 * (a store that does not give them) is settled one update at a time.
 *
 * What it costs. A transactional write takes two write units an item
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling);
 * a storm's downs are rare, and `roster capacity` counts them so. IAM
 * authorizes each update as `dynamodb:UpdateItem` on its table
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html),
 * as the local runtime's IAM gate does (local/iam/requests.ts). A single
 * write racing a transaction on the same item fails with
 * `TransactionConflictException`, which the API answers as 429 (errors.ts):
 * the client retries, as after any throttling.
 */
import { TransactWriteCommand, UpdateCommand, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import { setTimeout as sleep } from 'node:timers/promises';
import { mapLimit } from './concurrency.ts';
import { isConditionFailure } from './conditions.ts';
import type { Deps } from './deps.ts';

/** DynamoDB's limit on the actions of one transaction (TransactWriteItems, API reference). */
export const TRANSACTION_ITEMS = 100;
/**
 * Attempts of one chunk's updates before the error is thrown. A storm's
 * transactions can outrun their cluster's partition (two write units an
 * item, 1,000 a second): eight attempts back off for ~6 s in all, time for
 * the partition to take them.
 */
const ATTEMPTS = 8;
const BACKOFF_MS = 50;

export type UpdateOutcome = 'written' | 'condition-failed';

/** One item's conditional update, as a transaction carries it (and UpdateItem takes it). */
export type ItemUpdate = NonNullable<NonNullable<TransactWriteCommandInput['TransactItems']>[number]['Update']>;

/** Cancellation reasons after which an update is sent again (`None`: it was cancelled because of another one). */
const RETRIED = new Set(['None', 'TransactionConflict', 'ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);

interface Cancellation extends Error {
  CancellationReasons?: { Code?: string }[];
}

const isCancellation = (err: unknown): err is Cancellation => err instanceof Error && err.name === 'TransactionCanceledException';

/** One update on its own: the fallback for a cancellation that gives no reasons. */
async function updateAlone(deps: Deps, update: ItemUpdate): Promise<UpdateOutcome> {
  try {
    await deps.db.send(new UpdateCommand(update));
    return 'written';
  } catch (err) {
    if (isConditionFailure(err)) return 'condition-failed';
    throw err;
  }
}

/** Writes one chunk (≤ TRANSACTION_ITEMS updates of distinct items), filling in `outcomes` at their indexes. */
async function writeChunk(deps: Deps, updates: readonly ItemUpdate[], indexes: number[], outcomes: (UpdateOutcome | undefined)[]): Promise<void> {
  let pending = indexes;
  for (let attempt = 1; pending.length > 0; attempt++) {
    try {
      await deps.db.send(new TransactWriteCommand({ TransactItems: pending.map((i) => ({ Update: updates[i] })) }));
      for (const i of pending) outcomes[i] = 'written';
      return;
    } catch (err) {
      if (!isCancellation(err)) throw err;
      const reasons = err.CancellationReasons;
      if (!Array.isArray(reasons) || reasons.length !== pending.length) {
        for (const i of pending) outcomes[i] = await updateAlone(deps, updates[i] as ItemUpdate);
        return;
      }
      const again: number[] = [];
      let contended = false;
      for (const [k, i] of pending.entries()) {
        const code = reasons[k]?.Code ?? 'None';
        if (code === 'ConditionalCheckFailed') outcomes[i] = 'condition-failed';
        else if (RETRIED.has(code)) {
          again.push(i);
          if (code !== 'None') contended = true;
        } else throw err; // a malformed update (ValidationError, an item too large): not something a retry mends
      }
      if (again.length > 0 && attempt >= ATTEMPTS) throw err;
      // Only conditions failed: the rest goes again at once. A conflict or throttling: after a jittered backoff.
      if (contended) await sleep(BACKOFF_MS * 2 ** (attempt - 1) * (0.5 + Math.random()));
      pending = again;
    }
  }
}

/**
 * Applies every update (each to a distinct item), `inFlight` transactions at
 * a time, and says for each whether it was written or its condition failed
 * (undefined: its chunk failed with `failure`, the first error that was
 * neither; the other chunks still finish).
 */
export async function updateEach(
  deps: Deps,
  updates: readonly ItemUpdate[],
  inFlight: number,
): Promise<{ outcomes: (UpdateOutcome | undefined)[]; failure?: unknown }> {
  const outcomes: (UpdateOutcome | undefined)[] = new Array<UpdateOutcome | undefined>(updates.length);
  const chunks: number[][] = [];
  for (let i = 0; i < updates.length; i += TRANSACTION_ITEMS) {
    chunks.push(Array.from({ length: Math.min(TRANSACTION_ITEMS, updates.length - i) }, (_, k) => i + k));
  }
  let failure: unknown;
  await mapLimit(chunks, inFlight, async (chunk) => {
    try {
      await writeChunk(deps, updates, chunk, outcomes);
    } catch (err) {
      failure ??= err;
    }
  });
  return failure === undefined ? { outcomes } : { outcomes, failure };
}
