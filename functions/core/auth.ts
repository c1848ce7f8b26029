/**
 * Access control, defined once: the bearer token (an HS256 JWT), how it is
 * verified, and the one rule that decides what a verified token may do.
 *
 * Three places use it, so they cannot disagree:
 * - the authorizer functions (`functions/auth/*`) verify the token
 *   (`verifyToken`) and hand API Gateway a context (`contextOf`);
 * - every handler checks that context against its route (`checkAccess`,
 *   `authorize`): the cluster in the path, the role the route needs;
 * - the local runtime runs the same authorizer modules, and the CLI and the
 *   local runtime sign tokens with `signToken`.
 *
 * Token claims: `sub` (who; informational, shows in logs), `cluster` (one
 * cluster id or `*`), `role` (`node`, `reader`, `admin`), `exp`, `iat`, and
 * `iss` = `roster`. Nothing here ever logs or echoes a token or a secret.
 */
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { ForbiddenError, UnauthorizedError } from './errors.ts';
import type { RouteAccess } from './routes.ts';
import { perScope } from './scope.ts';
import { ID_PATTERN } from './validation.ts';

export const ROLES = ['node', 'reader', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The `cluster` claim of a token valid for every cluster. */
export const ALL_CLUSTERS = '*';
export const TOKEN_ISSUER = 'roster';
/** Real tokens are ~250 characters; anything longer is refused before it is parsed. */
export const TOKEN_MAX_CHARS = 2048;
/** HS256 wants a key of at least its hash size: 256 bits. */
export const MIN_SECRET_BYTES = 32;
/** Longest lifetime `signToken` issues. */
export const MAX_TOKEN_TTL_SECONDS = 366 * 86_400;

/** Printable ASCII without spaces: safe to show in a log line. */
const SUBJECT_PATTERN = /^[\x21-\x7e]{1,128}$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export interface Claims {
  sub: string;
  cluster: string;
  role: Role;
  /** Expiry, epoch seconds. */
  exp: number;
}

const clusterClaimSchema = z.union([z.literal(ALL_CLUSTERS), z.string().regex(ID_PATTERN)]);

const claimsSchema = z.object({
  sub: z.string().regex(SUBJECT_PATTERN),
  cluster: clusterClaimSchema,
  role: z.enum(ROLES),
  exp: z.number().int().positive(),
});

export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);

// ─── Signing and verifying ──────────────────────────────────────────────────

export interface TokenRequest {
  cluster: string;
  role: Role;
  /** Who the token is for; shows in logs. @default `${role}:${cluster}` */
  sub?: string;
  ttlSeconds: number;
  /** Epoch ms. @default Date.now() */
  now?: number;
}

/** The signing key: the UTF-8 bytes of the secret string (a generated secret is plain characters, used as raw key material). */
export function keyOf(secret: string): Uint8Array {
  const key = new TextEncoder().encode(secret);
  if (key.length < MIN_SECRET_BYTES) throw new Error(`a token secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return key;
}

/** Signs a token. Throws a plain Error naming the bad argument (callers are the CLI and the runtime, not requests). */
export async function signToken(secret: string, request: TokenRequest): Promise<string> {
  const { cluster, role, ttlSeconds } = request;
  const sub = request.sub ?? `${role}:${cluster}`;
  if (!clusterClaimSchema.safeParse(cluster).success) throw new Error(`cluster must be "${ALL_CLUSTERS}" or 1-64 characters of A-Z a-z 0-9 . _ -`);
  if (!isRole(role)) throw new Error(`role must be one of ${ROLES.join(', ')}`);
  if (!SUBJECT_PATTERN.test(sub)) throw new Error('sub must be 1-128 printable ASCII characters without spaces');
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TOKEN_TTL_SECONDS) {
    throw new Error(`the lifetime must be a whole number of seconds from 1 to ${MAX_TOKEN_TTL_SECONDS}`);
  }
  const iat = Math.floor((request.now ?? Date.now()) / 1000);
  return new SignJWT({ cluster, role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(TOKEN_ISSUER)
    .setSubject(sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(keyOf(secret));
}

/** Why a token was refused, in words a caller may see (never the token, never why a key did not fit). */
function refusal(err: unknown): UnauthorizedError {
  if (err instanceof joseErrors.JWTExpired) return new UnauthorizedError('the token has expired');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new UnauthorizedError('the token signature is not valid');
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new UnauthorizedError('the token must be signed with HS256');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return new UnauthorizedError('the token claims are not valid');
  return new UnauthorizedError('the token is malformed');
}

/**
 * Verifies a token against the current keys (more than one after a
 * rotation: the newest first) and returns its claims. Every refusal is an
 * `UnauthorizedError`; only a failure to get the keys throws anything else.
 */
export async function verifyToken(
  token: string,
  keys: readonly Uint8Array[] | (() => Promise<readonly Uint8Array[]>),
  now = Date.now(),
): Promise<Claims> {
  if (token.length > TOKEN_MAX_CHARS) throw new UnauthorizedError('the token is too long');
  if (!COMPACT_JWS.test(token)) throw new UnauthorizedError('the token is malformed');
  // The keys only now: garbage is refused without reading the secret.
  const secrets = typeof keys === 'function' ? await keys() : keys;
  let last: unknown = new Error('no secret to verify with');
  for (const secret of secrets) {
    try {
      const { payload } = await jwtVerify(token, secret, {
        algorithms: ['HS256'],
        issuer: TOKEN_ISSUER,
        requiredClaims: ['exp', 'sub', 'iat'],
        currentDate: new Date(now),
      });
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) throw new UnauthorizedError('the token claims are not valid');
      return claims.data;
    } catch (err) {
      if (err instanceof UnauthorizedError) throw err;
      last = err;
      // A signature that does not fit this key may fit the previous one (rotation); anything else is final.
      if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
    }
  }
  throw refusal(last);
}

/** The token of an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined | null): string {
  if (header === undefined || header === null || header.trim() === '') throw new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)');
  const match = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!match?.[1]) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"');
  return match[1];
}

// ─── The rule ───────────────────────────────────────────────────────────────

/**
 * Whether `claims` may call a route of `access` for `clusterId` (the path's
 * cluster; undefined for routes without one). Throws `ForbiddenError`.
 *
 * - `read`: any role, for its cluster (or `*`).
 * - `write`: `node` or `admin`, for its cluster (or `*`).
 * - `admin`: `admin` with cluster `*` only — the routes it guards (the cluster
 *   list) reveal every cluster, which an admin of one cluster must not see.
 */
export function authorize(access: RouteAccess, claims: Claims, clusterId: string | undefined): void {
  if (access === 'public') return;
  if (access === 'admin') {
    if (claims.role !== 'admin' || claims.cluster !== ALL_CLUSTERS) throw new ForbiddenError(`this needs an admin token for all clusters (${ALL_CLUSTERS})`);
    return;
  }
  if (claims.cluster !== ALL_CLUSTERS && claims.cluster !== clusterId) throw new ForbiddenError('the token is not valid for this cluster');
  if (access === 'write' && claims.role === 'reader') throw new ForbiddenError('a reader token cannot register, keep alive, deregister or bind nodes');
}

// ─── The authorizer context ─────────────────────────────────────────────────

/**
 * What an authorizer hands API Gateway, which passes it to the handlers
 * (HTTP: `requestContext.authorizer.lambda`, as returned; WebSocket:
 * `requestContext.authorizer` on `$connect` and on every later message of the
 * connection, each value as a string, next to `principalId`).
 *
 * The HTTP authorizer also *allows* a refused token, with `denied`: API
 * Gateway would answer a denial with its own body, and the handler answers
 * with the contract's (see README, Access control).
 */
export type AuthorizerContext = ClaimsContext | { denied: 'UNAUTHORIZED'; reason: string };
/** Flat string and number values: what API Gateway accepts as an authorizer context. */
export type ClaimsContext = { role: Role; cluster: string; sub: string; exp: number };

export const contextOf = (claims: Claims): ClaimsContext => ({ role: claims.role, cluster: claims.cluster, sub: claims.sub, exp: claims.exp });

const deniedSchema = z.object({ denied: z.literal('UNAUTHORIZED'), reason: z.string().max(200) });

/**
 * The claims as they reach a handler. The HTTP API (payload 2.0,
 * `requestContext.authorizer.lambda`) keeps the JSON types the authorizer
 * returned; a WebSocket (or REST) API hands every context value on as a
 * string — `exp` arrives as `"1764100000"` ("The returned values are all
 * stringified": https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html).
 * So `exp` is a positive whole number, or the decimal digits of one.
 */
const contextClaimsSchema = claimsSchema.extend({
  exp: z.union([
    z.number().int().positive(),
    z
      .string()
      .regex(/^[1-9][0-9]{0,15}$/)
      .transform(Number),
  ]),
});

/**
 * The claims an authorizer passed on, checked again: a refusal becomes a 401,
 * a context that is missing or malformed a 401 (fail closed), and a token
 * that expired since the authorizer's result was cached a 401 too.
 */
export function claimsFromContext(context: unknown, now = Date.now()): Claims {
  const denied = deniedSchema.safeParse(context);
  if (denied.success) throw new UnauthorizedError(denied.data.reason);
  const claims = contextClaimsSchema.safeParse(context);
  if (!claims.success) throw new UnauthorizedError();
  if (claims.data.exp * 1000 <= now) throw new UnauthorizedError('the token has expired');
  return claims.data;
}

/** The whole check a handler makes: who (401), then may they (403). Returns the claims, or undefined for public routes. */
export function checkAccess(access: RouteAccess, context: unknown, clusterId: string | undefined, now = Date.now()): Claims | undefined {
  if (access === 'public') return undefined;
  const claims = claimsFromContext(context, now);
  authorize(access, claims, clusterId);
  return claims;
}

// ─── Whether auth is on ─────────────────────────────────────────────────────

/**
 * Whether handlers enforce tokens: `ROSTER_AUTH` = `required` (the default:
 * secure unless told otherwise; the stack never sets it) or `off` (only the
 * local runtime without `--auth`, and tests).
 */
export function readAuthMode(env: NodeJS.ProcessEnv): boolean {
  const raw = env.ROSTER_AUTH;
  if (raw === undefined || raw === '' || raw === 'required') return true;
  if (raw === 'off') return false;
  throw new Error(`Configuration error: ROSTER_AUTH=${raw} must be "required" or "off"`);
}

/** `readAuthMode` of the scope's environment, read once at first use like the rest of the configuration. */
export const authRequired: () => boolean = perScope((scope) => readAuthMode(scope.env));
