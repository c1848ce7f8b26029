/**
 * The fan-out's stream filter, defined once. The CDK stack passes these
 * patterns to the Lambda event source mapping (`FilterCriteria`); the local
 * runtime's stream poller evaluates the very same objects with `matchesFilter`.
 *
 * Only writes that produce an event set `ev` on the node item; keepalives and
 * every other event-less write `REMOVE ev`. So a keepalive's stream record
 * never matches, and the fan-out function is never invoked for it.
 */
import { EVENT_TYPES } from './model.ts';

export type FilterPattern = { [key: string]: FilterPattern | readonly PatternValue[] };
type PatternValue = string | number | boolean | null | { prefix: string } | { exists: boolean } | { 'anything-but': readonly (string | number)[] };

export const FANOUT_FILTER_PATTERNS: readonly FilterPattern[] = [
  {
    eventName: ['INSERT', 'MODIFY'],
    dynamodb: { NewImage: { ev: { S: EVENT_TYPES } } },
  },
];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function matchesValue(rule: PatternValue, present: boolean, value: unknown): boolean {
  if (!isPlainObject(rule)) return present && value === rule;
  if ('exists' in rule) return rule.exists === present;
  if ('prefix' in rule) return present && typeof value === 'string' && value.startsWith(rule.prefix);
  if ('anything-but' in rule) return present && !rule['anything-but'].includes(value as string | number);
  throw new Error(`unsupported filter operator ${JSON.stringify(rule)}`);
}

/**
 * Evaluates one Lambda/EventBridge filter pattern against a record: every
 * field named in the pattern must match; a list matches if any entry does.
 * Supports the operators Roster uses (exact values, `prefix`, `exists`,
 * `anything-but`) and throws on any other, so the two sides cannot drift silently.
 */
export function matchesPattern(pattern: FilterPattern, record: unknown): boolean {
  const target = isPlainObject(record) ? record : {};
  return Object.entries(pattern).every(([key, rule]) => {
    const present = Object.prototype.hasOwnProperty.call(target, key) && target[key] !== undefined;
    const value = target[key];
    if (Array.isArray(rule)) {
      const values = Array.isArray(value) ? value : [value];
      return (rule as readonly PatternValue[]).some((r) => values.some((v) => matchesValue(r, present, v)));
    }
    return matchesPattern(rule as FilterPattern, isPlainObject(value) ? value : {});
  });
}

/** Lambda passes a record when any of the filter's patterns matches it. */
export function matchesFilter(patterns: readonly FilterPattern[], record: unknown): boolean {
  return patterns.some((p) => matchesPattern(p, record));
}
