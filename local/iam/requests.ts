/**
 * What an AWS SDK request asks, in IAM's terms: the action and the resource
 * ARNs it is authorized on, read from the signed HTTP request exactly as the
 * service reads it; and the error each service answers when IAM refuses.
 *
 * - DynamoDB (JSON 1.0, `X-Amz-Target: DynamoDB_20120810.{Operation}`):
 *   `dynamodb:{Operation}` on the table, or on `table/{t}/index/{i}` for a
 *   Query or Scan of an index; batch operations on each table they name; a
 *   transaction as each of its actions' item operation (`Update` is
 *   `dynamodb:UpdateItem`, `ConditionCheck` `dynamodb:ConditionCheckItem`)
 *   on its table, with `dynamodb:EnclosingOperation` set (there is no
 *   `dynamodb:TransactWriteItems` action).
 *   Refused: 400 `com.amazon.coral.service#AccessDeniedException`.
 * - Secrets Manager (JSON 1.1, `secretsmanager.{Operation}`): on `SecretId`.
 *   Refused: 400 `AccessDeniedException`.
 * - Lambda (REST, `POST /2015-03-31/functions/{name}/invocations`):
 *   `lambda:InvokeFunction` on the function's ARN. Refused: 403 `AccessDeniedException`.
 * Pages: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html,
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html,
 * https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html (Errors).
 */
import type { HttpRequest } from '@smithy/types';

/** One authorization a call needs: `action` on `resource`, with the request's condition keys. */
export interface AwsCheck {
  action: string;
  resource: string;
  context?: Record<string, string>;
}

export interface AwsCall {
  service: 'dynamodb' | 'secretsmanager' | 'lambda';
  /** Every authorization the call needs (a transaction needs one per action). */
  checks: AwsCheck[];
}

const onEach = (action: string, resources: string[]): AwsCheck[] => resources.map((resource) => ({ action, resource }));

/** A transaction's actions and the item operations IAM authorizes them as. */
const TRANSACTION_ACTIONS: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };

export interface Denial {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function header(request: HttpRequest, name: string): string | undefined {
  const found = Object.entries(request.headers).find(([key]) => key.toLowerCase() === name);
  return found?.[1];
}

function jsonBody(request: HttpRequest): Record<string, unknown> {
  const body: unknown = request.body;
  // The SDK's JSON bodies are Uint8Array subclasses that warn when treated as strings: decode the bytes.
  const text = typeof body === 'string' ? body : body instanceof Uint8Array ? new TextDecoder().decode(body) : '';
  try {
    const parsed: unknown = JSON.parse(text || '{}');
    return isRecord(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** `arn:aws:{service}:{region}:{account}:{resource}` for a name that is not an ARN already. */
const arnOf = (service: string, region: string, account: string, resource: string, name: string): string =>
  name.startsWith('arn:') ? name : `arn:aws:${service}:${region}:${account}:${resource}${name}`;

function dynamodbCall(operation: string, body: Record<string, unknown>, region: string, account: string): AwsCall {
  const table = (name: unknown) => arnOf('dynamodb', region, account, 'table/', String(name));
  const call = (checks: AwsCheck[]): AwsCall => ({ service: 'dynamodb', checks });
  const action = `dynamodb:${operation}`;
  if (operation === 'BatchWriteItem' || operation === 'BatchGetItem') {
    return call(onEach(action, Object.keys(isRecord(body.RequestItems) ? body.RequestItems : {}).map(table)));
  }
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    const context = { 'dynamodb:EnclosingOperation': operation };
    return call(
      (Array.isArray(body.TransactItems) ? body.TransactItems : []).flatMap((item) =>
        isRecord(item)
          ? Object.entries(item).flatMap(([kind, op]) =>
              isRecord(op) && op.TableName ? [{ action: `dynamodb:${TRANSACTION_ACTIONS[kind] ?? kind}`, resource: table(op.TableName), context }] : [],
            )
          : [],
      ),
    );
  }
  if ((operation === 'Query' || operation === 'Scan') && typeof body.IndexName === 'string') {
    return call(onEach(action, [`${table(body.TableName)}/index/${body.IndexName}`]));
  }
  return call(onEach(action, [table(body.TableName)]));
}

/** The call a request makes, or undefined for a request this runtime does not authorize (none of the functions make one). */
export function awsCallOf(request: HttpRequest, region: string, account: string): AwsCall | undefined {
  const target = header(request, 'x-amz-target');
  if (target?.startsWith('DynamoDB_20120810.')) return dynamodbCall(target.slice(target.indexOf('.') + 1), jsonBody(request), region, account);
  if (target?.startsWith('secretsmanager.')) {
    const body = jsonBody(request);
    const operation = target.slice(target.indexOf('.') + 1);
    return { service: 'secretsmanager', checks: onEach(`secretsmanager:${operation}`, [arnOf('secretsmanager', region, account, 'secret:', String(body.SecretId))]) };
  }
  const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(request.path);
  if (invoke?.[1]) {
    // A name may carry a qualifier (`name:alias`); the ARN then ends in it, as IAM sees it.
    const name = decodeURIComponent(invoke[1]);
    return { service: 'lambda', checks: onEach('lambda:InvokeFunction', [arnOf('lambda', region, account, 'function:', name)]) };
  }
  return undefined;
}

/** The answer a service gives a request IAM refused, in the shape its SDK client parses. */
export function denialOf(call: AwsCall, message: string): Denial {
  const requestId = crypto.randomUUID();
  switch (call.service) {
    case 'dynamodb':
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId },
        body: JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', Message: message }),
      };
    case 'secretsmanager':
      return {
        statusCode: 400,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId },
        body: JSON.stringify({ __type: 'AccessDeniedException', Message: message }),
      };
    case 'lambda':
      return {
        statusCode: 403,
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'AccessDeniedException', 'x-amzn-requestid': requestId },
        body: JSON.stringify({ Type: 'User', Message: message }),
      };
  }
}
