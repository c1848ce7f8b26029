import { listEtag, revisionInIfNoneMatch } from '@roster/contract';
import { defaultDeps } from '../core/deps.ts';
import { clusterIdOf, httpHandler, json } from '../core/http.ts';
import { listNodes } from '../core/registry.ts';
import { listQuerySchema, parseQuery } from '../core/validation.ts';

/**
 * GET /v1/clusters/{clusterId}/nodes[?status=all] — the healthy list and the
 * revision it reflects, with an ETag; `If-None-Match` with the ETag of the
 * revision the caller holds answers 304 without reading the nodes.
 */
export const handler = httpHandler('list-nodes', async (event) => {
  const clusterId = clusterIdOf(event);
  const query = parseQuery(listQuerySchema, event.queryStringParameters);
  const all = query.status === 'all';
  const unlessRevision = revisionInIfNoneMatch(event.headers?.['if-none-match'], all);
  const list = await listNodes(defaultDeps(), clusterId, { all, unlessRevision });
  const etag = { etag: listEtag(list.revision, all) };
  return 'notModified' in list ? json(304, undefined, etag) : json(200, list, etag);
});
