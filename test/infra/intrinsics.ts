/**
 * Resolves the CloudFormation intrinsic functions of a synthesized template
 * to the concrete strings CloudFormation would give them in one made-up
 * deployment, so that a policy can be handed to a policy evaluator:
 * `Ref` (resources and pseudo parameters), `Fn::GetAtt`, `Fn::Join` and
 * `Fn::Sub`.
 *
 * Physical names follow CloudFormation: a resource's name property when the
 * template sets it, else `{stackName}-{logicalId}-{suffix}` (CloudFormation
 * generates "the stack name, the logical ID and a random string"; the suffix
 * stands for the random part). Only the resource types the template tests
 * need have a `Ref` and attributes here; anything else throws, naming what is
 * missing, rather than resolving to something made up.
 */
import type { TemplateJson } from './support.ts';

/** Where the template is pretended to be deployed. */
export interface Deployment {
  accountId: string;
  region: string;
  partition: string;
  urlSuffix: string;
  stackName: string;
}

export const TEST_DEPLOYMENT: Omit<Deployment, 'stackName'> = {
  accountId: '111122223333',
  region: 'eu-west-1',
  partition: 'aws',
  urlSuffix: 'amazonaws.com',
};

/** Stands for the random part of a name CloudFormation generates. */
const GENERATED_SUFFIX = 'GENERATED1234';

/** Per resource type: the property that names it, what `Ref` returns and the attributes `Fn::GetAtt` reads. */
const TYPES: Record<string, { nameProperty: string; ref: 'name' | 'arn'; arn: (d: Deployment, name: string) => string; attributes: Record<string, 'name' | 'arn'> }> = {
  'AWS::SNS::Topic': {
    nameProperty: 'TopicName',
    ref: 'arn',
    arn: (d, name) => `arn:${d.partition}:sns:${d.region}:${d.accountId}:${name}`,
    attributes: { TopicArn: 'arn', TopicName: 'name' },
  },
  'AWS::CloudWatch::Alarm': {
    nameProperty: 'AlarmName',
    ref: 'name',
    arn: (d, name) => `arn:${d.partition}:cloudwatch:${d.region}:${d.accountId}:alarm:${name}`,
    attributes: { Arn: 'arn' },
  },
};

export class IntrinsicResolver {
  constructor(
    private readonly template: TemplateJson,
    readonly deployment: Deployment,
  ) {}

  /** `value` with every intrinsic function in it resolved (objects and arrays deeply). */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (typeof value !== 'object' || value === null) return value;
    const entries = Object.entries(value);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) return this.intrinsic(key, arg);
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }

  /** `value` resolved, which must come out a string. */
  string(value: unknown): string {
    const resolved = this.resolve(value);
    if (typeof resolved !== 'string') throw new Error(`expected a string, got ${JSON.stringify(resolved)}`);
    return resolved;
  }

  ref(name: string): string {
    const pseudo = this.pseudoParameter(name);
    if (pseudo !== undefined) return pseudo;
    const { type, physicalName } = this.resource(name);
    return type.ref === 'arn' ? type.arn(this.deployment, physicalName) : physicalName;
  }

  getAtt(logicalId: string, attribute: string): string {
    const { type, physicalName, typeName } = this.resource(logicalId);
    const kind = type.attributes[attribute];
    if (!kind) throw new Error(`no Fn::GetAtt ${attribute} of ${typeName} (${logicalId}) in the resolver`);
    return kind === 'arn' ? type.arn(this.deployment, physicalName) : physicalName;
  }

  private intrinsic(name: string, arg: unknown): string {
    switch (name) {
      case 'Ref':
        return this.ref(String(arg));
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = Array.isArray(arg) ? arg : String(arg).split('.');
        return this.getAtt(String(logicalId), String(attribute));
      }
      case 'Fn::Join': {
        const [separator, parts] = arg as [string, unknown[]];
        return parts.map((p) => this.string(p)).join(separator);
      }
      case 'Fn::Sub': {
        const [text, variables] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [String(arg), {}];
        return text.replace(/\$\{(!?)([^}]+)\}/g, (_, literal: string, ref: string) => {
          if (literal) return `\${${ref}}`;
          if (ref in variables) return this.string(variables[ref]);
          const [logicalId, attribute] = ref.split('.');
          return attribute === undefined ? this.ref(ref) : this.getAtt(String(logicalId), attribute);
        });
      }
      default:
        throw new Error(`${name} is not resolved by the test resolver`);
    }
  }

  private pseudoParameter(name: string): string | undefined {
    const d = this.deployment;
    const values: Record<string, string> = {
      'AWS::AccountId': d.accountId,
      'AWS::Region': d.region,
      'AWS::Partition': d.partition,
      'AWS::URLSuffix': d.urlSuffix,
      'AWS::StackName': d.stackName,
    };
    return values[name];
  }

  private resource(logicalId: string) {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new Error(`no resource ${logicalId} in the template`);
    const type = TYPES[resource.Type];
    if (!type) throw new Error(`${resource.Type} (${logicalId}) has no physical id in the resolver`);
    const named = resource.Properties?.[type.nameProperty];
    const physicalName = named === undefined ? `${this.deployment.stackName}-${logicalId}-${GENERATED_SUFFIX}` : this.string(named);
    return { type, typeName: resource.Type, physicalName };
  }
}
