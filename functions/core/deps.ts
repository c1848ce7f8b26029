/**
 * What the core needs from the outside world, injected so that tests and the
 * local runtime can pass their own clients and clocks.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config, type Config } from './config.ts';
import { defaultDocumentClient } from './aws.ts';

export interface Deps {
  db: DynamoDBDocumentClient;
  config: Config;
  /** Epoch milliseconds; injectable so tests can reason about time. */
  now: () => number;
}

let defaults: Deps | undefined;

/** Process-wide dependencies built from the environment at first use (cold start). */
export function defaultDeps(): Deps {
  defaults ??= { db: defaultDocumentClient(), config: config(), now: Date.now };
  return defaults;
}
