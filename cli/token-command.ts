/**
 * `roster token create`: signs a bearer token with the information center's
 * secret — read from Secrets Manager with your AWS credentials (the stack's
 * `TokenSecretArn` output), or locally from the runtime's secret file.
 * Prints the token alone on stdout, so `export ROSTER_TOKEN=$(roster token create …)` works.
 */
import { MAX_TOKEN_TTL_SECONDS, ROLES, isRole, signToken } from '../functions/core/auth.ts';
import { parse } from './args.ts';
import { CliError, type Command, showHelp, UsageError } from './command.ts';
import { out } from './output.ts';
import { stackOutputs } from './target-flags.ts';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `30d`, `12h`, `90m`, `3600s` or `3600` → seconds. */
export function parseTtl(raw: string): number {
  const match = /^(\d{1,9})([smhd]?)$/.exec(raw.trim());
  const seconds = match ? Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1) : NaN;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_TOKEN_TTL_SECONDS) {
    throw new UsageError(`--ttl must be a lifetime like 30d, 12h, 90m or 3600s, at most ${MAX_TOKEN_TTL_SECONDS / 86_400}d; not "${raw}"`);
  }
  return seconds;
}

/** The `TokenSecretArn` output of the one stack (or `--stack`) in a `cdk deploy --outputs-file` file. */
export async function secretArnFromOutputs(file: string, stack: string | undefined): Promise<string> {
  return (await stackOutputs(file, stack, 'TokenSecretArn', ' (deploy the current stack)')).TokenSecretArn as string;
}

/** The current value of the secret, read with the caller's AWS credentials. */
async function secretFromAws(arn: string): Promise<string> {
  // Loaded only here: the other commands never need the AWS SDK.
  const { readSecretVersions, secretsManagerClient } = await import('../functions/core/token-secret.ts');
  const client = secretsManagerClient(arn);
  try {
    const [current] = await readSecretVersions(client, arn);
    if (!current) throw new Error('the secret has no value');
    return current;
  } catch (err) {
    const reason = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message.split('\n')[0]}` : String(err);
    throw new CliError(`cannot read the token secret ${arn} with your AWS credentials: ${reason}`);
  } finally {
    client.destroy();
  }
}

/**
 * The local runtime's secret. It exists once a runtime started with `--auth`
 * and that file (or data directory) has created it: before that, say so and
 * what to run, rather than only "no such file".
 */
async function secretFromFile(file: string, source: string): Promise<string> {
  const { readSecretFile, SecretFileError } = await import('../local/auth-secret.ts');
  try {
    return await readSecretFile(file);
  } catch (err) {
    if (!(err instanceof SecretFileError)) throw err;
    if ((err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new CliError(
        `there is no token secret in ${file} yet: the local runtime creates it the first time it starts with --auth ${source}. ` +
          `Run npm start -- --auth ${source} once (it may go on running), then this command again`,
      );
    }
    throw new CliError(err.message);
  }
}

export const tokenCommand: Command = {
  summary: 'create a bearer token (roster token create --help)',
  help: `Usage: roster token create --cluster <id|*> --role <role> [--ttl 30d] [--sub NAME] <secret source>

Signs a bearer token and prints it on stdout (use it as --token or ROSTER_TOKEN).

  --cluster ID       the cluster the token is for, or * for every cluster
  --role ROLE        node    register, keep alive, deregister, read and subscribe in the cluster
                     reader  read and subscribe
                     admin   everything; with --cluster * also the cluster list
  --ttl TTL          lifetime: 30d, 12h, 90m or 3600s (default 30d, at most 366d)
  --sub NAME         who the token is for; shows in logs (default <role>:<cluster>)
  -h, --help         show this help

Secret source (exactly one):
  --outputs FILE     the TokenSecretArn of \`cdk deploy --outputs-file FILE\`, read from
                     Secrets Manager with your AWS credentials (--stack NAME to choose)
  --secret-arn ARN   the secret itself, read the same way
  --data-dir DIR     the local runtime's secret, DIR/auth-secret (roster serve --auth --data-dir DIR)
  --secret-file FILE the local runtime's secret file (roster serve --auth --auth-secret-file FILE)
`,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        cluster: { type: 'string' },
        role: { type: 'string' },
        ttl: { type: 'string' },
        sub: { type: 'string' },
        outputs: { type: 'string' },
        stack: { type: 'string' },
        'secret-arn': { type: 'string' },
        'data-dir': { type: 'string' },
        'secret-file': { type: 'string' },
      },
      ['action'],
    );
    if (parsed.help) return showHelp(this);
    const [action] = parsed.args as [string];
    if (action !== 'create') throw new UsageError(`unknown action "${action}"; the action is "create"`);
    const values = parsed.values;
    if (values.cluster === undefined) throw new UsageError('--cluster is required (a cluster id, or * for every cluster)');
    if (values.role === undefined || !isRole(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    const ttlSeconds = parseTtl(values.ttl ?? '30d');
    const sources = (['outputs', 'secret-arn', 'data-dir', 'secret-file'] as const).filter((s) => values[s] !== undefined);
    if (sources.length !== 1) throw new UsageError('name exactly one secret source: --outputs, --secret-arn, --data-dir or --secret-file');
    if (values.stack !== undefined && values.outputs === undefined) throw new UsageError('--stack goes with --outputs');

    let secret: string;
    if (values.outputs !== undefined) secret = await secretFromAws(await secretArnFromOutputs(values.outputs, values.stack));
    else if (values['secret-arn'] !== undefined) secret = await secretFromAws(values['secret-arn']);
    else if (values['data-dir'] !== undefined) {
      const { secretFileIn } = await import('../local/auth-secret.ts');
      secret = await secretFromFile(secretFileIn(values['data-dir']), `--data-dir ${values['data-dir']}`);
    } else secret = await secretFromFile(values['secret-file'] as string, `--auth-secret-file ${values['secret-file']}`);

    let token: string;
    try {
      token = await signToken(secret, { cluster: values.cluster, role: values.role, sub: values.sub, ttlSeconds });
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    out(token);
    return 0;
  },
};
