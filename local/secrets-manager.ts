/**
 * Secrets Manager's `GetSecretValue`, locally, for the one secret the stack
 * has: the token signing secret the authorizers read (`TOKEN_SECRET_ARN`).
 * With it the authorizers read their secret exactly as on AWS — a signed
 * `GetSecretValue` that IAM allows or refuses for their role — instead of
 * being handed it.
 *
 * Wire shape (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html):
 * JSON 1.1, `X-Amz-Target: secretsmanager.GetSecretValue`, body `{SecretId,
 * VersionStage?}`; the answer `{ARN, Name, VersionId, SecretString,
 * VersionStages, CreatedDate}`. The secret has one version, `AWSCURRENT`;
 * any other stage (the authorizers also ask for `AWSPREVIOUS`) or another
 * secret is `ResourceNotFoundException`. It listens on its own loopback port.
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { readBody } from './http-api.ts';
import type { RuntimeLog } from './log.ts';
import { listenOnLoopback } from './loopback.ts';

export interface SecretsManagerApi {
  url: string;
  close(): Promise<void>;
}

export async function startSecretsManager(secret: { arn: string; value: string }, log: RuntimeLog): Promise<SecretsManagerApi> {
  const versionId = randomUUID();
  const name = secret.arn.split(':').pop()?.replace(/-[A-Za-z0-9]{6}$/, '') ?? 'secret';
  const server = createServer((req, res) => {
    const answer = (status: number, body: unknown, errorType?: string) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': randomUUID(),
        ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
      });
      res.end(text);
    };
    readBody(req, 64 * 1024).then(
      (body) => {
        const target = req.headers['x-amz-target'];
        if (target !== 'secretsmanager.GetSecretValue') {
          return answer(400, { __type: 'InvalidRequestException', Message: `the local runtime serves GetSecretValue only, not ${String(target)}` });
        }
        let input: { SecretId?: unknown; VersionStage?: unknown };
        try {
          input = JSON.parse(body.toString('utf8')) as typeof input;
        } catch {
          return answer(400, { __type: 'SerializationException', Message: 'the request body is not JSON' });
        }
        const stage = input.VersionStage ?? 'AWSCURRENT';
        if ((input.SecretId !== secret.arn && input.SecretId !== name) || stage !== 'AWSCURRENT') {
          return answer(400, { __type: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret value for staging label: " + String(stage) });
        }
        answer(200, { ARN: secret.arn, Name: name, VersionId: versionId, SecretString: secret.value, VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 });
      },
      (err: unknown) => {
        log.debug('local Secrets Manager: a request could not be read', { error: err as Error });
        res.destroy();
      },
    );
  });
  return listenOnLoopback(server);
}
