/**
 * The HTTP API, same origin, with the session's token if there is one.
 *
 * The token lives in `sessionStorage` only (gone with the tab), travels in
 * the `Authorization` header, and is never written to the page's URL, its
 * history, or the browser console.
 */
import { isNodeList, LIST_PAGE_MAX, type NodeList } from '@roster/contract';
import type { ServerClock } from './time.ts';

const TOKEN_KEY = 'roster.token';
const REQUEST_TIMEOUT_MS = 10_000;

/** The session's token. Storage can be disabled (privacy modes): then it lives in memory for the page's lifetime. */
export class TokenStore {
  private memory: string | undefined;

  get(): string | undefined {
    try {
      return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
    } catch {
      return this.memory;
    }
  }

  set(token: string): void {
    this.memory = token;
    try {
      sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // memory only
    }
  }

  clear(): void {
    this.memory = undefined;
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
  }
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Worth retrying soon: Roster did not answer, was throttling, or failed inside. */
export const isTransient = (error: unknown): boolean =>
  error instanceof ApiError && (error.status === 0 || error.status === 429 || error.status >= 500);

/** 401: the API wants a token, or did not accept the one sent. */
export class AuthRequiredError extends ApiError {
  constructor(
    readonly hadToken: boolean,
    message: string,
  ) {
    super(401, 'UNAUTHORIZED', message);
    this.name = 'AuthRequiredError';
  }
}

function errorOf(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return typeof code === 'string' ? { code, message: typeof message === 'string' ? message : code } : undefined;
}

export class Api {
  constructor(
    readonly tokens: TokenStore,
    private readonly clock: ServerClock,
  ) {}

  /** GETs `path` and checks the body's shape; throws `ApiError` (status 0: unreachable) or `AuthRequiredError`. */
  async get<T>(path: string, isValid: (value: unknown) => value is T): Promise<T> {
    const token = this.tokens.get();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const sentAt = Date.now();
    let res: Response;
    try {
      res = await fetch(path, {
        headers,
        cache: 'no-store',
        credentials: 'omit',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch {
      throw new ApiError(0, 'UNREACHABLE', 'Roster did not answer');
    }
    this.clock.sampleDate(res.headers.get('date'), sentAt, Date.now());
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (res.status === 401) throw new AuthRequiredError(token !== undefined, errorOf(body)?.message ?? 'a token is required');
    if (!res.ok) {
      const error = errorOf(body);
      throw new ApiError(res.status, error?.code ?? 'HTTP_ERROR', error?.message ?? `HTTP ${res.status}`);
    }
    if (!isValid(body)) throw new ApiError(res.status, 'BAD_RESPONSE', 'the response did not have the expected shape');
    return body;
  }

  /** A cluster's whole list (`?status=all`): its pages, followed by their `next`, as one list at the first page's revision. */
  async list(clusterId: string): Promise<NodeList> {
    const path = `/v1/clusters/${encodeURIComponent(clusterId)}/nodes?status=all&limit=${LIST_PAGE_MAX}`;
    const list = await this.get(path, isNodeList);
    for (let next = list.next; next !== undefined; ) {
      const page = await this.get(`${path}&cursor=${encodeURIComponent(next)}`, isNodeList);
      list.nodes.push(...page.nodes);
      next = page.next;
    }
    delete list.next;
    return list;
  }
}
