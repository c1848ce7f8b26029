/**
 * The contract documents as validators: every HTTP answer and every
 * WebSocket message the conformance suite receives is checked against
 * contract/openapi.json and contract/asyncapi.json with ajv, so the
 * documents cannot drift from what the server really sends.
 *
 * Both documents are loaded as JSON Schema 2020-12 resources (OpenAPI 3.1's
 * schema dialect); the AsyncAPI document's `./openapi.json#/…` references
 * resolve to the OpenAPI document, as they do for its own parser.
 */
import asyncapi from '@roster/contract/asyncapi.json' with { type: 'json' };
import openapi from '@roster/contract/openapi.json' with { type: 'json' };
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(openapi, 'openapi.json');
ajv.addSchema(asyncapi, 'asyncapi.json');

type Json = Record<string, unknown>;
const isJson = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON pointer segment (RFC 6901). */
const escape = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

const compiled = new Map<string, ValidateFunction>();
function validator(ref: string): ValidateFunction {
  let validate = compiled.get(ref);
  if (!validate) {
    validate = ajv.compile({ $ref: ref });
    compiled.set(ref, validate);
  }
  return validate;
}

function check(ref: string, value: unknown, what: string): void {
  const validate = validator(ref);
  if (!validate(value)) {
    const problems = (validate.errors ?? []).slice(0, 8).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
    throw new Error(`${what} does not match ${ref}:\n  ${problems.join('\n  ')}\n${JSON.stringify(value).slice(0, 600)}`);
  }
}

/** The path template of the OpenAPI document that `path` matches: `{param}` stands for one segment. */
function templateOf(path: string): string | undefined {
  const got = path.split('/');
  return Object.keys(openapi.paths).find((template) => {
    const want = template.split('/');
    return want.length === got.length && want.every((w, i) => (w.startsWith('{') && w.endsWith('}') ? got[i] !== '' : w === got[i]));
  });
}

/** `#/components/responses/X` → ['components', 'responses', 'X'] with the object found there. */
function follow(pointer: string): { object: Json; pointer: string } {
  let object: unknown = openapi;
  for (const segment of pointer.replace(/^#\//, '').split('/')) object = isJson(object) ? object[segment.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
  if (!isJson(object)) throw new Error(`the OpenAPI document has nothing at ${pointer}`);
  return { object, pointer };
}

/**
 * Checks one HTTP answer against the operation of the OpenAPI document it
 * belongs to: the status must be documented (or fall under `default`), and
 * the body must match the documented schema, or be absent where none is.
 * A path or method the document does not have must answer the error body.
 */
export function checkHttpAnswer(method: string, url: string, status: number, contentType: string | null, text: string): void {
  const path = new URL(url, 'http://x').pathname;
  const what = `${method} ${path} → ${status}`;
  const template = templateOf(path);
  const operations = template === undefined ? undefined : (openapi.paths as Record<string, Json>)[template];
  const operation = operations?.[method.toLowerCase()];
  if (template === undefined || !isJson(operation)) {
    // No such operation: 404 NOT_FOUND or 405 METHOD_NOT_ALLOWED, as the error body.
    check('openapi.json#/components/schemas/Error', JSON.parse(text) as unknown, what);
    return;
  }
  const base = `#/paths/${escape(template)}/${method.toLowerCase()}/responses`;
  const responses = operation.responses as Json;
  const key = String(status) in responses ? String(status) : 'default';
  if (!(key in responses)) throw new Error(`${what}: the OpenAPI document does not list this status`);
  let response = follow(`${base}/${key}`);
  if (typeof response.object.$ref === 'string') response = follow(response.object.$ref);
  const content = response.object.content;
  if (!isJson(content)) {
    if (text !== '') throw new Error(`${what}: the OpenAPI document says no body, but one came: ${text.slice(0, 200)}`);
    return;
  }
  if ('text/html' in content) {
    if (!contentType?.startsWith('text/html')) throw new Error(`${what}: expected text/html, got ${contentType}`);
    return;
  }
  if (!contentType?.startsWith('application/json')) throw new Error(`${what}: expected application/json, got ${contentType}: ${text.slice(0, 200)}`);
  check(`openapi.json${response.pointer}/content/application~1json/schema`, JSON.parse(text) as unknown, what);
}

/** The payload schemas of every message the server sends: what `receive` operations get, and every reply. */
function serverMessageRefs(): string[] {
  const refs = new Set<string>();
  for (const operation of Object.values(asyncapi.operations) as Json[]) {
    const lists = [operation.action === 'receive' ? operation.messages : undefined, isJson(operation.reply) ? operation.reply.messages : undefined];
    for (const list of lists) {
      if (!Array.isArray(list)) continue;
      for (const message of list as Json[]) {
        // `#/channels/roster/messages/x` → the channel's entry → `#/components/messages/x`.
        const name = String(message.$ref).split('/').pop() ?? '';
        refs.add(`asyncapi.json#/components/messages/${escape(name)}/payload`);
      }
    }
  }
  return [...refs];
}

const serverMessage = ajv.compile({ anyOf: serverMessageRefs().map(($ref) => ({ $ref })) });

/** Checks one message the server sent on a WebSocket connection against the AsyncAPI document. */
export function checkServerMessage(message: unknown): void {
  const valid: boolean = serverMessage(message);
  if (valid) return;
  // Say what is wrong against the message of its own type, not against every alternative.
  const type = isJson(message) ? message.type : undefined;
  const byType: Record<string, string> = {
    EVENTS: 'EventsBatch',
    SUBSCRIBED: 'SubscribedReply',
    UNSUBSCRIBED: 'UnsubscribedReply',
    PONG: 'PongReply',
    ERROR: 'ErrorReply',
  };
  const schema = typeof type === 'string' ? (byType[type] ?? 'MembershipEvent') : 'MembershipEvent';
  check(`asyncapi.json#/components/schemas/${schema}`, message, 'a WebSocket message');
  throw new Error(`a WebSocket message matches none of the AsyncAPI document's server messages: ${JSON.stringify(message).slice(0, 400)}`);
}

const refusal = ajv.compile({
  anyOf: [{ $ref: 'asyncapi.json#/components/schemas/ErrorReply' }, { $ref: 'openapi.json#/components/schemas/GatewayMessage' }],
});

/** A refused WebSocket upgrade's body: the ERROR message, API Gateway's own message, or nothing. */
export function checkRefusalBody(text: string): void {
  if (text === '') return;
  const body = JSON.parse(text) as unknown;
  const valid: boolean = refusal(body);
  if (!valid) throw new Error(`a refused WebSocket upgrade's body is neither the ERROR message nor API Gateway's: ${text.slice(0, 400)}`);
}
