/**
 * Every alarm reaches its topic: the template is followed from each alarm to
 * the topic of its actions, the topic's policy and (for an encrypted topic)
 * its key, and CloudWatch's publish is evaluated with a real IAM policy
 * evaluator (@cloud-copilot/iam-simulate), the intrinsic functions of the
 * policies resolved for one made-up deployment (./intrinsics.ts).
 *
 * CloudWatch publishes as the service principal `cloudwatch.amazonaws.com`,
 * with `aws:SourceAccount` and `aws:SourceArn` (the alarm's ARN) in the
 * request; a service principal is allowed only by a resource policy
 * (https://repost.aws/knowledge-center/cloudwatch-receive-sns-for-alarm-trigger).
 * A topic policy holding only the SSL Deny that `enforceSSL` writes allows no
 * one, which is what this test finds in the template before the fix.
 *
 * With `-c alarmTopicArn=` the topic's policy is not in the template: the
 * statements docs/operating/deploy.md tells the operator to add are read from
 * that page and evaluated against the template's alarms.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { CLOUDWATCH_ALARMS_PRINCIPAL } from '../../infra/observability.ts';
import { IntrinsicResolver, TEST_DEPLOYMENT } from './intrinsics.ts';
import { removeAssemblies, resourcesOfType, synthRoster, type Synthesized } from './support.ts';

afterAll(removeAssemblies);

interface PolicyDocument {
  Version?: string;
  Statement: PolicyStatement[];
}
interface PolicyStatement {
  Sid?: string;
  Effect: string;
  Principal?: unknown;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

/** One alarm action, followed through the template. */
interface Delivery {
  alarmName: string;
  alarmArn: string;
  /** `AlarmActions` or `OKActions`. */
  on: string;
  topicArn: string;
  /** The topic's policy, when the topic is in the template (else undefined: a topic given by ARN). */
  topicPolicy: PolicyDocument | undefined;
  /** The key the topic is encrypted with, when it is in the template and encrypted. */
  keyId: string | undefined;
  /** Whether the topic is a resource of this template. */
  ownTopic: boolean;
}

function deliveries(s: Synthesized): Delivery[] {
  const resolver = new IntrinsicResolver(s.json, { ...TEST_DEPLOYMENT, stackName: s.stack.stackName });
  const topics = resourcesOfType(s.json, 'AWS::SNS::Topic').map(([id, topic]) => ({
    arn: resolver.ref(id),
    keyId: topic.Properties?.KmsMasterKeyId === undefined ? undefined : resolver.string(topic.Properties.KmsMasterKeyId),
    policy: {
      Version: '2012-10-17',
      // Every topic policy naming this topic: SNS keeps one policy per topic, CDK writes it as one resource.
      Statement: resourcesOfType(s.json, 'AWS::SNS::TopicPolicy')
        .filter(([, p]) => (resolver.resolve(p.Properties?.Topics) as string[]).includes(resolver.ref(id)))
        .flatMap(([, p]) => (resolver.resolve(p.Properties?.PolicyDocument) as PolicyDocument).Statement),
    },
  }));
  return resourcesOfType(s.json, 'AWS::CloudWatch::Alarm').flatMap(([id, alarm]) =>
    ['AlarmActions', 'OKActions'].flatMap((on) =>
      ((alarm.Properties?.[on] ?? []) as unknown[]).map((action): Delivery => {
        const topicArn = resolver.string(action);
        const topic = topics.find((t) => t.arn === topicArn);
        return {
          alarmName: resolver.ref(id),
          alarmArn: resolver.getAtt(id, 'Arn'),
          on,
          topicArn,
          topicPolicy: topic?.policy,
          keyId: topic?.keyId,
          ownTopic: topic !== undefined,
        };
      }),
    ),
  );
}

type Outcome = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/** What IAM decides for CloudWatch, acting for `alarmArn`, doing `action` on `resource` under `resourcePolicy`. */
async function asCloudWatch(
  action: string,
  resource: string,
  resourcePolicy: PolicyDocument,
  alarmArn: string,
  context: { secureTransport?: boolean; sourceAccount?: string } = {},
): Promise<Outcome> {
  const result = await runSimulation(
    {
      request: {
        principal: CLOUDWATCH_ALARMS_PRINCIPAL,
        action,
        resource: { resource, accountId: TEST_DEPLOYMENT.accountId },
        contextVariables: {
          'aws:SecureTransport': String(context.secureTransport ?? true),
          'aws:SourceAccount': context.sourceAccount ?? TEST_DEPLOYMENT.accountId,
          'aws:SourceArn': alarmArn,
        },
      },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy,
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`the simulation refused its input: ${JSON.stringify(result.errors)}`);
  return result.overallResult as Outcome;
}

const publish = (d: Delivery, policy: PolicyDocument, context?: Parameters<typeof asCloudWatch>[4]) =>
  asCloudWatch('sns:Publish', d.topicArn, policy, d.alarmArn, context);

const outcomes = async (list: Delivery[], run: (d: Delivery) => Promise<Outcome>): Promise<Record<string, Outcome>> =>
  Object.fromEntries(await Promise.all(list.map(async (d) => [`${d.alarmName} ${d.on}`, await run(d)] as const)));

const every = (list: Delivery[], outcome: Outcome) => Object.fromEntries(list.map((d) => [`${d.alarmName} ${d.on}`, outcome]));

/** The JSON statements of docs/operating/deploy.md that name CloudWatch and `action`, placeholders filled in. */
function documentedStatement(action: string, fill: Record<string, string>): PolicyStatement {
  const page = readFileSync(path.join(PROJECT_ROOT, 'docs/operating/deploy.md'), 'utf8');
  const found = [...page.matchAll(/```json\n([\s\S]*?)```/g)]
    .map((m) => String(m[1]))
    .filter((block) => block.includes(`"${CLOUDWATCH_ALARMS_PRINCIPAL}"`) && block.includes(`"${action}`));
  expect(found, `one statement for ${action} in deploy.md`).toHaveLength(1);
  const filled = Object.entries(fill).reduce((text, [placeholder, value]) => text.replaceAll(placeholder, value), String(found[0]));
  return JSON.parse(filled) as PolicyStatement;
}

/** The statement `enforceSSL` writes, alone: what the stack's topic policy was before CloudWatch was allowed. */
const sslOnly = (topicArn: string): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [
    { Sid: 'AllowPublishThroughSSLOnly', Effect: 'Deny', Principal: '*', Action: 'sns:Publish', Resource: topicArn, Condition: { Bool: { 'aws:SecureTransport': 'false' } } },
  ],
});

/** Another stack's alarm of the same name: the `Roster-test-…` stacks of `npm run test:aws` live in the same account. */
const otherStacksAlarm = (d: Delivery, stackName: string): string => d.alarmArn.replace(`:alarm:${stackName}-`, `:alarm:${stackName}-test-1-`);

describe('the stack\'s own topic (default)', () => {
  const s = synthRoster();
  const list = deliveries(s);

  it('receives every alarm\'s ALARM and OK notifications, unencrypted', () => {
    expect(resourcesOfType(s.json, 'AWS::CloudWatch::Alarm')).toHaveLength(7);
    expect(list).toHaveLength(14);
    for (const d of list) expect(d, d.alarmName).toMatchObject({ ownTopic: true, keyId: undefined });
    for (const d of list) expect(d.alarmName.startsWith(`${s.stack.stackName}-`), d.alarmName).toBe(true);
  });

  it('lets CloudWatch publish every alarm over TLS', async () => {
    expect(await outcomes(list, (d) => publish(d, d.topicPolicy as PolicyDocument))).toEqual(every(list, 'Allowed'));
  });

  it('refuses a publish over plain HTTP', async () => {
    expect(await outcomes(list, (d) => publish(d, d.topicPolicy as PolicyDocument, { secureTransport: false }))).toEqual(every(list, 'ExplicitlyDenied'));
  });

  it('refuses CloudWatch acting for another stack\'s alarm, or for another account', async () => {
    const [d] = list as [Delivery];
    const policy = d.topicPolicy as PolicyDocument;
    expect(await asCloudWatch('sns:Publish', d.topicArn, policy, otherStacksAlarm(d, s.stack.stackName))).toBe('ImplicitlyDenied');
    expect(await publish(d, policy, { sourceAccount: '444455556666' })).toBe('ImplicitlyDenied');
  });

  it('would reach nobody with the SSL-only policy alone: no resource policy allows CloudWatch', async () => {
    expect(await outcomes(list, (d) => publish(d, sslOnly(d.topicArn)))).toEqual(every(list, 'ImplicitlyDenied'));
  });
});

describe('-c kmsKeyArn=', () => {
  const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  const s = synthRoster({ kmsKeyArn: keyArn });
  const list = deliveries(s);

  it('encrypts the table with the key, and leaves the alarm topic unencrypted: the stack cannot grant CloudWatch the key', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { KMSMasterKeyId: keyArn } });
    expect(list).toHaveLength(14);
    for (const d of list) expect(d, d.alarmName).toMatchObject({ ownTopic: true, keyId: undefined });
  });

  it('lets CloudWatch publish every alarm over TLS, and refuses plain HTTP', async () => {
    expect(await outcomes(list, (d) => publish(d, d.topicPolicy as PolicyDocument))).toEqual(every(list, 'Allowed'));
    expect(await outcomes(list, (d) => publish(d, d.topicPolicy as PolicyDocument, { secureTransport: false }))).toEqual(every(list, 'ExplicitlyDenied'));
  });
});

describe('-c alarmTopicArn= (a topic the stack does not own)', () => {
  const { accountId, region } = TEST_DEPLOYMENT;
  const topicArn = `arn:aws:sns:${region}:${accountId}:ops-alarms`;
  const keyArn = `arn:aws:kms:${region}:${accountId}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const s = synthRoster({ alarmTopicArn: topicArn });
  const list = deliveries(s);
  const fill = { REGION: region, ACCOUNT_ID: accountId, TOPIC_NAME: 'ops-alarms', STACK_NAME: s.stack.stackName };
  const documentedTopicPolicy: PolicyDocument = { Version: '2012-10-17', Statement: [...sslOnly(topicArn).Statement, documentedStatement('sns:Publish', fill)] };

  it('sends every alarm to that topic and writes no policy for it', () => {
    expect(list).toHaveLength(14);
    for (const d of list) expect(d, d.alarmName).toMatchObject({ topicArn, ownTopic: false, topicPolicy: undefined });
    expect(resourcesOfType(s.json, 'AWS::SNS::TopicPolicy')).toEqual([]);
  });

  it('reaches it when its policy holds the statement deploy.md gives (beside an SSL-only Deny)', async () => {
    expect(await outcomes(list, (d) => publish(d, documentedTopicPolicy))).toEqual(every(list, 'Allowed'));
    expect(await outcomes(list, (d) => publish(d, documentedTopicPolicy, { secureTransport: false }))).toEqual(every(list, 'ExplicitlyDenied'));
    expect(await publish(list[0] as Delivery, documentedTopicPolicy, { sourceAccount: '444455556666' })).toBe('ImplicitlyDenied');
  });

  it('reaches nobody when its policy has no such Allow', async () => {
    expect(await outcomes(list, (d) => publish(d, sslOnly(topicArn)))).toEqual(every(list, 'ImplicitlyDenied'));
  });

  it('reaches an encrypted topic only when the key\'s policy holds the statement deploy.md gives', async () => {
    const documentedKeyPolicy: PolicyDocument = { Version: '2012-10-17', Statement: [documentedStatement('kms:Decrypt', fill)] };
    // A key's default policy: the account may delegate through IAM, nothing for a service principal.
    const defaultKeyPolicy: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${accountId}:root` }, Action: 'kms:*', Resource: '*' }],
    };
    // SNS asks KMS for a data key to encrypt the message, and to decrypt it for delivery, as the publisher.
    for (const action of ['kms:GenerateDataKey', 'kms:Decrypt']) {
      expect(await outcomes(list, (d) => asCloudWatch(action, keyArn, documentedKeyPolicy, d.alarmArn)), action).toEqual(every(list, 'Allowed'));
      expect(await outcomes(list, (d) => asCloudWatch(action, keyArn, defaultKeyPolicy, d.alarmArn)), action).toEqual(every(list, 'ImplicitlyDenied'));
    }
  });
});
