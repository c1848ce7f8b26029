/**
 * The per-connection action limit: subscribe and unsubscribe actions one
 * connection may take per window, counted in its connection record.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { isConditionFailure } from './conditions.ts';
import type { Deps } from './deps.ts';
import { ThrottledError, ValidationError } from './errors.ts';
import { CONNECTION_SK, connectionPk } from './model.ts';

/**
 * Subscribe and unsubscribe actions one connection may take per window. Each
 * one writes two items, so a client looping on them would cost writes without
 * end. The limit lets a client fill its MAX_SUBSCRIPTIONS_PER_CONNECTION (subscriptions.ts) at
 * once (the console subscribes to every listed cluster) and cuts a loop to
 * two actions a second. The stage throttling bounds the whole API; this
 * bounds one connection.
 */
export const ACTION_LIMIT = { actions: 120, windowSeconds: 60 } as const;

/** The count a connection record keeps of its actions. */
export interface ActionCount {
  /** The action-limit window the count is for (epoch ms / window length). */
  actionWindow?: number;
  /** Subscribe and unsubscribe actions taken in `actionWindow`. */
  actions?: number;
}

/**
 * Counts one subscribe or unsubscribe action against the connection's limit,
 * atomically in the connection record: a conditional increment within the
 * current window, or a conditional start of a new window. Two concurrent
 * actions can never both take the last one. Throws `ThrottledError` past
 * the limit, `ValidationError` for an unknown connection.
 *
 * `known` (the record, when the caller has read it) picks the likely branch
 * first, so an action costs one write.
 */
export async function takeAction(deps: Deps, connectionId: string, known?: ActionCount): Promise<void> {
  const window = Math.floor(deps.now() / (ACTION_LIMIT.windowSeconds * 1000));
  const key = { pk: connectionPk(connectionId), sk: CONNECTION_SK };
  const increment = () =>
    deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: key,
        UpdateExpression: 'SET actions = actions + :one',
        ConditionExpression: 'actionWindow = :w AND actions < :max',
        ExpressionAttributeValues: { ':one': 1, ':w': window, ':max': ACTION_LIMIT.actions },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  const startWindow = () =>
    deps.db.send(
      new UpdateCommand({
        TableName: deps.config.tableName,
        Key: key,
        UpdateExpression: 'SET actionWindow = :w, actions = :one',
        ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(actionWindow) OR actionWindow < :w)',
        ExpressionAttributeValues: { ':one': 1, ':w': window },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
  const throttled = () =>
    new ThrottledError(`at most ${ACTION_LIMIT.actions} subscribe and unsubscribe actions per ${ACTION_LIMIT.windowSeconds} s on one connection`);
  let mode: 'increment' | 'start' = known && known.actionWindow !== window ? 'start' : 'increment';
  // Each failed condition tells (ALL_OLD) which write fits; a concurrent action can make one more round necessary.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await (mode === 'start' ? startWindow() : increment());
      return;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const old = err.Item ? (unmarshall(err.Item) as ActionCount) : undefined;
      if (!old) throw new ValidationError('unknown connection');
      if (old.actionWindow === undefined || old.actionWindow < window) mode = 'start';
      else if (old.actionWindow === window && (old.actions ?? 0) < ACTION_LIMIT.actions) mode = 'increment';
      // This window is used up (or a writer with a clock ahead of ours started a later one).
      else throw throttled();
    }
  }
  throw throttled();
}
