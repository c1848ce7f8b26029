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
 * Locally: the secret itself, which the local runtime (or a test) gives its
 * scope (functions/core/scope.ts: `tokenSecret`).
 *
 * The secret never leaves this module except as key bytes for `jose`; it is
 * never logged.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { keyOf } from './auth.ts';
import { localOverrides, requestHandlerFor } from './aws.ts';
import { logger } from './log.ts';
import { perScope, type Environment, type Scope } from './scope.ts';

/** How long a secret read from Secrets Manager is used before it is read again. */
export const SECRET_CACHE_MS = 5 * 60_000;

/** A Secrets Manager client for `arn`'s region, honouring `SECRETSMANAGER_ENDPOINT` (LocalStack, the local runtime). */
export function secretsManagerClient(arn?: string, env: Environment = process.env): SecretsManagerClient {
  const region = arn?.split(':')[3];
  const endpoint = env.SECRETSMANAGER_ENDPOINT || undefined;
  return new SecretsManagerClient({ ...localOverrides(endpoint), ...(region ? { region } : {}), requestHandler: requestHandlerFor(), maxAttempts: 3 });
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

/**
 * The keys of one scope: the secret it was given, or the one Secrets Manager
 * holds, read at the first verification and again once `SECRET_CACHE_MS` has passed.
 */
class TokenKeys {
  private readonly given: readonly Uint8Array[] | undefined;
  private cached: { keys: readonly Uint8Array[]; readAt: number } | undefined;
  private reading: Promise<readonly Uint8Array[]> | undefined;
  private client: SecretsManagerClient | undefined;

  constructor(private readonly scope: Scope) {
    this.given = scope.tokenSecret === undefined ? undefined : [keyOf(scope.tokenSecret)];
  }

  private async readFromSecretsManager(arn: string): Promise<readonly Uint8Array[]> {
    if (!this.client) {
      const client = secretsManagerClient(arn, this.scope.env);
      this.scope.onDispose(() => client.destroy());
      this.client = client;
    }
    const versions = await readSecretVersions(this.client, arn);
    return versions.map(keyOf);
  }

  async get(now: number): Promise<readonly Uint8Array[]> {
    if (this.given) return this.given;
    if (this.cached && now - this.cached.readAt < SECRET_CACHE_MS) return this.cached.keys;
    const arn = this.scope.env.TOKEN_SECRET_ARN;
    if (!arn) throw new Error('Configuration error: TOKEN_SECRET_ARN is not set');
    this.reading ??= this.readFromSecretsManager(arn).finally(() => {
      this.reading = undefined;
    });
    try {
      const keys = await this.reading;
      this.cached = { keys, readAt: now };
      return keys;
    } catch (err) {
      if (!this.cached) throw err;
      logger.warn('could not re-read the token secret; using the cached one', { error: err as Error });
      // Try again in 30 s, not on every request meanwhile.
      this.cached = { keys: this.cached.keys, readAt: now - SECRET_CACHE_MS + 30_000 };
      return this.cached.keys;
    }
  }
}

const scopedKeys = perScope((scope) => new TokenKeys(scope));

/**
 * The keys tokens are verified with. Throws when there is no secret at all
 * (a misconfiguration) or Secrets Manager cannot be read and nothing is
 * cached; a failed re-read keeps using the cached keys.
 */
export function tokenKeys(now = Date.now()): Promise<readonly Uint8Array[]> {
  return scopedKeys().get(now);
}
