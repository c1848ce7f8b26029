import type { ErrorCode } from '../functions/core/errors.ts';

/**
 * The server's error codes (design §2) plus those the client adds when no
 * usable answer arrived.
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

export class RosterClientError extends Error {
  readonly code: ClientErrorCode;
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;

  constructor(code: ClientErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'RosterClientError';
    this.code = code;
    this.status = options.status;
  }

  /** Whether the same request may succeed later: no answer, throttling, or a fault of the server. */
  get retriable(): boolean {
    return RETRIABLE_CODES.has(this.code) || (this.status !== undefined && (this.status >= 500 || this.status === 429));
  }
}

/** Wraps anything thrown into a RosterClientError, keeping the original as `cause`. */
export function toClientError(err: unknown): RosterClientError {
  if (err instanceof RosterClientError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RosterClientError('NETWORK', message, { cause: err });
}
