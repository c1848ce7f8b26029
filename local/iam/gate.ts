/**
 * IAM, as AWS evaluates it for a Lambda function's calls: each function signs
 * its requests with credentials of its own execution role, and every call is
 * allowed or refused by that role's policies exactly as the template states
 * them, evaluated by a real IAM policy evaluator — `@cloud-copilot/iam-simulate`
 * (identity policies, resource policies, every condition operator, and
 * validation of action names and resource ARNs against AWS's service
 * reference). It is chosen over writing our own matcher because IAM's
 * semantics (NotAction, NotResource, wildcards in ARNs, condition operators,
 * explicit deny) are exactly what a hand-written matcher gets subtly wrong;
 * it runs only in the local runtime and the tests, never in a Lambda bundle
 * (it is AGPL-licensed: see docs/operating/aws-fidelity.md).
 *
 * A refusal reads as AWS's does
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html):
 * "User: arn:aws:sts::…:assumed-role/{role}/{function} is not authorized to
 * perform: dynamodb:Query on resource: arn:… because no identity-based policy
 * allows the dynamodb:Query action".
 */
import { appendFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { PolicyDocument } from '../template/deployment.ts';

/** One function's identity: its role session and the credentials it signs with. */
export interface Principal {
  /** The function's logical id in the template. */
  functionId: string;
  functionName: string;
  roleArn: string;
  /** `arn:aws:sts::{account}:assumed-role/{role}/{function}`: who Lambda's calls are made as. */
  sessionArn: string;
  accessKeyId: string;
  secretAccessKey: string;
  policies: { name: string; document: PolicyDocument }[];
}

export type Decision = { allowed: true } | { allowed: false; message: string };

/** One evaluated request, as `--iam-log` writes it. */
export interface IamRecord {
  function: string;
  action: string;
  resource: string;
  allowed: boolean;
}

export interface GateConfig {
  account: string;
  principals: Principal[];
  /** false: evaluate and log, but let every call through (`--iam off` is not this: it skips evaluation). @default true */
  enforce?: boolean;
  /** Appends each distinct (function, action, resource, decision) as a JSON line. */
  logFile?: string;
}

/** Temporary credentials for a function's role session: an `ASIA…` key id of its own, a random secret. */
export function credentialsFor(functionId: string, stackName: string): { accessKeyId: string; secretAccessKey: string } {
  const digest = createHash('sha256').update(`${stackName}/${functionId}`).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const id = [...digest.subarray(0, 16)].map((b) => alphabet[b % 32]).join('');
  return { accessKeyId: `ASIA${id}`, secretAccessKey: randomBytes(30).toString('base64') };
}

/** The access key id of a SigV4 `Authorization` header (`Credential=AKID/date/region/service/aws4_request`). */
export function accessKeyOf(authorization: string | string[] | undefined): string | undefined {
  const header = Array.isArray(authorization) ? authorization[0] : authorization;
  return header === undefined ? undefined : /Credential=([A-Z0-9]+)\//.exec(header)?.[1];
}

export class IamGate {
  private readonly byKey: Map<string, Principal>;
  private readonly decisions = new Map<string, Promise<Decision>>();
  private readonly logged = new Set<string>();
  readonly enforce: boolean;

  constructor(private readonly config: GateConfig) {
    this.byKey = new Map(config.principals.map((p) => [p.accessKeyId, p]));
    this.enforce = config.enforce ?? true;
  }

  get account(): string {
    return this.config.account;
  }

  /** The function whose credentials signed a request, if any. */
  principalOfKey(accessKeyId: string | undefined): Principal | undefined {
    return accessKeyId === undefined ? undefined : this.byKey.get(accessKeyId);
  }

  /**
   * Whether `principal` may perform `action` on `resource`. Decisions are kept
   * per (principal, action, resource, context): a role's policies do not
   * change while the runtime runs, and the evaluator takes about a millisecond.
   */
  check(principal: Principal, action: string, resource: string, context: Record<string, string> = {}): Promise<Decision> {
    const key = `${principal.accessKeyId}\0${action}\0${resource}\0${JSON.stringify(context)}`;
    let decision = this.decisions.get(key);
    if (!decision) {
      decision = this.evaluate(principal, action, resource, context);
      this.decisions.set(key, decision);
      // A decision the evaluator failed to make is not one to keep: the next call asks again.
      decision.catch(() => this.decisions.delete(key));
    }
    return decision.then((d) => {
      this.record(principal, action, resource, d.allowed);
      return this.enforce ? d : { allowed: true };
    });
  }

  private async evaluate(principal: Principal, action: string, resource: string, context: Record<string, string>): Promise<Decision> {
    const result = await runSimulation(
      {
        request: {
          principal: principal.sessionArn,
          action,
          resource: { resource, accountId: this.config.account },
          contextVariables: {
            'aws:SecureTransport': 'true',
            'aws:PrincipalArn': principal.roleArn,
            'aws:PrincipalAccount': this.config.account,
            ...context,
          },
        },
        identityPolicies: principal.policies.map((p) => ({ name: p.name, policy: p.document })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    const denied = (why: string): Decision => ({
      allowed: false,
      message: `User: ${principal.sessionArn} is not authorized to perform: ${action} on resource: ${resource} ${why}`,
    });
    if (result.resultType === 'error') return denied(`because the request could not be evaluated: ${result.errors.message}`);
    if (result.overallResult === 'Allowed') return { allowed: true };
    return result.overallResult === 'ExplicitlyDenied'
      ? denied('with an explicit deny in an identity-based policy')
      : denied(`because no identity-based policy allows the ${action} action`);
  }

  private record(principal: Principal, action: string, resource: string, allowed: boolean): void {
    if (!this.config.logFile) return;
    const line = JSON.stringify({ function: principal.functionId, action, resource, allowed } satisfies IamRecord);
    if (this.logged.has(line)) return;
    this.logged.add(line);
    appendFileSync(this.config.logFile, `${line}\n`);
  }
}
