/**
 * The SDK's one error class, RosterClientError, and the one mapping to it
 * from what the server said: an HTTP error answer (`errorOfAnswer`, also for
 * a WebSocket upgrade refused with the contract's error body) or a failed
 * WebSocket attempt (`attemptError`).
 */
import { isErrorBody, type ErrorCode } from '@roster/contract';
import type { DropInfo } from './connection.ts';

/**
 * The server's error codes (the contract's) plus those the client adds when
 * no usable answer arrived.
 */
export type ClientErrorCode =
  | ErrorCode
  /** The request never reached the server or the connection broke. */
  | 'NETWORK'
  /** No answer within `requestTimeoutMs`. */
  | 'TIMEOUT'
  /** The server answered something that is not the contract's JSON. */
  | 'BAD_RESPONSE'
  /** An error status without the contract's error body (a proxy, a gateway). */
  | 'UNEXPECTED_STATUS'
  /** The client was stopped while the request was in flight. */
  | 'CLOSED';

const RETRIABLE_CODES: ReadonlySet<ClientErrorCode> = new Set(['NETWORK', 'TIMEOUT', 'THROTTLED', 'INTERNAL']);

export interface RosterClientErrorOptions {
  status?: number;
  /** How long the server asked the client to wait (its `Retry-After`), in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

export class RosterClientError extends Error {
  readonly code: ClientErrorCode;
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** The server's `Retry-After` (429, 503), in milliseconds; the client never retries sooner. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ClientErrorCode, message: string, options: RosterClientErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = 'RosterClientError';
    this.code = code;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether the same request may succeed later: no answer, throttling, or a fault of the server. */
  get retriable(): boolean {
    return RETRIABLE_CODES.has(this.code) || (this.status !== undefined && (this.status >= 500 || this.status === 429));
  }

  /** A refused token (401, 403): no retry can succeed until someone gives the client another one. */
  get refused(): boolean {
    return this.code === 'UNAUTHORIZED' || this.code === 'FORBIDDEN';
  }
}

/** Wraps anything thrown into a RosterClientError, keeping the original as `cause`. */
export function toClientError(err: unknown): RosterClientError {
  if (err instanceof RosterClientError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RosterClientError('NETWORK', message, { cause: err });
}

export const closedError = (): RosterClientError => new RosterClientError('CLOSED', 'the client was stopped');

/**
 * The error an error answer stands for: the contract's `{error:{code,message}}`
 * when the server sent one; for API Gateway's own refusals
 * (`{"message":"Unauthorized"}`, e.g. no Authorization header) the status
 * says which contract code it is.
 */
export function errorOfAnswer(what: string, status: number, json: unknown, hadToken: boolean, retryAfter?: number): RosterClientError {
  const options = retryAfter === undefined ? { status } : { status, retryAfterMs: retryAfter };
  if (isErrorBody(json)) return new RosterClientError(json.error.code as ClientErrorCode, json.error.message, options);
  if (status === 401) {
    const message = hadToken ? 'the information center refused the token' : 'the information center requires a token (none was given)';
    return new RosterClientError('UNAUTHORIZED', `${what}: ${message} (HTTP 401)`, options);
  }
  if (status === 403) return new RosterClientError('FORBIDDEN', `${what}: the token does not grant this (HTTP 403)`, options);
  return new RosterClientError('UNEXPECTED_STATUS', `${what}: HTTP ${status}`, options);
}

/** The error a failed WebSocket attempt stands for; `what` names the WebSocket API, as in `WebSocket wss://…`. */
export function attemptError(what: string, info: DropInfo): RosterClientError {
  const { status, body } = info;
  // A refusal that says why (the local runtime's `NOT_FOUND` for a path that is no WebSocket API) is reported as it was said.
  if (status !== undefined && isErrorBody(body) && body.error.code !== 'NODE_NOT_FOUND') {
    return new RosterClientError(body.error.code as ClientErrorCode, `${what}: ${body.error.message} (HTTP ${status})`, { status });
  }
  const byStatus: Record<number, ClientErrorCode> = { 404: 'NODE_NOT_FOUND', 429: 'THROTTLED' };
  let code: ClientErrorCode = 'NETWORK';
  if (status !== undefined) code = byStatus[status] ?? (status >= 500 ? 'INTERNAL' : 'UNEXPECTED_STATUS');
  return new RosterClientError(code, `${what}: ${info.reason}`, status === undefined ? {} : { status });
}
