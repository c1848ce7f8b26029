/**
 * The HTTP handler of a function's AWS SDK clients in the local runtime: it
 * asks IAM (gate.ts) before a request leaves, and answers a refused one
 * itself, with the service's own error, so the SDK raises exactly the
 * exception it raises on AWS (`AccessDeniedException`, HTTP 400 for DynamoDB).
 * It sits where the request is final — signed, with the credentials of the
 * function's role — so the principal is read from the signature, as AWS does.
 */
import { Readable } from 'node:stream';
import { HttpResponse } from '@smithy/core/protocols';
import { NodeHttpHandler, type NodeHttpHandlerOptions } from '@smithy/node-http-handler';
import type { HttpRequest } from '@smithy/core/protocols';
import type { HttpHandlerOptions } from '@smithy/types';
import { accessKeyOf, type IamGate } from './gate.ts';
import { awsCallOf, denialOf, type Denial } from './requests.ts';

const response = (denial: Denial) =>
  new HttpResponse({ statusCode: denial.statusCode, headers: denial.headers, body: Readable.from([Buffer.from(denial.body)]) });

export class GatedRequestHandler extends NodeHttpHandler {
  constructor(
    private readonly gate: IamGate,
    private readonly region: string,
    options?: NodeHttpHandlerOptions,
  ) {
    super(options);
  }

  override async handle(request: HttpRequest, options?: HttpHandlerOptions): Promise<{ response: HttpResponse }> {
    const call = awsCallOf(request, this.region, this.gate.account);
    if (call) {
      const principal = this.gate.principalOfKey(accessKeyOf(request.headers.authorization ?? request.headers.Authorization));
      if (!principal) {
        return { response: response(denialOf(call, 'The security token included in the request is invalid.')) };
      }
      for (const { action, resource, context } of call.checks) {
        const decision = await this.gate.check(principal, action, resource, context);
        if (!decision.allowed) return { response: response(denialOf(call, decision.message)) };
      }
    }
    return super.handle(request, options);
  }
}
