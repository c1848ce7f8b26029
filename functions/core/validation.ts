/**
 * Input rules of the wire contract (docs/running-nodes/wire-protocol.md,
 * "Conventions"; contract/openapi.json), as zod schemas, and the one
 * function that turns a failed parse into a `VALIDATION_FAILED` error.
 */
import {
  ID_PATTERN,
  ID_RULE,
  LIST_PAGE_MAX,
  LEASE_MAX_SECONDS,
  LEASE_MIN_SECONDS,
  METADATA_KEY_MAX_CHARS,
  METADATA_MAX_BYTES,
  METADATA_MAX_KEYS,
} from '@roster/contract';
import { z } from 'zod';
import { PayloadTooLargeError, ValidationError } from './errors.ts';

// The rules themselves are the contract's (contract/index.ts).
export { ID_PATTERN, METADATA_KEY_MAX_CHARS, METADATA_MAX_BYTES, METADATA_MAX_KEYS };
/** Largest request body accepted; a maximal metadata object fits with room for JSON escaping. */
export const BODY_LIMIT_BYTES = 16 * 1024;

export const idSchema = z
  .string()
  .regex(ID_PATTERN, `must be ${ID_RULE}`);

/** Byte size of metadata: the UTF-8 length of every key and value. */
export function metadataBytes(metadata: Record<string, string>): number {
  let total = 0;
  for (const [key, value] of Object.entries(metadata)) {
    total += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

/**
 * `__proto__` is refused outright: JSON.parse makes it an ordinary key, but
 * copying it into a plain object (as zod's record does) sets the object's
 * prototype instead — the value would vanish or, worse, reach the store as a
 * non-plain object.
 */
const noProtoKey = z.custom<unknown>((value) => !(typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')), {
  message: 'metadata keys must not be "__proto__"',
});

export const metadataSchema = noProtoKey.pipe(z
  .record(
    z.string().min(1, 'metadata keys must not be empty').max(METADATA_KEY_MAX_CHARS, `metadata keys are at most ${METADATA_KEY_MAX_CHARS} characters`),
    z.string({ error: 'metadata values must be strings' }),
  )
  .refine((m) => Object.keys(m).length <= METADATA_MAX_KEYS, `metadata has at most ${METADATA_MAX_KEYS} keys`)
  .refine((m) => metadataBytes(m) <= METADATA_MAX_BYTES, `metadata is at most ${METADATA_MAX_BYTES} bytes`));

export const leaseSchema = z
  .number({ error: 'must be a number' })
  .int('must be a whole number of seconds')
  .min(LEASE_MIN_SECONDS, `must be at least ${LEASE_MIN_SECONDS}`)
  .max(LEASE_MAX_SECONDS, `must be at most ${LEASE_MAX_SECONDS}`);

export const incarnationSchema = z
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(Number.MAX_SAFE_INTEGER, 'is too large');

export const registerBodySchema = z.strictObject({
  metadata: metadataSchema.optional(),
  leaseSeconds: leaseSchema.optional(),
  incarnation: incarnationSchema.optional(),
});
export type RegisterBody = z.infer<typeof registerBodySchema>;

export const keepaliveBodySchema = z.strictObject({
  incarnation: incarnationSchema.optional(),
});
export type KeepaliveBody = z.infer<typeof keepaliveBodySchema>;

function describe(error: z.ZodError, what: string): string {
  const parts = error.issues.slice(0, 5).map((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`;
    return path ? `${path}: ${issue.message}` : issue.message;
  });
  return `invalid ${what}: ${parts.join('; ')}`;
}

/** Parses `value` with `schema` or throws `ValidationError` naming what was wrong. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(describe(result.error, what));
  return result.data;
}

export function parseId(value: unknown, name: 'clusterId' | 'nodeId'): string {
  if (typeof value !== 'string' || !ID_PATTERN.test(value)) {
    throw new ValidationError(`invalid ${name}: must be ${ID_RULE}`);
  }
  return value;
}

/**
 * Decodes and parses a JSON object of at most `limitBytes`; `what` names it in the
 * errors. HTTP request bodies and WebSocket messages are read by these same rules.
 */
export function parseJsonObject(raw: string, isBase64Encoded: boolean, limitBytes: number, what: string): object {
  const text = isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  if (Buffer.byteLength(text, 'utf8') > limitBytes) throw new PayloadTooLargeError(limitBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError(`${what} is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError(`${what} must be a JSON object`);
  }
  return parsed;
}

/**
 * Parses a JSON request body. An absent or empty body is `{}`; anything that
 * is not a JSON object is a validation error; an oversized body is 413.
 */
export function parseJsonBody(body: string | undefined | null, isBase64Encoded = false): unknown {
  if (body === undefined || body === null || body === '') return {};
  return parseJsonObject(body, isBase64Encoded, BODY_LIMIT_BYTES, 'request body');
}

export const listQuerySchema = z.strictObject({
  status: z.enum(['up', 'all'], { error: 'must be "up" or "all"' }).optional(),
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,5}$/, `must be a whole number from 1 to ${LIST_PAGE_MAX}`)
    .transform(Number)
    .pipe(z.number().max(LIST_PAGE_MAX, `must be a whole number from 1 to ${LIST_PAGE_MAX}`))
    .optional(),
  // The `next` of a page as it came (base64url); what it says is checked by decodeCursor (list-page.ts).
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,1024}$/, 'must be the `next` of a list page, as it came')
    .optional(),
});

/** An incarnation given as a query parameter (`?incarnation=N`). */
export const incarnationParamSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive whole number')
  .transform(Number)
  .pipe(incarnationSchema);

export const deregisterQuerySchema = z.strictObject({
  incarnation: incarnationParamSchema.optional(),
});

/** Longest parameter name quoted back in an error: the name is the caller's input. */
const QUOTED_NAME_MAX_CHARS = 64;

/**
 * Refuses query parameters outside `allowed` with 400 VALIDATION_FAILED,
 * naming them and what the route takes. `allowed` comes from the route table
 * (`HTTP_ROUTES[].query`), so every route refuses alike.
 */
export function refuseUnknownQuery(query: Record<string, string | undefined> | null | undefined, allowed: readonly string[]): void {
  const unknown = Object.keys(query ?? {}).filter((name) => !allowed.includes(name));
  if (unknown.length === 0) return;
  const names = unknown.slice(0, 5).map((name) => JSON.stringify(name.slice(0, QUOTED_NAME_MAX_CHARS)));
  const takes = allowed.length === 0 ? 'this route takes none' : `this route takes only ${allowed.join(', ')}`;
  throw new ValidationError(`invalid query parameters: unknown parameter(s) ${names.join(', ')}; ${takes}`);
}

/** Parses query parameters (absent means none) with a strict schema: unknown parameters are rejected. */
export function parseQuery<T>(schema: z.ZodType<T>, query: Record<string, string | undefined> | null | undefined): T {
  return parseWith(schema, query ?? {}, 'query parameters');
}
