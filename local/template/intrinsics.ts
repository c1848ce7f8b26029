/**
 * CloudFormation's intrinsic functions, resolved against the names a local
 * deployment gives its resources: what CloudFormation does when it creates
 * the stack, so that a function's environment, a role's policy or a route's
 * target read from the template hold the values the local runtime serves.
 *
 * Supported (everything `cdk synth` writes for Roster, and the usual rest):
 * `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`,
 * `Fn::If` with the template's `Conditions` (`Fn::Equals`, `Fn::Not`,
 * `Fn::And`, `Fn::Or`, `Condition`), `Fn::Base64`, and the pseudo parameters.
 * Anything else (`Fn::ImportValue`, a resource type without local names) is
 * an error naming it: the runtime refuses a template it cannot run faithfully.
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
 */

/** The names of one resource once "created": what `Ref` and `Fn::GetAtt` return. */
export interface PhysicalResource {
  ref: string;
  attributes: Readonly<Record<string, string>>;
}

export interface Placement {
  region: string;
  account: string;
  stackName: string;
  partition: string;
}

/** A value of the template after resolution: strings, numbers, booleans, arrays and objects. */
export type Resolved = string | number | boolean | null | Resolved[] | { [key: string]: Resolved };

/** Removed from its array or object, as `Ref: AWS::NoValue` is. */
const NO_VALUE = Symbol('AWS::NoValue');

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class Resolver {
  private readonly conditionCache = new Map<string, boolean>();

  constructor(
    private readonly placement: Placement,
    private readonly physical: (logicalId: string) => PhysicalResource | undefined,
    private readonly conditions: Readonly<Record<string, unknown>> = {},
    private readonly parameters: Readonly<Record<string, string>> = {},
  ) {}

  /** `value` with every intrinsic function replaced by its result. */
  resolve(value: unknown, where = 'template'): Resolved {
    const out = this.walk(value, where);
    if (out === NO_VALUE) throw new TemplateError(`${where}: AWS::NoValue where a value is required`);
    return out;
  }

  /** A value that must resolve to a string. */
  string(value: unknown, where: string): string {
    const out = this.resolve(value, where);
    if (typeof out === 'number' || typeof out === 'boolean') return String(out);
    if (typeof out !== 'string') throw new TemplateError(`${where}: expected a string, got ${JSON.stringify(out)}`);
    return out;
  }

  /** Whether a template condition holds (a resource's `Condition`). */
  condition(name: string): boolean {
    const cached = this.conditionCache.get(name);
    if (cached !== undefined) return cached;
    if (!(name in this.conditions)) throw new TemplateError(`condition ${name} is not defined in Conditions`);
    const value = this.evaluate(this.conditions[name], `Conditions.${name}`);
    this.conditionCache.set(name, value);
    return value;
  }

  private evaluate(expr: unknown, where: string): boolean {
    if (typeof expr === 'boolean') return expr;
    if (!isRecord(expr)) throw new TemplateError(`${where}: not a condition: ${JSON.stringify(expr)}`);
    const [[fn, arg] = []] = Object.entries(expr);
    const list = (n?: number): unknown[] => {
      if (!Array.isArray(arg) || (n !== undefined && arg.length !== n)) throw new TemplateError(`${where}: ${fn} takes ${n ?? 'a list of'} arguments`);
      return arg;
    };
    switch (fn) {
      case 'Fn::Equals': {
        const [a, b] = list(2).map((v) => this.resolve(v, where));
        return JSON.stringify(a) === JSON.stringify(b);
      }
      case 'Fn::Not':
        return !this.evaluate(list(1)[0], where);
      case 'Fn::And':
        return list().every((c) => this.evaluate(c, where));
      case 'Fn::Or':
        return list().some((c) => this.evaluate(c, where));
      case 'Condition':
        return this.condition(String(arg));
      default:
        throw new TemplateError(`${where}: unsupported condition function ${String(fn)}`);
    }
  }

  private pseudo(name: string): string | typeof NO_VALUE | undefined {
    const { region, account, stackName, partition } = this.placement;
    switch (name) {
      case 'AWS::Region':
        return region;
      case 'AWS::AccountId':
        return account;
      case 'AWS::Partition':
        return partition;
      case 'AWS::StackName':
        return stackName;
      case 'AWS::StackId':
        return `arn:${partition}:cloudformation:${region}:${account}:stack/${stackName}/00000000-0000-0000-0000-000000000000`;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::NoValue':
        return NO_VALUE;
      default:
        return undefined;
    }
  }

  private ref(name: string, where: string): string | typeof NO_VALUE {
    const pseudo = this.pseudo(name);
    if (pseudo !== undefined) return pseudo;
    if (name in this.parameters) return this.parameters[name] as string;
    const resource = this.physical(name);
    if (!resource) throw new TemplateError(`${where}: Ref to ${name}, which is neither a resource nor a parameter with a value`);
    return resource.ref;
  }

  private getAtt(logicalId: string, attribute: string, where: string): string {
    const resource = this.physical(logicalId);
    const value = resource?.attributes[attribute];
    if (value === undefined) throw new TemplateError(`${where}: Fn::GetAtt ${logicalId}.${attribute} has no local value`);
    return value;
  }

  private sub(template: string, variables: Record<string, Resolved>, where: string): string {
    return template.replace(/\$\{([^}]+)\}/g, (whole, name: string) => {
      if (name.startsWith('!')) return `\${${name.slice(1)}}`;
      if (name in variables) return String(variables[name]);
      const dot = name.indexOf('.');
      if (dot > 0 && !name.startsWith('AWS::')) return this.getAtt(name.slice(0, dot), name.slice(dot + 1), where);
      const value = this.ref(name, where);
      if (value === NO_VALUE) throw new TemplateError(`${where}: \${${name}} is AWS::NoValue`);
      return value ?? whole;
    });
  }

  private walk(value: unknown, where: string): Resolved | typeof NO_VALUE {
    if (Array.isArray(value)) return value.map((v) => this.walk(v, where)).filter((v): v is Resolved => v !== NO_VALUE);
    if (!isRecord(value)) return value as Resolved;
    const keys = Object.keys(value);
    if (keys.length === 1 && (keys[0] === 'Ref' || keys[0]?.startsWith('Fn::'))) return this.intrinsic(keys[0], value[keys[0]], where);
    const out: Record<string, Resolved> = {};
    for (const [key, v] of Object.entries(value)) {
      const resolved = this.walk(v, `${where}.${key}`);
      if (resolved !== NO_VALUE) out[key] = resolved;
    }
    return out;
  }

  private intrinsic(fn: string, arg: unknown, where: string): Resolved | typeof NO_VALUE {
    const args = (n: number): unknown[] => {
      if (!Array.isArray(arg) || arg.length !== n) throw new TemplateError(`${where}: ${fn} takes ${n} arguments`);
      return arg;
    };
    switch (fn) {
      case 'Ref':
        return this.ref(String(arg), where);
      case 'Fn::GetAtt': {
        const [id, attr] = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : args(2).map((a) => this.string(a, where));
        return this.getAtt(id as string, attr as string, where);
      }
      case 'Fn::Join': {
        const [separator, list] = args(2);
        const items = this.resolve(list, where);
        if (!Array.isArray(items)) throw new TemplateError(`${where}: Fn::Join needs a list`);
        return items.map((item) => (typeof item === 'object' ? JSON.stringify(item) : String(item))).join(String(separator));
      }
      case 'Fn::Sub': {
        if (typeof arg === 'string') return this.sub(arg, {}, where);
        const [template, variables] = args(2);
        const resolved = this.resolve(variables, where);
        return this.sub(String(template), isRecord(resolved) ? (resolved as Record<string, Resolved>) : {}, where);
      }
      case 'Fn::Select': {
        const [index, list] = args(2);
        const items = this.resolve(list, where);
        const i = Number(this.resolve(index, where));
        if (!Array.isArray(items) || !Number.isInteger(i) || i < 0 || i >= items.length) throw new TemplateError(`${where}: Fn::Select index ${i} out of range`);
        return items[i] as Resolved;
      }
      case 'Fn::Split': {
        const [separator, source] = args(2);
        return this.string(source, where).split(String(separator));
      }
      case 'Fn::If': {
        const [name, whenTrue, whenFalse] = args(3);
        return this.walk(this.condition(String(name)) ? whenTrue : whenFalse, where);
      }
      case 'Fn::Base64':
        return Buffer.from(this.string(arg, where)).toString('base64');
      default:
        throw new TemplateError(`${where}: the local runtime cannot resolve ${fn}`);
    }
  }
}
