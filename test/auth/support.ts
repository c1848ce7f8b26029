/**
 * The local runtime with `--auth` and a secret file the test knows, so the
 * test can mint every kind of token; plus a scan of the runtime's table
 * (through the shared DynamoDB Local) for "nothing changed" assertions.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { createDocumentClient } from '../../functions/core/aws.ts';
import { signToken, type Role } from '../../functions/core/auth.ts';
import { generateSecret } from '../../local/auth-secret.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { scanTable } from '../support/table.ts';

export interface AuthRuntime {
  runtime: SpawnedRuntime;
  httpUrl: string;
  wsUrl: string;
  secret: string;
  tableName: string;
  /** A token signed with the runtime's secret. */
  mint(cluster: string, role: Role, options?: { ttlSeconds?: number; now?: number; sub?: string }): Promise<string>;
  /** Every item of the runtime's table, sorted; the sweeper's heartbeat left out (it changes on its own). */
  scan(): Promise<Record<string, unknown>[]>;
  stop(): Promise<number | null>;
}

export async function startAuthRuntime(extraArgs: string[] = []): Promise<AuthRuntime> {
  const dir = mkdtempSync(path.join(tmpdir(), 'roster-auth-'));
  const secretFile = path.join(dir, 'secret');
  const secret = generateSecret();
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const tableName = `roster-auth-${randomUUID().slice(0, 8)}`;
  const endpoint = inject('dynamodbEndpoint');
  const runtime = await spawnRuntime({
    dynamodbEndpoint: endpoint,
    extraArgs: ['--auth', '--auth-secret-file', secretFile, '--table', tableName, ...extraArgs],
  });
  const db = createDocumentClient({ dynamodbEndpoint: endpoint });
  return {
    runtime,
    httpUrl: runtime.httpUrl,
    wsUrl: runtime.wsUrl,
    secret,
    tableName,
    mint: (cluster, role, options = {}) => signToken(secret, { cluster, role, ttlSeconds: options.ttlSeconds ?? 3600, now: options.now, sub: options.sub }),
    scan: async () => (await scanTable(db, tableName)).filter((i) => i.pk !== 'SWEEPER'),
    async stop() {
      db.destroy();
      const code = await runtime.stop();
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** A token that is well-formed but signed with another secret. */
export const wronglySigned = (cluster: string, role: Role): Promise<string> => signToken(generateSecret(), { cluster, role, ttlSeconds: 3600 });

/** A token that expired an hour ago. */
export const expiredWith = (secret: string, cluster: string, role: Role): Promise<string> =>
  signToken(secret, { cluster, role, ttlSeconds: 60, now: Date.now() - 3600_000 });

/** An unsigned token (`alg: none`) claiming to be an admin for every cluster. */
export function unsignedAdmin(): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: 'roster', sub: 'x', cluster: '*', role: 'admin', iat: now, exp: now + 3600 })}.`;
}

export interface Reply {
  status: number;
  text: string;
  body: unknown;
}

export async function call(httpUrl: string, method: string, urlPath: string, options: { token?: string; authorization?: string; body?: unknown } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${httpUrl}${urlPath}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body };
}
