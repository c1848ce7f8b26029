import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { bearerToken, contextOf, verifyToken, type AuthorizerContext } from '../core/auth.ts';
import { UnauthorizedError } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { tokenKeys } from '../core/token-secret.ts';

/**
 * HTTP API Lambda authorizer (payload 2.0, simple responses), identity source
 * `$request.header.Authorization`, results cached by API Gateway per header value.
 *
 * It verifies the token and always *allows*: with the claims, or with
 * `denied` and the reason. The handler then answers with the contract's 401
 * or 403 JSON (an authorizer's own denial would be API Gateway's
 * `{"message":"Forbidden"}`). Which route and cluster the token may use is
 * decided by the handler, not here, so one cached result serves every route.
 *
 * An error reading the secret is thrown: API Gateway answers 500 and caches nothing.
 */
export const handler = async (event: APIGatewayRequestAuthorizerEventV2): Promise<APIGatewaySimpleAuthorizerWithContextResult<AuthorizerContext>> => {
  try {
    const token = bearerToken(event.headers?.authorization ?? event.identitySource?.[0]);
    const claims = await verifyToken(token, () => tokenKeys());
    return { isAuthorized: true, context: contextOf(claims) };
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    // The reason only: never the header, which holds the token.
    logger.info('token refused', { reason: err.message, route: event.routeKey });
    return { isAuthorized: true, context: { denied: 'UNAUTHORIZED', reason: err.message } };
  }
};
