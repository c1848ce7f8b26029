/**
 * The real thing, once: `npx cdk synth` as a user runs it, offline, with no
 * AWS credentials and an empty HOME, bundling every handler with the local
 * esbuild. Then the bundles themselves are run: they must work as ES modules
 * with the bundled AWS SDK, against DynamoDB Local.
 */
import { DEFAULT_LEASE_SECONDS } from '@roster/contract';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page, PageResult } from '../../functions/core/fanout.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES } from '../../functions/core/routes.ts';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { httpEvent, wsEvent } from '../support/events.ts';
import { createTestTable } from '../support/table.ts';
import { actionsOf, statementsOfRole, type TemplateJson, type TemplateResource } from './support.ts';

interface Run {
  code: number | null;
  output: string;
  ms: number;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, ms: Date.now() - started }));
  });
}

const scratch = mkdtempSync(path.join(tmpdir(), 'roster-synth-'));
const home = path.join(scratch, 'home');
const outDir = path.join(scratch, 'cdk.out');
let synth: Run;
let template: TemplateJson;

beforeAll(async () => {
  // No AWS_* (credentials, profile, region) and no CDK_* (default account/region) variables, and an
  // empty HOME (no ~/.aws): whatever the synth needs, it must not be an AWS identity.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(AWS_|CDK_)/.test(key)));
  env.HOME = home;
  synth = await run(
    'npx',
    ['cdk', 'synth', '--quiet', '--no-notices', '--output', outDir, '-c', 'sweepIntervalSeconds=2', '-c', 'disconnectGraceSeconds=3'],
    env,
  );
  const file = path.join(outDir, 'Roster.template.json');
  if (existsSync(file)) template = JSON.parse(readFileSync(file, 'utf8')) as TemplateJson;
}, 180_000);

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const functions = (): [string, TemplateResource][] =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Function');

/** The bundle of the function described as `Roster {name}` (optionally followed by `: …`). */
function bundleOf(name: string): string {
  const found = functions().find(([, r]) => {
    const description = String(r.Properties?.Description);
    return description === `Roster ${name}` || description.startsWith(`Roster ${name}:`);
  });
  if (!found) throw new Error(`no function described as Roster ${name}`);
  return path.join(outDir, String(found[1].Metadata?.['aws:asset:path']), 'index.mjs');
}

async function loadHandler<E, R>(name: string): Promise<(event: E) => Promise<R>> {
  const module = (await import(pathToFileURL(bundleOf(name)).href)) as { handler: (event: E) => Promise<R> };
  return module.handler;
}

type HttpHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

describe('npx cdk synth', () => {
  it('succeeds offline with no credentials, cdk-nag and Control Tower\'s proactive controls included, and writes the template', () => {
    expect(synth.code, synth.output.slice(-3000)).toBe(0);
    expect(existsSync(path.join(outDir, 'Roster.template.json'))).toBe(true);
    expect(synth.output).not.toMatch(/AwsSolutions-|CT\.[A-Z]+\.PR\.|Switching to Docker|docker/i);
    // Both plugins ran, and both concluded success.
    const report = JSON.parse(readFileSync(path.join(outDir, 'validation-report.json'), 'utf8')) as { pluginReports: { pluginName: string; conclusion: string }[] };
    expect(Object.fromEntries(report.pluginReports.map((r) => [r.pluginName, r.conclusion]))).toMatchObject({ 'cdk-validator-cfnguard': 'success' });
    expect(report.pluginReports.map((r) => r.conclusion)).toEqual(report.pluginReports.map(() => 'success'));
    console.info(`npx cdk synth took ${(synth.ms / 1000).toFixed(1)} s`);
  });

  it('takes detection settings from -c context values', () => {
    for (const [id, fn] of functions()) {
      const env = (fn.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env, id).toMatchObject({ SWEEP_INTERVAL_SECONDS: '2', DISCONNECT_GRACE_SECONDS: '3', DEFAULT_LEASE_SECONDS: String(DEFAULT_LEASE_SECONDS) });
    }
  });

  it('bundles every handler as one ES module with a source map, and no AWS SDK left external', () => {
    // One per handler module, plus the fan-out and its page function, the sweeper and the two authorizers.
    expect(functions()).toHaveLength(new Set([...HTTP_ROUTES.map((r) => r.handler), HTTP_DEFAULT_HANDLER]).size + WS_ROUTES.length + 5);
    for (const [id, fn] of functions()) {
      expect(fn.Metadata?.['aws:asset:is-bundled'], id).toBe(true);
      const dir = path.join(outDir, String(fn.Metadata?.['aws:asset:path']));
      const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
      expect(existsSync(path.join(dir, 'index.mjs.map')), id).toBe(true);
      // An external SDK would remain as a bare import the runtime resolves; a bundled one does not.
      expect(code, id).not.toMatch(/from\s*["']@aws-sdk\//);
      expect(code, id).not.toMatch(/from\s*["']@smithy\//);
    }
  });

  it('grants each function every DynamoDB item operation its bundle contains, and no other', () => {
    // Query and Scan are compiled into every DynamoDB client bundle whether used or not, so they
    // say nothing; every other operation appears only when the handler's code path calls it. A
    // transaction is authorized as its actions' item operations (transaction-apis-iam.html): the
    // sweeper's hold only updates, so a bundle that sends TransactWriteItems needs UpdateItem.
    const telling = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'BatchGetItem'];
    for (const [id, fn] of functions()) {
      const code = readFileSync(path.join(outDir, String(fn.Metadata?.['aws:asset:path']), 'index.mjs'), 'utf8');
      const transacts = code.includes('"TransactWriteItems"');
      const inBundle = [...new Set([...telling.filter((op) => code.includes(`"${op}"`)), ...(transacts ? ['UpdateItem'] : [])])].sort();
      const role = (fn.Properties?.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const granted = [
        ...new Set(
          statementsOfRole(template, role)
            .flatMap(actionsOf)
            .filter((a) => a.startsWith('dynamodb:'))
            .map((a) => a.slice('dynamodb:'.length))
            .filter((a) => telling.includes(a)),
        ),
      ].sort();
      expect(granted, `${id}: infra/table-access.ts must match what the handler calls`).toEqual(inBundle);
    }
  });
});

describe('the bundles', () => {
  it('answer unknown routes with the JSON 404 and 405 (no AWS involved)', async () => {
    const handler = await loadHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>('HTTP $default');
    const missing = await handler(httpEvent({ method: 'GET', path: '/v1/nope' }, '$default'));
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(String(missing.body))).toMatchObject({ error: { code: 'NOT_FOUND' } });
    const wrongMethod = await handler(httpEvent({ method: 'PATCH', path: '/v1/health' }, '$default'));
    expect(wrongMethod.statusCode).toBe(405);
    expect(wrongMethod.headers).toMatchObject({ allow: 'GET' });
  });

  it('register, read and report health through the bundled AWS SDK against DynamoDB Local', async () => {
    // Sets TABLE_NAME and DYNAMODB_ENDPOINT, which the bundles read at their first call.
    await createTestTable();
    const register: HttpHandler = await loadHandler('HTTP PUT /v1/clusters/{clusterId}/nodes/{nodeId}');
    const params = { clusterId: 'bundled', nodeId: 'n1' };
    const created = await register(
      httpEvent({ method: 'PUT', path: '/v1/clusters/bundled/nodes/n1', body: { metadata: { zone: 'a' } } }, 'PUT /v1/clusters/{clusterId}/nodes/{nodeId}', params),
    );
    expect(created.statusCode, String(created.body)).toBe(201);

    const getNode: HttpHandler = await loadHandler('HTTP GET /v1/clusters/{clusterId}/nodes/{nodeId}');
    const read = await getNode(httpEvent({ method: 'GET', path: '/v1/clusters/bundled/nodes/n1' }, 'GET /v1/clusters/{clusterId}/nodes/{nodeId}', params));
    expect(read.statusCode).toBe(200);
    expect(JSON.parse(String(read.body))).toMatchObject({ node: { key: 'bundled/n1', status: 'UP', metadata: { zone: 'a' } } });

    // One sweep (SWEEP_LOOP_SECONDS is unset here): queries the expiry index, writes its heartbeat.
    const sweeper = await loadHandler<unknown, { sweeps: number; failures: number }>('sweeper');
    expect(await sweeper({})).toMatchObject({ sweeps: 1, failures: 0 });

    const health: HttpHandler = await loadHandler('HTTP GET /v1/health');
    const ok = await health(httpEvent({ method: 'GET', path: '/v1/health' }, 'GET /v1/health'));
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(String(ok.body))).toMatchObject({ status: 'ok', sweeper: { lastSweepAt: expect.any(String) } });
  });

  it('load the authorizers (jose, the Secrets Manager client) as ES modules; a request without a bearer token is refused before any secret is read', async () => {
    delete process.env.TOKEN_SECRET_ARN;
    const http = await loadHandler<Record<string, unknown>, { isAuthorized: boolean; context: Record<string, unknown> }>('HTTP authorizer');
    const refused = await http({ type: 'REQUEST', routeKey: 'GET /v1/clusters', identitySource: ['Basic abc'], headers: { authorization: 'Basic abc' } });
    expect(refused).toEqual({ isAuthorized: true, context: { denied: 'UNAUTHORIZED', reason: 'the Authorization header must be "Bearer <token>"' } });
    const ws = await loadHandler<Record<string, unknown>, unknown>('WebSocket $connect authorizer');
    await expect(ws({ methodArn: 'arn:aws:execute-api:us-east-1:1:a/live/$connect', queryStringParameters: { token: 'not-a-jwt' } })).rejects.toThrow(/^Unauthorized$/);
  });

  it('load the fan-out (management API client) and the WebSocket ping as ES modules', async () => {
    process.env.WEBSOCKET_CALLBACK_URL = 'http://127.0.0.1:9/live';
    const fanout = await loadHandler<{ Records: unknown[] }, { batchItemFailures: unknown[] }>('stream fan-out');
    expect(await fanout({ Records: [] })).toEqual({ batchItemFailures: [] });
    const ping = await loadHandler<ReturnType<typeof wsEvent>, { statusCode: number; body?: string }>('WebSocket ping');
    const pong = await ping(wsEvent('c-1', 'ping', 'MESSAGE', { body: '{"action":"ping"}' }));
    expect(JSON.parse(String(pong.body))).toMatchObject({ type: 'PONG' });
  });

  it('post a page through the bundled poster (undici): one signed PostToConnection per subscriber, a 410 reported gone', async () => {
    await createTestTable();
    const received: { method: string; path: string; authorization: string; body: string }[] = [];
    const endpoint = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', path: req.url ?? '', authorization: String(req.headers.authorization ?? ''), body });
        res.writeHead(req.url?.endsWith('/gone') ? 410 : 200).end();
      });
    });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    try {
      process.env.WEBSOCKET_CALLBACK_URL = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/live`;
      const page = await loadHandler<Page, PageResult>('fan-out page');
      const event = '{"type":"NODE_REGISTERED","clusterId":"c1","revision":1}';
      const now = Date.now();
      const subscribers = ['live', 'gone'].map((connectionId) => ({ connectionId, connectedAt: now, batch: false }));
      // Young connections: the 410 is reported, and nothing is removed from the table.
      expect(await page({ clusterId: 'c1', single: [event], revisions: [1], subscribers, now })).toEqual({ delivered: 1, messages: 1, gone: ['gone'], failed: 0 });
      expect(received.map((r) => `${r.method} ${r.path} ${r.body}`).sort()).toEqual([`POST /live/@connections/gone ${event}`, `POST /live/@connections/live ${event}`]);
      for (const { authorization } of received) expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/[a-z0-9-]+\/execute-api\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/);
    } finally {
      endpoint.closeAllConnections();
      await new Promise((resolve) => endpoint.close(resolve));
    }
  });

  it('serve the console page written next to the console bundle, gzipped, with the WebSocket URL and a CSP naming only it', async () => {
    process.env.WEBSOCKET_URL = 'wss://abc123.execute-api.eu-west-1.amazonaws.com/live';
    expect(existsSync(path.join(path.dirname(bundleOf('HTTP GET /console')), 'console.html'))).toBe(true);
    const handler: HttpHandler = await loadHandler('HTTP GET /console');
    const res = await handler(httpEvent({ method: 'GET', path: '/console', headers: { 'accept-encoding': 'gzip, br' } }, 'GET /console'));
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({ 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'gzip', 'x-content-type-options': 'nosniff' });
    const html = gunzipSync(Buffer.from(String(res.body), 'base64')).toString('utf8');
    expect(html).toContain('<meta name="roster-ws-url" content="wss://abc123.execute-api.eu-west-1.amazonaws.com/live">');
    expect(String(res.headers?.['content-security-policy'])).toContain("connect-src 'self' wss://abc123.execute-api.eu-west-1.amazonaws.com;");
  });
});
