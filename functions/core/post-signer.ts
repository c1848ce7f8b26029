/**
 * SigV4 for the one request the fan-out sends thousands of times a second:
 * `POST {stage}/@connections/{id}` with a known payload hash and three signed
 * headers. `SignatureV4.sign` builds and canonicalises a general request each
 * time and runs three hashes through async wrappers: in a profiled fan-out,
 * more than half of a post's CPU (docs/how-it-works/fanout-sizing.md has the
 * figures). This does the same signature in two hashes on node:crypto:
 *
 * - the signing key comes from `@smithy/signature-v4`'s own `getSigningKey`,
 *   once per day, region and set of credentials (the SDK's default provider
 *   chain refreshes them; a new set gets a new key);
 * - the canonical request is written for this shape only: the path's segments
 *   escaped again (SigV4 double-encodes the path for every service but S3), no
 *   query, `host;x-amz-content-sha256;x-amz-date` (plus
 *   `x-amz-security-token` with temporary credentials), the given payload hash.
 *
 * test/handlers/poster.test.ts checks the result against
 * `SignatureV4.sign` itself (and against a server that recomputes it).
 */
import { createHash, createHmac } from 'node:crypto';
import { createScope, getSigningKey, type SignatureV4 } from '@smithy/signature-v4';

const SERVICE = 'execute-api';

/** RFC 3986 escaping of one path segment, as SigV4 wants it (`encodeURIComponent` leaves `!'()*`). */
const escapeSegment = (segment: string): string =>
  encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** `20261130T101500Z` and `20261130`. */
function amzDates(date: Date): { amzDate: string; shortDate: string } {
  const amzDate = date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  return { amzDate, shortDate: amzDate.slice(0, 8) };
}

/**
 * Credentials are asked of the SDK's provider (which memoises and refreshes
 * them) at most this often, and always again within five minutes of their expiry.
 */
const CREDENTIALS_REUSE_MS = 60_000;

type SignerInit = ConstructorParameters<typeof SignatureV4>[0];
type Credentials = Awaited<ReturnType<Exclude<SignerInit['credentials'], { accessKeyId: string }>>>;

export interface PostSignerOptions {
  /** The SDK client's region provider. */
  region: () => Promise<string>;
  /** The SDK client's credential provider (memoised and refreshed by the SDK). */
  credentials: () => Promise<Credentials>;
  /** The SDK client's hash (for the signing key). */
  sha256: Parameters<typeof getSigningKey>[0];
}

export class PostSigner {
  private region: string | undefined;
  private key: { id: string; bytes: Uint8Array } | undefined;
  private credentials: { value: Credentials; until: number } | undefined;
  private dates: { second: number; amzDate: string; shortDate: string } | undefined;

  constructor(private readonly options: PostSignerOptions) {}

  private async currentCredentials(now: number): Promise<Credentials> {
    if (this.credentials && now < this.credentials.until) return this.credentials.value;
    const value = await this.options.credentials();
    const expires = value.expiration ? value.expiration.getTime() - 5 * 60_000 : Infinity;
    this.credentials = { value, until: Math.min(now + CREDENTIALS_REUSE_MS, expires) };
    return value;
  }

  /** The request's dates, formatted once per second. */
  private datesOf(date: Date): { amzDate: string; shortDate: string } {
    const second = Math.floor(date.getTime() / 1000);
    if (this.dates?.second !== second) this.dates = { second, ...amzDates(date) };
    return this.dates;
  }

  private async signingKey(credentials: Credentials, shortDate: string, region: string): Promise<Uint8Array> {
    const id = `${shortDate}|${credentials.accessKeyId}|${credentials.secretAccessKey}|${credentials.sessionToken ?? ''}`;
    if (this.key?.id !== id) this.key = { id, bytes: await getSigningKey(this.options.sha256, credentials, shortDate, region, SERVICE) };
    return this.key.bytes;
  }

  /** The headers that sign a POST of a body with hash `payloadHash` to `path` on `host` (as sent in `Host`). */
  async headers(host: string, path: string, payloadHash: string, date = new Date()): Promise<Record<string, string>> {
    this.region ??= await this.options.region();
    const credentials = await this.currentCredentials(date.getTime());
    const { amzDate, shortDate } = this.datesOf(date);
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
    if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
    const names = Object.keys(headers).sort();
    const canonical = [
      'POST',
      path.split('/').map(escapeSegment).join('/'),
      '',
      ...names.map((name) => `${name}:${headers[name]}`),
      '',
      names.join(';'),
      payloadHash,
    ].join('\n');
    const scope = createScope(shortDate, this.region, SERVICE);
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
    const signature = createHmac('sha256', await this.signingKey(credentials, shortDate, this.region)).update(stringToSign).digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return headers;
  }
}
