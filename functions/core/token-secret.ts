/**
 * Where the authorizers get the token signing secret.
 *
 * On AWS: Secrets Manager, the secret named by `TOKEN_SECRET_ARN` (only the
 * authorizer functions have it, and only they may read it). It is read at
 * the first verification and again once `SECRET_CACHE_MS` has passed, so a
 * rotated secret is picked up within minutes without a redeploy. Both the
 * current and the previous version (`AWSCURRENT`, `AWSPREVIOUS`) verify, so
 * tokens signed just before a rotation keep working until the next one.
 *
 * Locally: whatever the local runtime (or a test) put in with `useTokenSecret`.
 *
 * The secret never leaves this module except as key bytes for `jose`; it is
 * never logged.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { keyOf } from './auth.ts';
import { logger } from './log.ts';

/** How long a secret read from Secrets Manager is used before it is read again. */
export const SECRET_CACHE_MS = 5 * 60_000;

let injected: readonly Uint8Array[] | undefined;
let cached: { keys: readonly Uint8Array[]; readAt: number } | undefined;
let reading: Promise<readonly Uint8Array[]> | undefined;
let client: SecretsManagerClient | undefined;

/** Sets the secret directly (the local runtime, tests); `undefined` goes back to the environment. */
export function useTokenSecret(secret: string | undefined): void {
  injected = secret === undefined ? undefined : [keyOf(secret)];
  cached = undefined;
}

/** A Secrets Manager client for `arn`'s region, honouring `SECRETSMANAGER_ENDPOINT` (LocalStack). */
export function secretsManagerClient(arn?: string): SecretsManagerClient {
  const region = arn?.split(':')[3];
  const endpoint = process.env.SECRETSMANAGER_ENDPOINT || undefined;
  return new SecretsManagerClient({ ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}), maxAttempts: 3 });
}

/** The secret's current value and, when there is one, its previous value (newest first). */
export async function readSecretVersions(sm: SecretsManagerClient, arn: string): Promise<string[]> {
  const read = async (stage: string): Promise<string | undefined> => {
    try {
      const out = await sm.send(new GetSecretValueCommand({ SecretId: arn, VersionStage: stage }));
      return out.SecretString;
    } catch (err) {
      // A secret that was never rotated has no AWSPREVIOUS version.
      if (stage === 'AWSPREVIOUS' && err instanceof Error && err.name === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  };
  const [current, previous] = await Promise.all([read('AWSCURRENT'), read('AWSPREVIOUS')]);
  if (!current) throw new Error('the token secret has no string value');
  return previous && previous !== current ? [current, previous] : [current];
}

async function readFromSecretsManager(arn: string): Promise<readonly Uint8Array[]> {
  client ??= secretsManagerClient(arn);
  const versions = await readSecretVersions(client, arn);
  return versions.map(keyOf);
}

/**
 * The keys tokens are verified with. Throws when there is no secret at all
 * (a misconfiguration) or Secrets Manager cannot be read and nothing is
 * cached; a failed re-read keeps using the cached keys.
 */
export async function tokenKeys(now = Date.now()): Promise<readonly Uint8Array[]> {
  if (injected) return injected;
  if (cached && now - cached.readAt < SECRET_CACHE_MS) return cached.keys;
  const arn = process.env.TOKEN_SECRET_ARN;
  if (!arn) throw new Error('Configuration error: TOKEN_SECRET_ARN is not set');
  reading ??= readFromSecretsManager(arn).finally(() => {
    reading = undefined;
  });
  try {
    const keys = await reading;
    cached = { keys, readAt: now };
    return keys;
  } catch (err) {
    if (!cached) throw err;
    logger.warn('could not re-read the token secret; using the cached one', { error: err as Error });
    // Try again in 30 s, not on every request meanwhile.
    cached = { keys: cached.keys, readAt: now - SECRET_CACHE_MS + 30_000 };
    return cached.keys;
  }
}
