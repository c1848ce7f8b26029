/**
 * The local runtime runs the stack's synthesized template, not its own idea
 * of it: the deployment it reads from the template (functions, routes,
 * throttles, event source mapping, table), and what a client sees when the
 * template changes — a grant removed from one function's role, a route's
 * throttle lowered, a mapping whose role cannot read the stream — run with
 * `roster serve --template FILE`.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES } from '../../functions/core/routes.ts';
import { FANOUT_FILTER_PATTERNS } from '../../functions/core/stream-filter.ts';
import { Resolver, TemplateError } from '../../local/template/intrinsics.ts';
import { readDeployment, type CfnTemplate, type Deployment } from '../../local/template/deployment.ts';
import { loadTemplate } from '../../local/template/source.ts';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';
import { eventually } from '../support/wait.ts';

const PLACEMENT = { region: 'us-east-1', account: '000000000000', stackName: 'Roster', partition: 'aws' };

let template: CfnTemplate;
let deployment: Deployment;
let dir: string;

beforeAll(async () => {
  ({ template } = await loadTemplate({}));
  deployment = readDeployment(template, PLACEMENT, 'roster');
  dir = await mkdtemp(join(tmpdir(), 'roster-template-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A copy of the app's template, changed by `edit`, written to a file for `--template`. */
async function templateFile(edit: (t: CfnTemplate) => void): Promise<string> {
  const copy = structuredClone(template);
  edit(copy);
  const file = join(dir, `${randomUUID().slice(0, 8)}.json`);
  await writeFile(file, JSON.stringify(copy));
  return file;
}

const logicalIdOf = (entry: string): string => {
  const fn = [...deployment.functions.values()].find((f) => f.entry === entry);
  if (!fn) throw new Error(`no function runs ${entry}`);
  return fn.logicalId;
};

/** The `AWS::IAM::Policy` resources attached to a function's role. */
function policiesOf(t: CfnTemplate, functionId: string): { Statement: { Action: string | string[] }[] }[] {
  const role = ((t.Resources[functionId]?.Properties?.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'])[0];
  return Object.values(t.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties?.Roles) === JSON.stringify([{ Ref: role }]))
    .map((r) => r.Properties?.PolicyDocument as { Statement: { Action: string | string[] }[] });
}

/** Takes `action` out of every statement of the function's role. */
function removeAction(t: CfnTemplate, functionId: string, action: string): void {
  for (const policy of policiesOf(t, functionId)) {
    for (const statement of policy.Statement) statement.Action = [statement.Action].flat().filter((a) => a !== action);
    policy.Statement = policy.Statement.filter((st) => [st.Action].flat().length > 0);
  }
}

describe('the deployment read from the app\'s template', () => {
  test('every route of the contract runs the module the route table names, and nothing else is routed', () => {
    const http = new Map([...deployment.httpApi.routes.values()].map((r) => [r.routeKey, deployment.functions.get(r.functionId)?.entry]));
    expect(Object.fromEntries(http)).toEqual(
      Object.fromEntries([...HTTP_ROUTES.map((r) => [`${r.method} ${r.path}`, `functions/http/${r.handler}.ts`]), ['$default', `functions/http/${HTTP_DEFAULT_HANDLER}.ts`]]),
    );
    const ws = new Map([...deployment.webSocketApi.routes.values()].map((r) => [r.routeKey, deployment.functions.get(r.functionId)?.entry]));
    expect(Object.fromEntries(ws)).toEqual(Object.fromEntries(WS_ROUTES.map((r) => [r.routeKey, `functions/ws/${r.handler}.ts`])));
    // Two-way routes only where the stack has a route response: never $connect or $disconnect.
    expect(deployment.webSocketApi.routes.get('$connect')?.respond).toBe(false);
    expect(deployment.webSocketApi.routes.get('ping')?.respond).toBe(true);
  });

  test('the stream, the schedule, the stages and the table are the stack\'s', () => {
    expect(deployment.functions.get(deployment.streamMapping.functionId)?.entry).toBe('functions/stream/fanout.ts');
    expect(deployment.streamMapping).toMatchObject({ batchSize: 100, maxRetryAttempts: 5, bisectOnError: true, maxRecordAgeSeconds: 900, reportBatchItemFailures: true, startingPosition: 'LATEST' });
    expect(deployment.streamMapping.filters).toEqual(FANOUT_FILTER_PATTERNS);
    expect(deployment.streamMapping.onFailureArn).toMatch(/^arn:aws:sqs:us-east-1:000000000000:Roster-FanoutFailures/);
    expect(deployment.functions.get(deployment.schedule.functionId)?.entry).toBe('functions/sweeper/sweeper.ts');
    expect(deployment.httpApi.stage.defaultThrottle).toEqual({ rateLimit: 500, burstLimit: 1000 });
    expect(deployment.table).toMatchObject({ name: 'roster', arn: 'arn:aws:dynamodb:us-east-1:000000000000:table/roster' });
    // Every function's environment names the local table, never a CloudFormation token.
    for (const fn of deployment.functions.values()) if (fn.environment.TABLE_NAME) expect(fn.environment.TABLE_NAME, fn.entry).toBe('roster');
  });

  test('intrinsic functions resolve as CloudFormation resolves them; one the runtime cannot resolve is refused', () => {
    const resolver = new Resolver(PLACEMENT, (id) => (id === 'Thing' ? { ref: 'thing-1', attributes: { Arn: 'arn:aws:x:::thing-1' } } : undefined), {
      IsProd: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'eu-west-1'] },
    });
    expect(resolver.resolve({ 'Fn::Sub': 'arn:${AWS::Partition}:s3:::${Thing}/${Thing.Arn}' })).toBe('arn:aws:s3:::thing-1/arn:aws:x:::thing-1');
    expect(resolver.resolve({ 'Fn::Sub': ['${A}-${AWS::Region}', { A: { Ref: 'Thing' } }] })).toBe('thing-1-us-east-1');
    expect(resolver.resolve({ 'Fn::Select': [1, { 'Fn::Split': [',', 'a,b,c'] }] })).toBe('b');
    expect(resolver.resolve({ 'Fn::If': ['IsProd', 'big', 'small'] })).toBe('small');
    expect(resolver.resolve([1, { Ref: 'AWS::NoValue' }, 2])).toEqual([1, 2]);
    expect(() => resolver.resolve({ 'Fn::ImportValue': 'x' })).toThrow(TemplateError);
    expect(() => resolver.resolve({ Ref: 'Missing' })).toThrow(/Ref to Missing/);
  });
});

describe('roster serve --template FILE runs what the file says', () => {
  const running: SpawnedRuntime[] = [];
  const serve = async (file: string): Promise<SpawnedRuntime> => {
    const runtime = await spawnRuntime({ dynamodbEndpoint: inject('dynamodbEndpoint'), extraArgs: ['--template', file] });
    running.push(runtime);
    return runtime;
  };
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
  });

  test('without its dynamodb:UpdateItem grant the keepalive is refused by IAM: the client gets 500 INTERNAL and the node goes down', { timeout: 120_000 }, async () => {
    const file = await templateFile((t) => removeAction(t, logicalIdOf('functions/http/keepalive.ts'), 'dynamodb:UpdateItem'));
    const runtime = await serve(file);
    const c = `c-${randomUUID().slice(0, 8)}`;
    const node = `${runtime.httpUrl}/v1/clusters/${c}/nodes/n1`;
    expect((await fetch(node, { method: 'PUT', body: JSON.stringify({ leaseSeconds: 2 }), headers: { 'content-type': 'application/json' } })).status).toBe(201);
    const keepalive = await fetch(`${node}/keepalive`, { method: 'POST' });
    expect(keepalive.status).toBe(500);
    expect(await keepalive.json()).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    // The handler's log names AWS's refusal, as CloudWatch would show it.
    await eventually(() => /AccessDeniedException/.test(runtime.output()) && /not authorized to perform: dynamodb:UpdateItem/.test(runtime.output()), 10_000, 'the refusal in the log');
    // Keepalives cannot renew the lease: the sweeper declares the node down (lease 2 s + sweep 1 s, generously).
    await eventually(
      async () => {
        await fetch(`${node}/keepalive`, { method: 'POST' }).then((r) => r.arrayBuffer());
        const got = (await (await fetch(node)).json()) as { node: { status: string; downReason?: string } };
        expect(got.node).toMatchObject({ status: 'DOWN', downReason: 'expired' });
      },
      20_000,
      'n1 DOWN (expired) although it kept alive',
    );
  });

  test('a route\'s lowered throttle answers API Gateway\'s 429 past its rate, and leaves the other routes alone', { timeout: 120_000 }, async () => {
    const keepaliveRoute = 'POST /v1/clusters/{clusterId}/nodes/{nodeId}/keepalive';
    const file = await templateFile((t) => {
      const stage = Object.values(t.Resources).find((r) => r.Type === 'AWS::ApiGatewayV2::Stage' && r.Properties?.StageName === '$default');
      if (!stage?.Properties) throw new Error('no $default stage');
      stage.Properties.RouteSettings = { [keepaliveRoute]: { ThrottlingRateLimit: 2, ThrottlingBurstLimit: 3 } };
    });
    const runtime = await serve(file);
    const node = `${runtime.httpUrl}/v1/clusters/c-${randomUUID().slice(0, 8)}/nodes/n1`;
    expect((await fetch(node, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(201);
    const started = performance.now();
    const statuses: number[] = [];
    let throttledBody: unknown;
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${node}/keepalive`, { method: 'POST' });
      statuses.push(res.status);
      if (res.status === 429) throttledBody = await res.json();
      else await res.arrayBuffer();
    }
    const elapsedS = (performance.now() - started) / 1000;
    const passed = statuses.filter((s) => s === 200).length;
    // The bucket: 3 at once, then 2 a second.
    expect(passed).toBeGreaterThanOrEqual(3);
    expect(passed).toBeLessThanOrEqual(3 + Math.ceil(2 * elapsedS));
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(throttledBody).toEqual({ message: 'Too Many Requests' });
    // Other routes have their own buckets (the stage default, 500 a second).
    for (let i = 0; i < 12; i++) expect((await fetch(node)).status).toBe(200);
  });

  test('a template the runtime cannot run faithfully is refused with the reason: payload format 1.0, a managed policy', { timeout: 120_000 }, async () => {
    const v1 = await templateFile((t) => {
      for (const r of Object.values(t.Resources)) if (r.Type === 'AWS::ApiGatewayV2::Integration' && r.Properties?.PayloadFormatVersion) r.Properties.PayloadFormatVersion = '1.0';
    });
    await expect(serve(v1)).rejects.toThrow(/payload format 1.0 is not imitated/);
    const managed = await templateFile((t) => {
      const role = Object.values(t.Resources).find((r) => r.Type === 'AWS::IAM::Role');
      if (role?.Properties) role.Properties.ManagedPolicyArns = ['arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess'];
    });
    await expect(serve(managed)).rejects.toThrow(/managed policies .* cannot be evaluated locally/);
  });

  test('a mapping whose role cannot read the stream is refused, as Lambda refuses to create it', { timeout: 120_000 }, async () => {
    const fanout = logicalIdOf('functions/stream/fanout.ts');
    const file = await templateFile((t) => removeAction(t, fanout, 'dynamodb:GetRecords'));
    await expect(serve(file)).rejects.toThrow(/Cannot access stream .* Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions/);
  });
});
