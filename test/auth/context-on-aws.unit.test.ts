/**
 * What an authorizer's context looks like when it reaches a handler on AWS.
 *
 * A WebSocket (or REST) API hands a Lambda authorizer's `context` to the
 * integration with every value as a string — "The returned values are all
 * stringified" (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-output.html) —
 * next to `principalId`; the HTTP API's payload 2.0 keeps JSON types in
 * `requestContext.authorizer.lambda`
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-lambda-authorizer.html).
 * The local runtime passes the WebSocket context the same way, so every
 * WebSocket test that runs with auth pins it (test/auth/access.test.ts).
 */
import { describe, expect, test } from 'vitest';
import { handler as wsAuthorizerHandler } from '../../functions/auth/ws-authorizer.ts';
import { claimsFromContext, signToken } from '../../functions/core/auth.ts';
import { UnauthorizedError } from '../../functions/core/errors.ts';
import { Scope } from '../../functions/core/scope.ts';
import { generateSecret } from '../../local/auth-secret.ts';
import { authorizeConnect, GATEWAY_ERROR, stringifiedContext, type ConnectAuthorizer } from '../../local/authorizers.ts';
import type { LambdaHandler } from '../../local/handlers.ts';

const secret = generateSecret();
// The authorizer as the local runtime runs it: in a scope that holds the secret.
const wsAuthorizer = new Scope({ env: {}, tokenSecret: secret }).bind(wsAuthorizerHandler);

const future = Math.floor(Date.now() / 1000) + 600;

describe('claimsFromContext', () => {
  test('accepts the claims as the HTTP API passes them (JSON types) and as a WebSocket API passes them (strings)', () => {
    const typed = { role: 'admin', cluster: '*', sub: 'ops', exp: future };
    const stringified = { role: 'admin', cluster: '*', sub: 'ops', exp: String(future), principalId: 'ops' };
    expect(claimsFromContext(typed)).toEqual(typed);
    expect(claimsFromContext(stringified)).toEqual(typed);
  });

  test('still refuses an exp that is not the decimal digits of a positive whole number, or that has passed', () => {
    for (const exp of ['', ' 1', '1e12', '-5', '0', '012', '1.5', 'abc', '99999999999999999', 'true']) {
      expect(() => claimsFromContext({ role: 'admin', cluster: '*', sub: 'ops', exp }), JSON.stringify(exp)).toThrow(UnauthorizedError);
    }
    expect(() => claimsFromContext({ role: 'admin', cluster: '*', sub: 'ops', exp: String(Math.floor(Date.now() / 1000) - 1) })).toThrow('the token has expired');
  });
});

/** The stack's `$connect` authorizer settings (identity source: the token query parameter) around `handler`. */
const connectAuthorizer = (handler: LambdaHandler): ConnectAuthorizer => ({ handler, functionName: 'ws-authorizer', identitySource: ['route.request.querystring.token'], region: 'us-east-1' });

describe('the local runtime passes a WebSocket authorizer context as API Gateway does', () => {
  test('every value stringified, next to principalId', () => {
    expect(stringifiedContext({ stringKey: 'value', numberKey: 1, booleanKey: true })).toEqual({ stringKey: 'value', numberKey: '1', booleanKey: 'true' });
    expect(stringifiedContext(undefined)).toEqual({});
  });

  test('an object or array in the context is an authorizer configuration error: 500', async () => {
    expect(stringifiedContext({ nested: { a: 1 } })).toBeUndefined();
    expect(stringifiedContext({ list: ['a'] })).toBeUndefined();
    const badAuthorizer: LambdaHandler = (event) => ({
      principalId: 'p',
      policyDocument: { Version: '2012-10-17', Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: (event as { methodArn: string }).methodArn }] },
      context: { nested: { a: 1 } },
    });
    const outcome = await authorizeConnect(connectAuthorizer(badAuthorizer), { queryStringParameters: { token: 't' }, requestContext: {} }, 'api', 'live');
    expect(outcome).toEqual({ kind: 'refuse', reply: GATEWAY_ERROR });
  });

  test('the real authorizer\'s claims reach $connect stringified, and the handlers accept them', async () => {
    const token = await signToken(secret, { cluster: 'c1', role: 'node', sub: 'node-1', ttlSeconds: 600 });
    const outcome = await authorizeConnect(connectAuthorizer(wsAuthorizer as LambdaHandler), { queryStringParameters: { token, clusterId: 'c1' }, requestContext: {} }, 'api', 'live');
    if (outcome.kind !== 'allow') throw new Error(`refused: ${JSON.stringify(outcome)}`);
    expect(outcome.context).toEqual({ role: 'node', cluster: 'c1', sub: 'node-1', exp: expect.stringMatching(/^[1-9][0-9]+$/), principalId: 'node-1' });
    expect(claimsFromContext(outcome.context)).toMatchObject({ role: 'node', cluster: 'c1', sub: 'node-1', exp: expect.any(Number) });
  });
});
