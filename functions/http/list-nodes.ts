import { defaultDeps } from '../core/deps.ts';
import { clusterIdOf, httpHandler, json } from '../core/http.ts';
import { listNodes } from '../core/registry.ts';
import { listQuerySchema, parseQuery } from '../core/validation.ts';

/**
 * The list's entity tag: weak, because two lists of one revision are the same
 * membership even when keepalives have moved their lease times since.
 */
export const listEtag = (revision: number, all: boolean): string => `W/"r${revision}-${all ? 'all' : 'up'}"`;

/** The revision an `If-None-Match` names for this variant (weak comparison), if any. */
function revisionNamedBy(ifNoneMatch: string | undefined, all: boolean): number | undefined {
  const suffix = all ? 'all' : 'up';
  for (const tag of (ifNoneMatch ?? '').split(',')) {
    const match = /^\s*(?:W\/)?"r(\d{1,15})-(all|up)"\s*$/.exec(tag);
    if (match && match[2] === suffix) return Number(match[1]);
  }
  return undefined;
}

/**
 * GET /v1/clusters/{clusterId}/nodes[?status=all] — the healthy list and the
 * revision it reflects, with an ETag; `If-None-Match` with the ETag of the
 * revision the caller holds answers 304 without reading the nodes.
 */
export const handler = httpHandler('list-nodes', async (event) => {
  const clusterId = clusterIdOf(event);
  const query = parseQuery(listQuerySchema, event.queryStringParameters);
  const all = query.status === 'all';
  const unlessRevision = revisionNamedBy(event.headers?.['if-none-match'], all);
  const list = await listNodes(defaultDeps(), clusterId, { all, unlessRevision });
  const etag = { etag: listEtag(list.revision, all) };
  return 'notModified' in list ? json(304, undefined, etag) : json(200, list, etag);
});
