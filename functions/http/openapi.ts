import openapi from '@roster/contract/openapi.json' with { type: 'json' };
import { httpHandler, json } from '../core/http-handler.ts';

/** The document is part of the bundle; it changes only with a deployment. */
const BODY = openapi;

/**
 * GET /v1/openapi.json — the HTTP API as an OpenAPI 3.1 document
 * (contract/openapi.json), public, so that a client in any language can be
 * written (or generated) from it.
 */
export const handler = httpHandler('openapi', async () => {
  return json(200, BODY, { 'cache-control': 'public, max-age=300' });
});
