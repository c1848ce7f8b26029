/**
 * The contract documents (contract/openapi.json, contract/asyncapi.json):
 * valid by their own real parsers, and saying what the contract module and
 * the route table say. (That the running server matches them is the
 * conformance suite's job: test/conformance/documents.ts.)
 */
import SwaggerParser from '@apidevtools/swagger-parser';
import { fromFile, Parser } from '@asyncapi/parser';
import {
  DOWN_REASONS,
  ERROR_CODES,
  EVENT_TYPES,
  GAP_WAIT_MS,
  ID_PATTERN,
  LEASE_MAX_SECONDS,
  LEASE_MIN_SECONDS,
  LIST_PAGE_DEFAULT,
  LIST_PAGE_MAX,
  listEtag,
  METADATA_KEY_MAX_CHARS,
  METADATA_MAX_KEYS,
  WS_ACTIONS,
  WS_CONNECT_PARAMETERS,
} from '@roster/contract';
import asyncapi from '@roster/contract/asyncapi.json' with { type: 'json' };
import openapi from '@roster/contract/openapi.json' with { type: 'json' };
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { GZIP_MIN_BYTES } from '../../functions/core/http-handler.ts';
import { PAGE_MAX_BYTES } from '../../functions/core/list-page.ts';
import { HTTP_ROUTES } from '../../functions/core/routes.ts';
import { WEBSOCKET_STAGE_NAME } from '../../infra/websocket-api.ts';

const file = (name: string): string => fileURLToPath(new URL(`../../contract/${name}`, import.meta.url));
const schemas = openapi.components.schemas;
const events = asyncapi.components.schemas;

describe('the OpenAPI document', () => {
  test('is valid OpenAPI 3.1 by @apidevtools/swagger-parser', async () => {
    const api = await SwaggerParser.validate(file('openapi.json'));
    expect(api).toMatchObject({ openapi: '3.1.0' });
  });

  test('has exactly the operations of the route table (which drives the CDK stack and the local runtime)', () => {
    const documented = Object.entries(openapi.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => ['get', 'put', 'post', 'delete', 'patch'].includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(documented.sort()).toEqual(HTTP_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  test('marks the public routes as needing no token, and every other route as needing one', () => {
    for (const route of HTTP_ROUTES) {
      const operation = (openapi.paths as Record<string, Record<string, { security?: unknown[] }>>)[route.path]?.[route.method.toLowerCase()];
      expect(operation?.security, `${route.method} ${route.path}`).toEqual(route.access === 'public' ? [] : [{ bearerAuth: [] }]);
    }
  });

  test('lists for each operation exactly the query parameters its route takes, and 400 for any other', () => {
    type Parameter = { in?: string; name?: string; $ref?: string };
    type Operation = { parameters?: Parameter[]; responses?: Record<string, unknown> };
    const paths = openapi.paths as unknown as Record<string, Record<string, Operation> & { parameters?: Parameter[] }>;
    const components = openapi.components.parameters as Record<string, Parameter>;
    // `#/components/parameters/x` → the parameter itself.
    const resolve = (p: Parameter): Parameter => (p.$ref ? (components[p.$ref.split('/').pop() ?? ''] ?? {}) : p);
    for (const route of HTTP_ROUTES) {
      const item = paths[route.path];
      const operation = item?.[route.method.toLowerCase()];
      const where = `${route.method} ${route.path}`;
      const documented = [...(item?.parameters ?? []), ...(operation?.parameters ?? [])]
        .map(resolve)
        .filter((p) => p.in === 'query')
        .map((p) => p.name);
      expect(documented.sort(), where).toEqual([...route.query].sort());
      expect(operation?.responses, where).toHaveProperty('400');
    }
  });

  test('states the contract module\'s rules: ids, lease bounds, metadata limits, error codes, down reasons', () => {
    expect(schemas.ClusterId.pattern).toBe(ID_PATTERN.source);
    expect(schemas.NodeId.pattern).toBe(ID_PATTERN.source);
    expect([schemas.LeaseSeconds.minimum, schemas.LeaseSeconds.maximum]).toEqual([LEASE_MIN_SECONDS, LEASE_MAX_SECONDS]);
    expect(schemas.Metadata.maxProperties).toBe(METADATA_MAX_KEYS);
    expect(schemas.Metadata.propertyNames.maxLength).toBe(METADATA_KEY_MAX_CHARS);
    expect(schemas.ErrorCode.enum).toEqual(ERROR_CODES);
    expect(schemas.DownReason.enum).toEqual([...DOWN_REASONS]);
    const etag = openapi.paths['/v1/clusters/{clusterId}/nodes'].get.responses['200'].headers.ETag.schema.pattern;
    expect(listEtag(42, true)).toMatch(new RegExp(etag));
    expect(listEtag(7, false)).toMatch(new RegExp(etag));
    const limit = openapi.paths['/v1/clusters/{clusterId}/nodes'].get.parameters.find((p) => p.name === 'limit')?.schema;
    expect(limit).toMatchObject({ minimum: 1, maximum: LIST_PAGE_MAX, default: LIST_PAGE_DEFAULT });
    // The figures its prose states are the server's.
    const prose = openapi.paths['/v1/clusters/{clusterId}/nodes'].get.description;
    expect(prose).toContain(`${PAGE_MAX_BYTES / 1024 / 1024} MiB`);
    expect(prose).toContain(`larger than ${GZIP_MIN_BYTES / 1024} KiB`);
    expect(prose).toContain(`(${LIST_PAGE_DEFAULT} unless asked; at most ${LIST_PAGE_MAX})`);
  });
});

describe('the AsyncAPI document', () => {
  test('is valid AsyncAPI 3 by @asyncapi/parser, its references to the OpenAPI document resolved', async () => {
    const { document, diagnostics } = await fromFile(new Parser(), file('asyncapi.json')).parse();
    // Spectral severities: 0 error, 1 warning (2 information and 3 hints are advice).
    expect(diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`)).toEqual([]);
    expect(document?.version()).toMatch(/^3\./);
    const node = document?.components().schemas().get('MembershipEvent')?.properties()?.node;
    expect(node?.required()).toContain('revision');
  });

  test('states the contract module\'s connect parameters, actions, event types and messages', () => {
    expect(Object.keys(asyncapi.channels.roster.bindings.ws.query.properties)).toEqual([...WS_CONNECT_PARAMETERS]);
    // No others: the connect handler refuses any other parameter.
    expect(asyncapi.channels.roster.bindings.ws.query.additionalProperties).toBe(false);
    // The deployment's address: the stack's one stage.
    expect(asyncapi.servers.aws.pathname).toBe(`/${WEBSOCKET_STAGE_NAME}`);
    const actions = [events.SubscribeMessage, events.UnsubscribeMessage, events.PingMessage].map((s) => s.properties.action.const);
    expect(actions).toEqual([...WS_ACTIONS]);
    expect(events.MembershipEvent.properties.type.enum).toEqual([...EVENT_TYPES]);
    // The wait for a late event it states is the one RevisionedMap keeps.
    expect(events.MembershipEvent.description).toContain(`wait up to ${GAP_WAIT_MS / 1000} s`);
    const replies = [events.SubscribedReply, events.UnsubscribedReply, events.PongReply, events.ErrorReply, events.EventsBatch].map((s) => s.properties.type.const);
    expect(replies).toEqual(['SUBSCRIBED', 'UNSUBSCRIBED', 'PONG', 'ERROR', 'EVENTS']);
  });
});
