/**
 * The verification module (functions/core/auth.ts), the secret sources
 * (functions/core/token-secret.ts, local/auth-secret.ts), the two authorizer
 * handlers invoked directly, and the arguments of `roster token create`
 * (the command itself runs in tokens.test.ts).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { handler as httpAuthorizerHandler } from '../../functions/auth/http-authorizer.ts';
import { handler as wsAuthorizerHandler } from '../../functions/auth/ws-authorizer.ts';
import {
  authorize,
  bearerToken,
  checkAccess,
  claimsFromContext,
  keyOf,
  readAuthMode,
  signToken,
  verifyToken,
  type Claims,
} from '../../functions/core/auth.ts';
import { ForbiddenError, UnauthorizedError } from '../../functions/core/errors.ts';
import { Scope } from '../../functions/core/scope.ts';
import { readSecretVersions } from '../../functions/core/token-secret.ts';
import { parseTtl } from '../../cli/token-command.ts';
import { ensureSecretFile, generateSecret, readSecretFile } from '../../local/auth-secret.ts';
import { expiredWith, unsignedAdmin, wronglySigned } from './support.ts';

const secret = generateSecret();
const keys = [keyOf(secret)];
// The authorizers as the local runtime runs them: in a scope that holds the secret.
const withSecret = new Scope({ env: {}, tokenSecret: secret });
const httpAuthorizer = withSecret.bind(httpAuthorizerHandler);
const wsAuthorizer = withSecret.bind(wsAuthorizerHandler);
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'roster-tokens-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Resolves to the UnauthorizedError message a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(UnauthorizedError);
    return (err as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('verifyToken', () => {
  test('returns the claims of a token signed with the secret', async () => {
    const token = await signToken(secret, { cluster: 'c1', role: 'node', sub: 'node-7', ttlSeconds: 600 });
    const claims = await verifyToken(token, keys);
    expect(claims).toEqual({ sub: 'node-7', cluster: 'c1', role: 'node', exp: expect.any(Number) });
    expect(claims.exp * 1000 - Date.now()).toBeGreaterThan(590_000);
    expect(claims.exp * 1000 - Date.now()).toBeLessThanOrEqual(600_000);
  });

  test('refuses expired, wrongly signed, unsigned, malformed and oversized tokens with a 401 that names the reason only', async () => {
    expect(await refusal(verifyToken(await expiredWith(secret, 'c1', 'admin'), keys))).toBe('the token has expired');
    expect(await refusal(verifyToken(await wronglySigned('c1', 'admin'), keys))).toBe('the token signature is not valid');
    expect(await refusal(verifyToken(unsignedAdmin(), keys))).toBe('the token is malformed');
    expect(await refusal(verifyToken('abc', keys))).toBe('the token is malformed');
    expect(await refusal(verifyToken('a.b.c', keys))).toBe('the token is malformed');
    expect(await refusal(verifyToken('', keys))).toBe('the token is malformed');
    expect(await refusal(verifyToken(`${'a'.repeat(3000)}.b.c`, keys))).toBe('the token is too long');
    // A validly signed token with claims outside the contract (a role that does not exist, a bad cluster id).
    const { SignJWT } = await import('jose');
    const now = Math.floor(Date.now() / 1000);
    const forged = (claims: Record<string, unknown>, alg = 'HS256') =>
      new SignJWT(claims).setProtectedHeader({ alg }).setIssuer('roster').setSubject('x').setIssuedAt(now).setExpirationTime(now + 60).sign(keyOf(secret));
    expect(await refusal(verifyToken(await forged({ cluster: 'c1', role: 'root' }), keys))).toBe('the token claims are not valid');
    expect(await refusal(verifyToken(await forged({ cluster: 'c 1', role: 'node' }), keys))).toBe('the token claims are not valid');
    expect(await refusal(verifyToken(await forged({ cluster: 'c1', role: 'node' }, 'HS512'), keys))).toBe('the token must be signed with HS256');
    const otherIssuer = await new SignJWT({ cluster: 'c1', role: 'node' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('someone-else')
      .setSubject('x')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(keyOf(secret));
    expect(await refusal(verifyToken(otherIssuer, keys))).toBe('the token claims are not valid');
  });

  test('accepts a token signed with the previous secret while a rotation is under way, and reads no secret for garbage', async () => {
    const previous = generateSecret();
    const token = await signToken(previous, { cluster: 'c1', role: 'reader', ttlSeconds: 60 });
    await expect(verifyToken(token, [keyOf(secret)])).rejects.toThrow('the token signature is not valid');
    expect((await verifyToken(token, [keyOf(secret), keyOf(previous)])).role).toBe('reader');
    let read = false;
    const source = async () => {
      read = true;
      return keys;
    };
    await expect(verifyToken('garbage', source)).rejects.toThrow('the token is malformed');
    expect(read).toBe(false);
  });

  test('signToken refuses what it must never sign', async () => {
    await expect(signToken(secret, { cluster: 'a/b', role: 'node', ttlSeconds: 60 })).rejects.toThrow(/cluster must be/);
    await expect(signToken(secret, { cluster: 'c1', role: 'node', ttlSeconds: 0 })).rejects.toThrow(/lifetime/);
    await expect(signToken(secret, { cluster: 'c1', role: 'node', sub: 'has space', ttlSeconds: 60 })).rejects.toThrow(/sub must be/);
    await expect(signToken('short', { cluster: 'c1', role: 'node', ttlSeconds: 60 })).rejects.toThrow(/at least 32 bytes/);
  });
});

describe('bearerToken', () => {
  test('takes the token of "Bearer <token>" and refuses anything else with 401', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer   abc.def.ghi ')).toBe('abc.def.ghi');
    for (const header of [undefined, '', '   ', 'Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'abc.def.ghi']) {
      expect(() => bearerToken(header), String(header)).toThrow(UnauthorizedError);
    }
  });
});

describe('authorize: the access rule', () => {
  const claims = (role: Claims['role'], cluster: string): Claims => ({ sub: 's', role, cluster, exp: Math.floor(Date.now() / 1000) + 60 });
  const allowed = (access: 'read' | 'write' | 'admin', c: Claims, clusterId: string | undefined): boolean => {
    try {
      authorize(access, c, clusterId);
      return true;
    } catch (err) {
      expect(err).toBeInstanceOf(ForbiddenError);
      return false;
    }
  };

  // Written out by hand, not derived from the implementation.
  const table: [Claims['role'], string, 'read' | 'write' | 'admin', string | undefined, boolean][] = [
    ['reader', 'a', 'read', 'a', true],
    ['reader', 'a', 'read', 'b', false],
    ['reader', 'a', 'write', 'a', false],
    ['reader', '*', 'read', 'b', true],
    ['reader', '*', 'write', 'b', false],
    ['reader', '*', 'admin', undefined, false],
    ['node', 'a', 'read', 'a', true],
    ['node', 'a', 'write', 'a', true],
    ['node', 'a', 'write', 'b', false],
    ['node', 'a', 'read', 'b', false],
    ['node', '*', 'write', 'b', true],
    ['node', '*', 'admin', undefined, false],
    ['admin', 'a', 'write', 'a', true],
    ['admin', 'a', 'read', 'b', false],
    ['admin', 'a', 'admin', undefined, false],
    ['admin', '*', 'admin', undefined, true],
    ['admin', '*', 'write', 'z', true],
  ];
  test.each(table)('%s for %s may %s cluster %s: %s', (role, cluster, access, clusterId, expected) => {
    expect(allowed(access, claims(role, cluster), clusterId)).toBe(expected);
  });

  test('public routes need nothing; claimsFromContext fails closed on a missing, refused, malformed or expired context', () => {
    expect(checkAccess('public', undefined, undefined)).toBeUndefined();
    const future = Math.floor(Date.now() / 1000) + 60;
    expect(() => claimsFromContext(undefined)).toThrow(UnauthorizedError);
    expect(() => claimsFromContext({ denied: 'UNAUTHORIZED', reason: 'the token has expired' })).toThrow('the token has expired');
    expect(() => claimsFromContext({ role: 'root', cluster: 'a', sub: 's', exp: future })).toThrow(UnauthorizedError);
    // The authorizer's result may be cached past the token's expiry: the handler checks it again.
    expect(() => claimsFromContext({ role: 'admin', cluster: '*', sub: 's', exp: Math.floor(Date.now() / 1000) - 1 })).toThrow('the token has expired');
    expect(claimsFromContext({ role: 'admin', cluster: '*', sub: 's', exp: future })).toMatchObject({ role: 'admin' });
  });

  test('ROSTER_AUTH is required unless explicitly off', () => {
    expect(readAuthMode({})).toBe(true);
    expect(readAuthMode({ ROSTER_AUTH: 'required' })).toBe(true);
    expect(readAuthMode({ ROSTER_AUTH: 'off' })).toBe(false);
    expect(() => readAuthMode({ ROSTER_AUTH: 'no' })).toThrow(/ROSTER_AUTH=no/);
  });
});

describe('the authorizer handlers', () => {
  const httpEvent = (authorization: string | undefined) => ({
    version: '2.0',
    type: 'REQUEST' as const,
    routeArn: 'arn:aws:execute-api:local:0:api/$default/GET/v1/clusters',
    identitySource: authorization === undefined ? [] : [authorization],
    routeKey: 'GET /v1/clusters',
    rawPath: '/v1/clusters',
    rawQueryString: '',
    cookies: [],
    headers: authorization === undefined ? {} : { authorization },
    requestContext: {} as never,
  });

  test('the HTTP authorizer allows with the claims, or allows with `denied` so the handler answers the contract\'s 401', async () => {
    const token = await signToken(secret, { cluster: 'c1', role: 'node', sub: 'n', ttlSeconds: 60 });
    expect(await httpAuthorizer(httpEvent(`Bearer ${token}`))).toEqual({
      isAuthorized: true,
      context: { role: 'node', cluster: 'c1', sub: 'n', exp: expect.any(Number) },
    });
    expect(await httpAuthorizer(httpEvent(undefined))).toEqual({ isAuthorized: true, context: { denied: 'UNAUTHORIZED', reason: expect.stringMatching(/bearer token is required/) } });
    const expired = await httpAuthorizer(httpEvent(`Bearer ${await expiredWith(secret, 'c1', 'node')}`));
    expect(expired).toEqual({ isAuthorized: true, context: { denied: 'UNAUTHORIZED', reason: 'the token has expired' } });
  });

  test('the WebSocket authorizer allows $connect with the claims as context, and fails a bad token with "Unauthorized" (401)', async () => {
    const methodArn = 'arn:aws:execute-api:local:0:api/live/$connect';
    const token = await signToken(secret, { cluster: 'c1', role: 'reader', sub: 'r', ttlSeconds: 60 });
    const allowed = await wsAuthorizer({ methodArn, queryStringParameters: { token, clusterId: 'c1' } });
    expect(allowed).toEqual({
      principalId: 'r',
      policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: methodArn }] },
      context: { role: 'reader', cluster: 'c1', sub: 'r', exp: expect.any(Number) },
    });
    for (const bad of [undefined, '', 'x', await wronglySigned('c1', 'admin'), await expiredWith(secret, 'c1', 'admin')]) {
      await expect(wsAuthorizer({ methodArn, queryStringParameters: bad === undefined ? null : { token: bad } })).rejects.toThrow(/^Unauthorized$/);
    }
  });
});

describe('secrets', () => {
  test('Secrets Manager: the current value first, the previous one too when there is one', async () => {
    const versions: Record<string, string | undefined> = { AWSCURRENT: 'current-value', AWSPREVIOUS: undefined };
    const fake = {
      send: async (command: { input: { VersionStage?: string } }) => {
        const stage = command.input.VersionStage ?? 'AWSCURRENT';
        const value = versions[stage];
        if (value === undefined) throw Object.assign(new Error('no such version'), { name: 'ResourceNotFoundException' });
        return { SecretString: value };
      },
    } as unknown as SecretsManagerClient;
    expect(await readSecretVersions(fake, 'arn')).toEqual(['current-value']);
    versions.AWSPREVIOUS = 'previous-value';
    expect(await readSecretVersions(fake, 'arn')).toEqual(['current-value', 'previous-value']);
  });

  test('the local secret file is created once, owner-only, and read back; a short one is refused without showing it', async () => {
    const file = path.join(scratch, 'sub', 'auth-secret');
    const first = await ensureSecretFile(file);
    expect(first.created).toBe(true);
    expect(first.secret).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await ensureSecretFile(file);
    expect(again).toEqual({ secret: first.secret, created: false });
    const short = path.join(scratch, 'short');
    writeFileSync(short, 'tiny-secret-value\n');
    await expect(readSecretFile(short)).rejects.toThrow(/too short/);
    await expect(readSecretFile(short)).rejects.not.toThrow(/tiny-secret-value/);
  });
});

describe('roster token create: its arguments', () => {
  test('parses lifetimes', () => {
    expect(parseTtl('30d')).toBe(30 * 86_400);
    expect(parseTtl('12h')).toBe(43_200);
    expect(parseTtl('90m')).toBe(5400);
    expect(parseTtl('3600')).toBe(3600);
    for (const bad of ['0', '-1', '1y', '1.5h', '', '367d']) expect(() => parseTtl(bad), bad).toThrow(/--ttl/);
  });
});
