/**
 * What the core needs from the outside world, injected so that tests and the
 * local runtime can pass their own clients and clocks.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { readConfig, type Config } from './config.ts';
import { createDocumentClient } from './aws.ts';
import { perScope } from './scope.ts';

export interface Deps {
  db: DynamoDBDocumentClient;
  config: Config;
  /** Epoch milliseconds; injectable so tests can reason about time. */
  now: () => number;
}

/**
 * The handlers' dependencies, built from the environment at first use: once
 * per process on Lambda (cold start), once per runtime locally (see scope.ts).
 */
export const defaultDeps: () => Deps = perScope((scope) => {
  const config = readConfig(scope.env);
  const db = createDocumentClient(config);
  scope.onDispose(() => db.destroy());
  return { db, config, now: Date.now };
});
