/**
 * The local runtime's token signing secret: generated per run, or kept in a
 * file (`--data-dir DIR` keeps it in `DIR/auth-secret`; `--auth-secret-file`
 * names any file) so tokens outlive a restart and `roster token create
 * --data-dir DIR` can sign with it.
 *
 * The file holds one line: 64 characters of base64url from 48 random bytes
 * (384 bits), used as raw key material like the generated AWS secret. It is
 * created readable by its owner only.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { keyOf, signToken } from '../functions/core/auth.ts';

export const SECRET_FILE_NAME = 'auth-secret';

export const secretFileIn = (dataDir: string): string => join(dataDir, SECRET_FILE_NAME);

/** A new secret: 48 random bytes as 64 base64url characters. */
export function generateSecret(): string {
  return randomBytes(48).toString('base64url');
}

export class SecretFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretFileError';
  }
}

/** Reads a secret file; the message of a failure names the file, never its content. */
export async function readSecretFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new SecretFileError(`cannot read the token secret ${path}: ${reason}`, { cause: err });
  }
  const secret = text.trim();
  try {
    keyOf(secret);
  } catch (err) {
    throw new SecretFileError(`the token secret in ${path} is too short (at least 32 bytes)`, { cause: err });
  }
  return secret;
}

/** The secret in `path`, created (owner-only) if the file does not exist. */
export async function ensureSecretFile(path: string): Promise<{ secret: string; created: boolean }> {
  const exists = await stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  if (exists) return { secret: await readSecretFile(path), created: false };
  await mkdir(dirname(path), { recursive: true });
  const secret = generateSecret();
  // `wx`: never overwrite a secret another process wrote meanwhile (its tokens would stop working).
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { secret: await readSecretFile(path), created: false };
    throw err;
  }
  try {
    await handle.writeFile(`${secret}\n`, 'utf8');
  } finally {
    await handle.close();
  }
  // Exactly owner read/write, whatever the umask made of the mode given to open().
  await chmod(path, 0o600);
  return { secret, created: true };
}

/** Lifetime of the admin token `--auth` prints. */
export const ADMIN_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * A runtime's signing secret — from `authSecretFile`, else `{dataDir}/auth-secret`,
 * else generated for this run — and an admin token (role `admin`, cluster `*`) signed with it.
 */
export async function localAuth(options: { authSecretFile?: string; dataDir?: string }): Promise<{ secret: string; adminToken: string }> {
  const file = options.authSecretFile ?? (options.dataDir ? secretFileIn(options.dataDir) : undefined);
  const secret = file ? (await ensureSecretFile(file)).secret : generateSecret();
  const adminToken = await signToken(secret, { cluster: '*', role: 'admin', sub: 'local-admin', ttlSeconds: ADMIN_TOKEN_TTL_SECONDS });
  return { secret, adminToken };
}
