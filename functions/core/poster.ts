/**
 * The fan-out's poster, its path to API Gateway's `@connections` management API:
 * `PostToConnection` as one SigV4-signed HTTP request over a keep-alive
 * connection pool, without the SDK's per-request machinery.
 *
 * Why not the SDK client. A fan-out posts the same bytes to thousands of
 * connections; profiled on the dev box, more than half of the CPU of a post
 * through `ApiGatewayManagementApiClient` was the SDK's middleware stack,
 * endpoint resolution, serde and retry bookkeeping, around 0.4 ms per post.
 * This keeps what matters of it:
 *
 * - SigV4 with the client's own region, credentials (the default provider
 *   chain, refreshed by the SDK) and hash, and `@smithy/signature-v4`'s
 *   signing key (post-signer.ts: the signature `SignatureV4` computes, for
 *   this one request shape, in two hashes); the payload hash is computed
 *   once per message, not once per post;
 * - the wire shape of PostToConnection: `POST {stage}/@connections/{id}` with
 *   the raw message as the body (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html);
 * - its outcomes: 200 delivered, 410 `GoneException` gone, 429 throttled
 *   (`LimitExceededException`: the account's request quota, or the client's
 *   buffer — https://docs.aws.amazon.com/AWSJavaSDK/latest/javadoc/com/amazonaws/services/apigatewaymanagementapi/model/package-summary.html),
 *   anything else failed; 5xx and network errors are retried with jittered
 *   backoff, as the SDK's standard retry mode does, up to `maxAttempts`.
 *   A throttled post is not retried here: its caller retries that one
 *   connection after a longer backoff while it posts to the others
 *   (fanout.ts, `deliverPage`), instead of holding one of its sockets.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { Pool } from 'undici';
import { PostSigner } from './post-signer.ts';

/**
 * What the poster made of one PostToConnection, as its caller sees it (the
 * local runtime's own side of the call, the gateway's, has only the first
 * two: `BackendPostOutcome` in local/websocket-backend.ts).
 */
export type PosterOutcome = 'delivered' | 'gone' | 'throttled' | 'failed';

/** One message, ready to post to any number of connections. */
export interface Payload {
  /** The message's UTF-8 bytes, made once and sent as they are to every connection (undici writes headers and body in one write). */
  body: Buffer;
  /** Hex SHA-256 of `body`, the signature's payload hash. */
  sha256: string;
}

export const payloadOf = (text: string): Payload => {
  const body = Buffer.from(text);
  return { body, sha256: createHash('sha256').update(body).digest('hex') };
};

export interface Poster {
  post(connectionId: string, payload: Payload): Promise<PosterOutcome>;
  close(): void;
}

export interface PosterOptions {
  /** Sockets kept open to the endpoint. @default 128 */
  maxSockets?: number;
  /** Attempts per post (the SDK client's maxAttempts). @default 2 */
  maxAttempts?: number;
  /** A post that has no answer after this long counts as a failed attempt. @default 10000 */
  timeoutMs?: number;
}

/** Status codes worth another attempt here: server-side errors (the SDK's standard retry mode; throttling is the caller's). */
const retryable = (status: number): boolean => status >= 500;

function jitteredDelay(attempt: number): Promise<void> {
  // Full jitter on a 100 ms base doubling per attempt, the SDK's default backoff.
  const ms = Math.random() * 100 * 2 ** (attempt - 1);
  return sleep(ms);
}

/**
 * A `Poster` for the callback URL `url` (the stage's `@connections`
 * endpoint), signing with the SDK client's own configuration: its region,
 * credentials (the default provider chain, refreshed by the SDK) and hash.
 */
export function posterFor(client: ApiGatewayManagementApiClient, url: string, options: PosterOptions = {}): Poster {
  const { config } = client;
  const endpoint = new URL(url);
  const signer = new PostSigner({ region: config.region, credentials: config.credentials, sha256: config.sha256 });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(endpoint.origin, {
    connections: options.maxSockets ?? 128,
    // A post with no answer in time is a failed attempt (retried like a 5xx).
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: timeoutMs,
  });
  const host = endpoint.host;
  const base = endpoint.pathname.replace(/\/$/, '');
  const maxAttempts = options.maxAttempts ?? 2;

  const once = async (connectionId: string, payload: Payload): Promise<number> => {
    // The SDK's encoding of the connection id: every reserved character percent-encoded.
    const path = `${base}/@connections/${encodeURIComponent(connectionId)}`;
    // undici sends `content-length` from the body itself; it is not among the signed headers.
    const headers = await signer.headers(host, path, payload.sha256);
    // undici sends the `host` header given (the signed value) instead of its own.
    const { statusCode, body } = await pool.request({ method: 'POST', path, headers, body: payload.body });
    // The answer's body (empty, or an error document) is read and dropped, which frees the socket.
    await body.dump();
    return statusCode;
  };

  return {
    async post(connectionId, payload) {
      for (let attempt = 1; ; attempt++) {
        let status: number | undefined;
        try {
          status = await once(connectionId, payload);
        } catch {
          status = undefined; // a network error or timeout: retried like a 5xx
        }
        if (status !== undefined && status >= 200 && status < 300) return 'delivered';
        if (status === 410) return 'gone';
        if (status === 429) return 'throttled';
        if ((status !== undefined && !retryable(status)) || attempt >= maxAttempts) return 'failed';
        await jitteredDelay(attempt);
      }
    },
    close: () => void pool.destroy().catch(() => undefined),
  };
}
