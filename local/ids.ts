/** Identifiers and timestamps shaped like the ones API Gateway puts into its events. */
import { randomBytes } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random bytes drawn from a pool: an id per `@connections` post or request adds up, and one large draw is cheaper than many small ones. */
const POOL_BYTES = 15 * 512;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;

/**
 * An API-Gateway-like id: 15 characters and a trailing `=` (e.g. `L0SM9cOFvHcCIhw=`).
 * Only alphanumerics, so an id never needs escaping in a URL path or a DynamoDB key.
 */
export function gatewayId(): string {
  if (offset + 15 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    offset = 0;
  }
  let id = '';
  for (let i = offset; i < offset + 15; i++) id += ALPHANUMERIC[(pool[i] as number) % ALPHANUMERIC.length];
  offset += 15;
  return `${id}=`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** API Gateway's `requestContext.time`: `12/Mar/2020:19:03:58 +0000`. */
export function gatewayTime(epochMs: number): string {
  const d = new Date(epochMs);
  return (
    `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`
  );
}
