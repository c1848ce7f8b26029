/**
 * Recording what a client sees: its HTTP requests with their answers (a
 * wrapped fetch) and nodes trimmed to what the checker needs. Shared by the
 * client processes and the harness's own list reads.
 */
import type { Node } from '@roster/client';
import type { NodeSnap, RequestRecord } from './history.ts';

const sortedJson = (metadata: Record<string, string>): string | undefined => {
  const keys = Object.keys(metadata).sort();
  return keys.length === 0 ? undefined : JSON.stringify(Object.fromEntries(keys.map((k) => [k, metadata[k]])));
};

export function snap(node: Node): NodeSnap {
  const s: NodeSnap = { id: node.nodeId, st: node.status, rev: node.revision, inc: node.incarnation, exp: Date.parse(node.expiresAt) };
  if (node.downReason) s.why = node.downReason;
  const meta = sortedJson(node.metadata);
  if (meta !== undefined) s.meta = meta;
  return s;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What an answer's body says, trimmed to the history's shape. */
function summarize(status: number, text: string): Pick<RequestRecord, 'n' | 'list' | 'err'> {
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status >= 400) {
    const error = isRecord(json) && isRecord(json.error) ? json.error : undefined;
    const contract = error !== undefined && typeof error.code === 'string' && typeof error.message === 'string' && Object.keys(json as object).length === 1;
    return { err: { code: typeof error?.code === 'string' ? error.code : '(none)', contract } };
  }
  if (!isRecord(json)) return {};
  if (isRecord(json.node)) return { n: snap(json.node as unknown as Node) };
  if (Array.isArray(json.nodes) && typeof json.revision === 'number') {
    return { list: { rev: json.revision, nodes: (json.nodes as Node[]).map(snap) } };
  }
  return {};
}

/** A fetch that records every request it makes, with its answer, and otherwise is `real`. */
export function recordingFetch(real: typeof fetch, record: (r: Omit<RequestRecord, 'c'>) => void): typeof fetch {
  return async (input, init) => {
    const t0 = Date.now();
    const url = new URL(input instanceof Request ? input.url : String(input));
    const m = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const p = url.pathname + url.search;
    try {
      const res = await real(input, init);
      const text = await res.clone().text();
      record({ k: 'req', t: Date.now(), t0, m, p, st: res.status, ...summarize(res.status, text) });
      return res;
    } catch (err) {
      const name = err instanceof Error ? err.name : '';
      const st = name === 'TimeoutError' ? 'TIMEOUT' : name === 'AbortError' ? (init?.signal?.reason instanceof Error && init.signal.reason.name === 'TimeoutError' ? 'TIMEOUT' : 'ABORTED') : 'NETWORK';
      record({ k: 'req', t: Date.now(), t0, m, p, st });
      throw err;
    }
  };
}

