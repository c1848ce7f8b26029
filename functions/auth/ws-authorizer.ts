import type { APIGatewayAuthorizerWithContextResult } from 'aws-lambda';
import { contextOf, verifyToken, type ClaimsContext } from '../core/auth.ts';
import { UnauthorizedError } from '../core/errors.ts';
import { logger } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { tokenKeys } from '../core/token-secret.ts';

/** The parts of a WebSocket `$connect` REQUEST authorizer event this function reads. */
export interface WsAuthorizerEvent {
  methodArn: string;
  queryStringParameters?: Record<string, string | undefined> | null;
}

/**
 * WebSocket `$connect` REQUEST authorizer, identity source
 * `route.request.querystring.token` (browsers cannot set headers on a
 * WebSocket). A refused token fails the handshake with 401 (the error
 * message `Unauthorized` is how a Lambda authorizer asks for that). A valid
 * one is allowed with its claims as context, which API Gateway passes to
 * `$connect` and to every later message of the connection; the handlers
 * check cluster and role against it.
 */
export const handler = async (event: WsAuthorizerEvent): Promise<APIGatewayAuthorizerWithContextResult<ClaimsContext>> => {
  let claims;
  try {
    claims = await verifyToken(event.queryStringParameters?.token ?? '', () => tokenKeys());
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    logger.info('token refused on $connect', { reason: err.message });
    metrics.count('AuthorizerDenials', { code: 'UNAUTHORIZED' });
    metrics.flush();
    throw new Error('Unauthorized', { cause: err });
  }
  return {
    principalId: claims.sub,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: event.methodArn }],
    },
    context: contextOf(claims),
  };
};
