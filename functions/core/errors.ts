/**
 * One error hierarchy for the whole information center. Each subclass carries
 * the HTTP status and the stable `code` of the wire contract (`ERROR_STATUS` in
 * contract/index.ts; docs/running-nodes/wire-protocol.md, "Errors").
 * `toErrorBody` is the only place an error becomes something a caller sees.
 */
import type { ErrorBody, ErrorCode } from '@roster/contract';

export type { ErrorBody, ErrorCode };

export class RosterError extends Error {
  readonly statusCode: number;
  readonly code: ErrorCode;
  constructor(statusCode: number, code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RosterError';
    this.statusCode = statusCode;
    this.code = code;
  }
}

export class ValidationError extends RosterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(400, 'VALIDATION_FAILED', message, options);
    this.name = 'ValidationError';
  }
}

/** 401: no usable credentials — no, a malformed, an expired or a wrongly signed token. */
export class UnauthorizedError extends RosterError {
  constructor(message = 'a valid bearer token is required', options?: { cause?: unknown }) {
    super(401, 'UNAUTHORIZED', message, options);
    this.name = 'UnauthorizedError';
  }
}

/** 403: a valid token that does not grant this: another cluster, or a role without the right. */
export class ForbiddenError extends RosterError {
  constructor(message = 'the token does not grant this', options?: { cause?: unknown }) {
    super(403, 'FORBIDDEN', message, options);
    this.name = 'ForbiddenError';
  }
}

export class NodeNotFoundError extends RosterError {
  constructor(nodeKey: string, options?: { cause?: unknown }) {
    super(404, 'NODE_NOT_FOUND', `node ${nodeKey} is not registered or is down`, options);
    this.name = 'NodeNotFoundError';
  }
}

export class RouteNotFoundError extends RosterError {
  constructor(message = 'no such route') {
    super(404, 'NOT_FOUND', message);
    this.name = 'RouteNotFoundError';
  }
}

export class MethodNotAllowedError extends RosterError {
  readonly allow: string[];
  constructor(allow: string[]) {
    super(405, 'METHOD_NOT_ALLOWED', `method not allowed; allowed: ${allow.join(', ')}`);
    this.name = 'MethodNotAllowedError';
    this.allow = allow;
  }
}

export class StaleIncarnationError extends RosterError {
  constructor(nodeKey: string, current: number, given: number, options?: { cause?: unknown }) {
    super(
      409,
      'STALE_INCARNATION',
      `incarnation ${given} of ${nodeKey} is not the current one (${current}); a newer registration replaced it`,
      options,
    );
    this.name = 'StaleIncarnationError';
  }
}

/** 410: a list cursor whose revision the cluster no longer reaches (the server lost its state): read the list from its first page. */
export class CursorExpiredError extends RosterError {
  constructor(clusterId: string, cursorRevision: number, current: number) {
    super(410, 'CURSOR_EXPIRED', `the list of ${clusterId} at revision ${cursorRevision} cannot be continued: the cluster is at revision ${current}; read it again from the first page`);
    this.name = 'CursorExpiredError';
  }
}

export class PayloadTooLargeError extends RosterError {
  constructor(limitBytes: number) {
    super(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limitBytes} bytes`);
    this.name = 'PayloadTooLargeError';
  }
}

export class ThrottledError extends RosterError {
  constructor(message = 'the information center is busy; retry with backoff', options?: { cause?: unknown }) {
    super(429, 'THROTTLED', message, options);
    this.name = 'ThrottledError';
  }
}

/** Names of AWS SDK errors that mean "slow down", not "broken". */
const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TransactionConflictException',
]);

/**
 * Maps any thrown value to a status and a body safe to show a caller.
 * Unknown errors become an opaque 500; `internal` is true so the caller logs the original.
 */
export function toErrorBody(err: unknown): { statusCode: number; body: ErrorBody; internal: boolean } {
  if (err instanceof RosterError) {
    return { statusCode: err.statusCode, body: { error: { code: err.code, message: err.message } }, internal: false };
  }
  if (err instanceof Error && THROTTLING_ERRORS.has(err.name)) {
    return {
      statusCode: 429,
      body: { error: { code: 'THROTTLED', message: 'the information center is busy; retry with backoff' } },
      internal: true,
    };
  }
  return { statusCode: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } }, internal: true };
}
