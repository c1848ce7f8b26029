import { listEtag, revisionInIfNoneMatch } from '@roster/contract';
import { defaultDeps } from '../core/deps.ts';
import { clusterIdOf, httpHandler, json, negotiateEncoding } from '../core/http-handler.ts';
import { decodeCursor } from '../core/list-page.ts';
import { listNodes } from '../core/registry.ts';
import { listQuerySchema, parseQuery } from '../core/validation.ts';

/**
 * GET /v1/clusters/{clusterId}/nodes[?status=all][&limit=N][&cursor=C] — one
 * page of the healthy list and the revision it reflects, with an ETag; the
 * page's `next` continues it. On a first page, `If-None-Match` with the ETag of
 * the revision the caller holds answers 304 without reading the nodes. Gzip
 * when the caller accepts it.
 */
export const handler = httpHandler('list-nodes', async (event) => {
  const clusterId = clusterIdOf(event);
  const query = parseQuery(listQuerySchema, event.queryStringParameters);
  const all = query.status === 'all';
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, clusterId, all);
  // A walk under way is not asked whether it changed: its pages belong to the revision it began at.
  const unlessRevision = cursor ? undefined : revisionInIfNoneMatch(event.headers?.['if-none-match'], all);
  const list = await listNodes(defaultDeps(), clusterId, { all, unlessRevision, limit: query.limit, cursor });
  // The body differs with Accept-Encoding: say so to any cache between (RFC 9110 §12.5.5).
  const headers = { etag: listEtag(list.revision, all), vary: 'accept-encoding' };
  return 'notModified' in list ? json(304, undefined, headers) : negotiateEncoding(event, json(200, list, headers));
});
