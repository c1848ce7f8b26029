import type { ErrorCode } from '@roster/contract';

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
