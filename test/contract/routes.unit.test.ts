/**
 * Adding an HTTP route or a WebSocket action touches several places
 * (docs/contributing/layout.md#adding-a-route-or-an-action); this file fails
 * for each one of them forgotten that can be read without synthesizing the
 * stack. The others have their own tests: the OpenAPI operation
 * (documents.unit.test.ts), the template's route (test/infra/stack.unit.test.ts),
 * the generated reference (test/docs/reference.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { WS_ACTIONS } from '@roster/contract';
import { describe, expect, test } from 'vitest';
import { HttpClient } from '../../client/src/http-client.ts';
import { HTTP_DEFAULT_HANDLER, HTTP_ROUTES, WS_ROUTES } from '../../functions/core/routes.ts';
import { PROJECT_ROOT } from '../../infra/function.ts';
import { HTTP_TABLE_ACCESS, NO_TABLE_ACCESS, WS_TABLE_ACCESS } from '../../infra/table-access.ts';

const httpHandlers = [...new Set([...HTTP_ROUTES.map((r) => r.handler), HTTP_DEFAULT_HANDLER])].sort();
const wsHandlers = WS_ROUTES.map((r) => r.handler).sort();

const modulesIn = (folder: string): string[] =>
  readdirSync(path.join(PROJECT_ROOT, folder))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();

const exportsHandler = (file: string): boolean => /^export (const|async function|function) handler\b/m.test(readFileSync(path.join(PROJECT_ROOT, file), 'utf8'));

describe('each route has a handler module, and each handler module a route', () => {
  test('HTTP: functions/http/<handler>.ts exports `handler` for every route of functions/core/routes.ts and $default', () => {
    expect(modulesIn('functions/http')).toEqual(httpHandlers);
    for (const handler of httpHandlers) expect(exportsHandler(`functions/http/${handler}.ts`), `functions/http/${handler}.ts exports no handler`).toBe(true);
  });

  test('WebSocket: functions/ws/<handler>.ts exports `handler` for every route', () => {
    expect(modulesIn('functions/ws')).toEqual(wsHandlers);
    for (const handler of wsHandlers) expect(exportsHandler(`functions/ws/${handler}.ts`), `functions/ws/${handler}.ts exports no handler`).toBe(true);
  });
});

describe("each handler's table access is written down (infra/table-access.ts): an entry, or an explicit none", () => {
  const check = (handlers: string[], access: Readonly<Record<string, unknown>>, none: readonly string[]) => {
    for (const handler of handlers) {
      const said = [handler in access && 'an entry', none.includes(handler) && 'none'].filter(Boolean);
      expect(said, `${handler}: its table access must be written down once (an entry, or NO_TABLE_ACCESS)`).toHaveLength(1);
    }
    // An entry for a handler no route has is a route removed and its access left behind.
    expect([...Object.keys(access), ...none].filter((h) => !handlers.includes(h))).toEqual([]);
  };

  test('HTTP', () => check(httpHandlers, HTTP_TABLE_ACCESS, NO_TABLE_ACCESS.http));
  test('WebSocket', () => check(wsHandlers, WS_TABLE_ACCESS, NO_TABLE_ACCESS.ws));
});

test("the contract's WebSocket actions are the route table's actions ($connect, $disconnect and $default are API Gateway's)", () => {
  expect(WS_ROUTES.map((r) => r.routeKey).filter((key) => !key.startsWith('$')).sort()).toEqual([...WS_ACTIONS].sort());
});

/**
 * Which SDK method (client/src/http-client.ts) calls each HTTP route, or why none
 * does: a route added without a line here fails, so whether the SDK needs it
 * is decided, not forgotten. That each method calls its route is the client
 * and conformance suites' part (test/client/, test/conformance/).
 */
const SDK_METHOD: Readonly<Record<string, keyof HttpClient | { none: string }>> = {
  register: 'register',
  keepalive: 'keepalive',
  deregister: 'deregister',
  'list-nodes': 'listNodesUnless',
  'get-node': { none: 'the SDK reads a node from its cached list' },
  'list-clusters': { none: 'an admin token’s question, asked by the web console (console/src/clusters-view.ts)' },
  health: { none: 'for load balancers and operators' },
  openapi: { none: 'the document, for clients in other languages' },
  console: { none: 'the web console, for people' },
};

test('each HTTP route has its SDK method, or says why it has none', () => {
  expect(Object.keys(SDK_METHOD).sort()).toEqual(HTTP_ROUTES.map((r) => r.handler).filter((h, i, all) => all.indexOf(h) === i).sort());
  for (const [handler, method] of Object.entries(SDK_METHOD)) {
    if (typeof method === 'string') expect(typeof HttpClient.prototype[method], `HttpClient.${method} (for ${handler})`).toBe('function');
  }
});
