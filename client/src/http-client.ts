/**
 * The SDK's client of the HTTP API, over the global fetch. Every request has
 * a timeout; every failure becomes a RosterClientError with the server's code
 * when it sent one, and the server's `Retry-After` when it asked for a pause.
 */
import { isNode, isNodeList, isObject, LIST_PAGE_MAX, listEtag, type Node, type NodeList } from '@roster/contract';
import { errorOfAnswer, RosterClientError, toClientError } from './errors.ts';

export interface HttpClientOptions {
  /** Base URL of the HTTP API; may carry a path prefix (an API Gateway stage). */
  baseUrl: string;
  token?: string;
  timeoutMs: number;
  /** Nodes asked for per page of the list (`limit`). @default LIST_PAGE_MAX, the fewest requests */
  pageLimit?: number;
}

export interface RequestOptions {
  body?: unknown;
  /** Aborts the request (the client stopping); reported as `CLOSED`. */
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

export interface RegisterBody {
  metadata: Record<string, string>;
  leaseSeconds?: number;
  incarnation: number;
}

/** What undici (behind fetch) puts in `cause` when a connection fails. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code ? `${cause.message || code} (${code})` : cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The longest pause a `Retry-After` may impose; anything longer is read as this. */
const RETRY_AFTER_MAX_MS = 300_000;

/** `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  const ms = /^\d{1,9}$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), RETRY_AFTER_MAX_MS);
}

/**
 * One request's abort signal: its timeout, or the caller's signal (a client
 * or lease stopping), whichever comes first; undone when the request ends.
 * Not `AbortSignal.any([signal, AbortSignal.timeout(ms)])`: each such signal
 * stays linked to the caller's long-lived one until that one is collected
 * (nodejs/node#55351), so a lease's keepalives, each with a timer, added up
 * for as long as the lease ran.
 */
class RequestAbort {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  timedOut = false;

  constructor(
    timeoutMs: number,
    private readonly caller: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError'));
    }, timeoutMs);
    // As AbortSignal.timeout's: a pending request's timer alone does not keep the process running.
    this.timer.unref();
    if (caller?.aborted) this.controller.abort(caller.reason);
    else caller?.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private readonly onCallerAbort = (): void => this.controller.abort(this.caller?.reason);

  done(): void {
    clearTimeout(this.timer);
    this.caller?.removeEventListener('abort', this.onCallerAbort);
  }
}

export class HttpClient {
  private readonly base: string;

  constructor(private readonly options: HttpClientOptions) {
    // String concatenation, not `new URL(path, base)`, which would drop a stage prefix such as `/prod`.
    this.base = options.baseUrl.replace(/\/+$/, '');
  }

  private async request(
    method: string,
    path: string,
    { body, signal, timeoutMs = this.options.timeoutMs, headers: extra = {} }: RequestOptions = {},
  ): Promise<{ status: number; json: unknown }> {
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { accept: 'application/json', ...extra };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const request = new RequestAbort(timeoutMs, signal);

    let status: number;
    let text: string;
    let retryAfter: number | undefined;
    try {
      const res = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: request.signal,
      });
      status = res.status;
      retryAfter = retryAfterMs(res.headers.get('retry-after'));
      text = await res.text();
    } catch (err) {
      if (signal?.aborted) throw new RosterClientError('CLOSED', `${what}: the client was stopped`, { cause: err });
      if (request.timedOut) {
        throw new RosterClientError('TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, { cause: err });
      }
      throw new RosterClientError('NETWORK', `${what} to ${this.base}: ${networkReason(err)}`, { cause: err });
    } finally {
      request.done();
    }

    let json: unknown;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch (err) {
        if (status < 400) throw new RosterClientError('BAD_RESPONSE', `${what}: the answer is not JSON`, { status, cause: err });
      }
    }
    if (status >= 400) throw errorOfAnswer(what, status, json, this.options.token !== undefined, retryAfter);
    return { status, json };
  }

  /**
   * Why the API refuses this client's token for `clusterId`, asked the way
   * every read is checked: a WebSocket refusal carries only a status, this
   * carries the reason. Undefined when the read is not refused after all.
   */
  async refusalReason(clusterId: string, options: RequestOptions = {}): Promise<RosterClientError | undefined> {
    try {
      // The access check comes before anything is read, so a refusal costs the server nothing.
      await this.request('GET', `${HttpClient.path(clusterId)}?limit=1`, options);
      return undefined;
    } catch (err) {
      const error = toClientError(err);
      return error.refused ? error : undefined;
    }
  }

  private static path(clusterId: string, nodeId?: string): string {
    const cluster = `/v1/clusters/${encodeURIComponent(clusterId)}/nodes`;
    return nodeId === undefined ? cluster : `${cluster}/${encodeURIComponent(nodeId)}`;
  }

  private static node(json: unknown, what: string): Node {
    if (isObject(json) && isNode(json.node)) return json.node;
    throw new RosterClientError('BAD_RESPONSE', `${what}: the answer has no node`);
  }

  async register(clusterId: string, nodeId: string, body: RegisterBody, options: RequestOptions = {}): Promise<Node> {
    const { json } = await this.request('PUT', HttpClient.path(clusterId, nodeId), { ...options, body });
    return HttpClient.node(json, 'register');
  }

  async keepalive(clusterId: string, nodeId: string, incarnation: number, options: RequestOptions = {}): Promise<Node> {
    const path = `${HttpClient.path(clusterId, nodeId)}/keepalive`;
    const { json } = await this.request('POST', path, { ...options, body: { incarnation } });
    return HttpClient.node(json, 'keepalive');
  }

  /** Marks the node DOWN; with `incarnation`, only if that incarnation is still the current one (else 409). */
  async deregister(clusterId: string, nodeId: string, incarnation?: number, options: RequestOptions = {}): Promise<void> {
    const query = incarnation === undefined ? '' : `?incarnation=${incarnation}`;
    await this.request('DELETE', HttpClient.path(clusterId, nodeId) + query, options);
  }

  /** The healthy list, or with `all` also the retained DOWN nodes (whose revisions a cache needs). */
  async listNodes(clusterId: string, query: { all?: boolean } = {}, options: RequestOptions = {}): Promise<NodeList> {
    const list = await this.listNodesUnless(clusterId, undefined, query, options);
    if (list === 'not-modified') throw new RosterClientError('BAD_RESPONSE', 'list nodes: 304 to an unconditional request');
    return list;
  }

  /**
   * The list, unless the cluster is still at `revision` ('not-modified'): the
   * server then reads only its revision counter, so a periodic refresh of an
   * up-to-date cache costs one small read, not the whole cluster.
   *
   * A large list comes in pages: this follows each page's `next` and returns
   * them as one list at the first page's revision (which every page of the
   * walk carries). A walk the server cannot continue (410 `CURSOR_EXPIRED`:
   * it lost its state meanwhile) starts again from the first page.
   */
  async listNodesUnless(
    clusterId: string,
    revision: number | undefined,
    query: { all?: boolean } = {},
    options: RequestOptions = {},
  ): Promise<NodeList | 'not-modified'> {
    const base = `${HttpClient.path(clusterId)}?${query.all ? 'status=all&' : ''}limit=${this.options.pageLimit ?? LIST_PAGE_MAX}`;
    for (let walk = 1; ; walk++) {
      const headers: Record<string, string> = revision === undefined ? {} : { 'if-none-match': listEtag(revision, query.all ?? false) };
      const first = await this.request('GET', base, { ...options, headers });
      if (first.status === 304) return 'not-modified';
      const list = HttpClient.page(first.json);
      try {
        for (let next = list.next; next !== undefined; ) {
          const page = HttpClient.page((await this.request('GET', `${base}&cursor=${encodeURIComponent(next)}`, options)).json);
          if (page.revision !== list.revision || page.clusterId !== list.clusterId) {
            throw new RosterClientError('BAD_RESPONSE', `list nodes: a page of the list at revision ${list.revision} says revision ${page.revision}`);
          }
          list.nodes.push(...page.nodes);
          next = page.next;
        }
      } catch (err) {
        if (err instanceof RosterClientError && err.code === 'CURSOR_EXPIRED' && walk < LIST_WALKS) {
          // The server's counter went back: a revision held from before proves nothing about its new state.
          revision = undefined;
          continue;
        }
        throw err;
      }
      delete list.next;
      return list;
    }
  }

  private static page(json: unknown): NodeList {
    if (!isNodeList(json)) throw new RosterClientError('BAD_RESPONSE', 'list nodes: the answer is not a node list');
    return json;
  }
}

/** Walks of the list begun before giving up: each one after the first means the server lost its state during the one before. */
const LIST_WALKS = 3;

export interface ListNodesOptions {
  /** Base URL of the HTTP API. */
  httpUrl: string;
  clusterId: string;
  /** Also the DOWN nodes the server still keeps (`?status=all`). @default false */
  all?: boolean;
  /** Sent as `Authorization: Bearer`. @default undefined */
  token?: string;
  /** @default 10000 */
  timeoutMs?: number;
}

/**
 * One read of a cluster's list, without a client (no registration, no
 * WebSocket): for scripts and tools that need it once. A program that
 * needs the list as it changes uses a RosterClient.
 */
export function listNodes(options: ListNodesOptions): Promise<NodeList> {
  const http = new HttpClient({ baseUrl: options.httpUrl, token: options.token, timeoutMs: options.timeoutMs ?? 10_000 });
  return http.listNodes(options.clusterId, { all: options.all ?? false });
}

/**
 * One conditional read of a cluster's list: the list, or `'not-modified'`
 * when the cluster is still at `revision` (the server then reads only its
 * revision counter). For a program that keeps its own copy and refreshes it
 * now and then, as a RosterClient's periodic sync does; `revision` is the
 * `revision` of the list it holds.
 */
export function listNodesIfChanged(options: ListNodesOptions & { revision: number }): Promise<NodeList | 'not-modified'> {
  const http = new HttpClient({ baseUrl: options.httpUrl, token: options.token, timeoutMs: options.timeoutMs ?? 10_000 });
  return http.listNodesUnless(options.clusterId, options.revision, { all: options.all ?? false });
}
