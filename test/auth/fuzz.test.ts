/**
 * Inputs that cannot hurt the information center: a seeded, deterministic
 * fuzzer throws well over 10,000 generated and mutated requests at the local
 * runtime with `--auth` on 127.0.0.1 — paths, methods, headers, tokens,
 * bodies, unicode, huge values, and WebSocket connects and frames (invalid
 * JSON, binary, oversized, unknown actions, subscribe floods).
 *
 * It asserts: no 5xx and no INTERNAL error reply, no stack trace in any
 * answer, the runtime process alive throughout, and afterwards the table
 * holds exactly what the accepted requests wrote (every node, cluster and
 * revision item traces back to a 2xx registration; no connection or
 * subscription is left once every socket closed).
 *
 * FUZZ_SEED picks another deterministic run; the outcome counts are printed.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, expect, test } from 'vitest';
import WebSocket from 'ws';
import type { Role } from '../../functions/core/auth.ts';
import { ACTION_LIMIT } from '../../functions/core/action-limit.ts';
import { isValidId } from '@roster/contract';
import { expiredWith, startAuthRuntime, unsignedAdmin, wronglySigned, type AuthRuntime } from './support.ts';
import { eventually, sleep } from '../support/wait.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const HTTP_CASES = 10_000;
const HTTP_CONCURRENCY = 24;
const WS_SESSIONS = 48;
const WS_CONCURRENCY = 6;
const FRAMES_PER_SESSION = 36;

let rt: AuthRuntime;
beforeAll(async () => {
  rt = await startAuthRuntime();
});
afterAll(async () => {
  await rt?.stop();
});

// ─── A deterministic random source ───────────────────────────────────────────

type Rng = () => number;
function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (r: Rng, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rng, xs: readonly T[]): T => xs[int(r, xs.length)] as T;
const chance = (r: Rng, p: number): boolean => r() < p;
const caseRng = (stream: number, i: number): Rng => mulberry32((SEED ^ Math.imul(stream, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);

// ─── Vocabulary ─────────────────────────────────────────────────────────────

const CLUSTERS = ['fz-a', 'fz-b', 'fz-c'] as const;
const NODES = Array.from({ length: 12 }, (_, i) => `n${i}`);
const UNICODE = ['✓', 'ø', '日本', '🦀', 'é', '\u202e', 'Ā', '\u00a0', 'ß', '𝔘'];
const BAD_IDS = ['', '.', '..', '*', '%2F', '%00', '%', '%zz', '%E2%9C%93', 'a b', 'a%20b', 'x'.repeat(65), 'y'.repeat(3000), 'é', 'ÿÿ', '__proto__', 'constructor', '-'];

interface Tokens {
  valid: { role: Role; cluster: string; token: string }[];
  bad: string[];
}
let tokens: Tokens;

function id(r: Rng, pool: readonly string[]): string {
  const roll = r();
  if (roll < 0.75) return pick(r, pool);
  if (roll < 0.9) return encodeURIComponent(pick(r, BAD_IDS.concat(UNICODE)));
  return pick(r, BAD_IDS);
}

function authorization(r: Rng): string | undefined {
  const roll = r();
  if (roll < 0.12) return undefined;
  if (roll < 0.6) return `Bearer ${pick(r, tokens.valid).token}`;
  if (roll < 0.85) return `Bearer ${pick(r, tokens.bad)}`;
  return pick(r, [
    '',
    'Bearer',
    'Bearer ',
    'Basic dXNlcjpwYXNz',
    `bearer    ${pick(r, tokens.valid).token}   `,
    `Bearer ${'A'.repeat(3000)}.${'B'.repeat(3000)}.C`,
    `Bearer ${pick(r, tokens.valid).token}x`,
    `Bearer é\u00ff\u0080`,
    `Token ${pick(r, tokens.valid).token}`,
    `Bearer ${pick(r, tokens.valid).token}, Bearer ${pick(r, tokens.valid).token}`,
  ]);
}

function metadata(r: Rng): unknown {
  const roll = r();
  if (roll < 0.55) {
    const out: Record<string, string> = {};
    for (let i = int(r, 4); i > 0; i--) out[`k${int(r, 50)}`] = `v${int(r, 1000)}${chance(r, 0.2) ? pick(r, UNICODE) : ''}`;
    return out;
  }
  return pick(r, [
    Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
    { big: 'x'.repeat(5000) },
    { nested: { a: 'b' } },
    { n: 1 },
    { arr: ['a'] },
    { '': 'empty key' },
    { ['k'.repeat(129)]: 'v' },
    { __proto__: 'p', constructor: 'c' },
    JSON.parse('{"__proto__":{"polluted":"yes"}}') as unknown,
    [],
    'string',
    null,
    { [pick(r, UNICODE)]: pick(r, UNICODE) },
  ]);
}

function jsonBody(r: Rng, kind: 'register' | 'keepalive'): unknown {
  const body: Record<string, unknown> = {};
  if (kind === 'register') {
    if (chance(r, 0.7)) body.metadata = metadata(r);
    if (chance(r, 0.5)) body.leaseSeconds = chance(r, 0.7) ? pick(r, [2, 15, 60, 3600]) : pick(r, [0, 1, 3601, 2.5, -1, '15', 1e308, null, true]);
  }
  if (chance(r, 0.3)) body.incarnation = chance(r, 0.6) ? 1 + int(r, 5) : pick(r, [0, -1, 2 ** 53, 1.5, 'x', null, 2 ** 53 + 2]);
  if (chance(r, 0.08)) body[pick(r, ['extra', 'token', 'status', '__proto__'])] = 1;
  return body;
}

/** A body: valid JSON for the route most of the time, otherwise something broken, odd or huge. */
function body(r: Rng, kind: 'register' | 'keepalive' | 'none'): { data?: Buffer; huge: boolean } {
  const roll = r();
  if (kind !== 'none' && roll < 0.6) return { data: Buffer.from(JSON.stringify(jsonBody(r, kind))), huge: false };
  if (roll < 0.7) return { huge: false };
  const choices: (() => Buffer)[] = [
    () => Buffer.from('{"metadata":'),
    () => Buffer.from('{"metadata":{}} trailing'),
    () => Buffer.from('\ufeff{}'),
    () => Buffer.from('null'),
    () => Buffer.from('[]'),
    () => Buffer.from('"just a string"'),
    () => Buffer.from('{"a":"\u0000"}'),
    () => Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x7d]),
    () => Buffer.from(`${'['.repeat(6000)}${']'.repeat(6000)}`),
    () => Buffer.from(JSON.stringify({ metadata: { k: 'v'.repeat(17_000) } })),
    () => Buffer.from(pick(r, UNICODE).repeat(200)),
    () => Buffer.alloc(0),
  ];
  if (chance(r, 0.03)) return { data: Buffer.alloc(1024 * 1024 + int(r, 1024), 0x61), huge: true };
  return { data: pick(r, choices)(), huge: false };
}

interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The server may drop the connection instead of (or after) answering: an oversized request or a request Node's parser refuses. */
  mayReset: boolean;
}

function mutatePath(r: Rng, path: string): string {
  switch (int(r, 8)) {
    case 0:
      return path.replace(/\//g, '//');
    case 1:
      return `${path}/`;
    case 2:
      return path.toUpperCase();
    case 3:
      return `${path}/${encodeURIComponent(pick(r, UNICODE))}`;
    case 4:
      return path.replace('/v1/', '/v1/../v1/');
    case 5:
      return `${path}${pick(r, ['?status=all', '?status=bad', '?incarnation=1', '?incarnation=-1', '?a=1&a=2', `?token=${pick(r, tokens.valid).token}`, `?x=${'q'.repeat(5000)}`, '?%zz=1'])}`;
    case 6:
      return path.replace(/\/nodes/, '/Nodes');
    default:
      return `${path}${'/x'.repeat(1 + int(r, 3))}`;
  }
}

function httpCase(i: number): HttpCase {
  const r = caseRng(1, i);
  const c = id(r, CLUSTERS);
  const n = id(r, NODES);
  const routes: [string, string, 'register' | 'keepalive' | 'none'][] = [
    ['PUT', `/v1/clusters/${c}/nodes/${n}`, 'register'],
    ['PUT', `/v1/clusters/${c}/nodes/${n}`, 'register'],
    ['POST', `/v1/clusters/${c}/nodes/${n}/keepalive`, 'keepalive'],
    ['DELETE', `/v1/clusters/${c}/nodes/${n}${chance(r, 0.2) ? `?incarnation=${pick(r, ['1', '0', 'x', '99999999999999999'])}` : ''}`, 'none'],
    ['GET', `/v1/clusters/${c}/nodes/${n}`, 'none'],
    ['GET', `/v1/clusters/${c}/nodes${chance(r, 0.3) ? '?status=all' : ''}`, 'none'],
    ['GET', '/v1/clusters', 'none'],
    ['GET', '/v1/health', 'none'],
    ['GET', pick(r, ['/console', '/', '/ws', '/favicon.ico', '/v2', '/v1', '/%', '/%00', `/${pick(r, UNICODE)}`]), 'none'],
  ];
  const chosen = pick(r, routes);
  const kind = chosen[2];
  let [method, path] = chosen;
  if (chance(r, 0.15)) path = mutatePath(r, path);
  let mayReset = false;
  if (chance(r, 0.08)) {
    method = pick(r, ['PATCH', 'OPTIONS', 'HEAD', 'PUT', 'POST', 'DELETE', 'PROPFIND', 'FOO']);
    if (method === 'FOO') mayReset = true;
  }
  // Node's client refuses characters outside 0x21-0xff in a path; send everything else as-is.
  path = path.replace(/[^\u0021-\u00ff]/gu, (ch) => encodeURIComponent(ch));
  if (path.length > 8000) mayReset = true;
  // Node's parser refuses raw non-ASCII bytes in a request target; the runtime's 400 then carries a body,
  // which a client that sent HEAD does not expect to read.
  if (method === 'HEAD' && /[\u0080-\u00ff]/.test(path)) mayReset = true;
  const headers: Record<string, string> = {};
  const auth = authorization(r);
  if (auth !== undefined) headers.authorization = auth;
  if (auth !== undefined && auth.length > 8000) mayReset = true;
  if (chance(r, 0.7)) headers['content-type'] = pick(r, ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '']);
  if (chance(r, 0.05)) headers['content-encoding'] = 'gzip';
  if (chance(r, 0.05)) headers.cookie = `${'a=b; '.repeat(int(r, 50))}é=ÿ`;
  if (chance(r, 0.03)) {
    headers['x-huge'] = 'h'.repeat(20_000);
    mayReset = true;
  }
  if (chance(r, 0.05)) headers['x-forwarded-for'] = pick(r, ['1.2.3.4', 'not-an-ip', 'é']);
  const b = body(r, kind);
  // Node's HTTP client mangles a HEAD request that has a body (its parser then fails on the answer); no real client sends one.
  if (method === 'HEAD') b.data = undefined;
  if (b.huge) mayReset = true;
  if (b.data && b.data.length > 16 * 1024) mayReset = true;
  return { method, path, headers, body: b.data, mayReset };
}

// ─── Sending ────────────────────────────────────────────────────────────────

interface HttpOutcome {
  status?: number;
  text: string;
  error?: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: HTTP_CONCURRENCY });

function send(port: number, c: HttpCase): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    // Header values travel as bytes: a string's UTF-8 bytes, read as latin1, are sent as they are.
    const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('latin1')]));
    let req;
    try {
      req = request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent, timeout: 30_000 });
    } catch (err) {
      resolve({ text: '', error: `client-refused:${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size < 256 * 1024) chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: res.statusCode, text: '', error: err.code ?? 'error' }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ text: '', error: err.code ?? err.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(c.body);
  });
}

const STACK_TRACE = /\n\s+at |\.ts:\d+|node_modules|Error: /;

interface Tally {
  counts: Map<string, number>;
  failures: string[];
  /** `cluster/node` → the metadata (as sorted JSON) of each registration answered 2xx. */
  registered: Map<string, Set<string>>;
}

const bump = (t: Tally, key: string) => t.counts.set(key, (t.counts.get(key) ?? 0) + 1);
const canonical = (m: Record<string, string>): string => JSON.stringify(Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b))));

function check(t: Tally, c: HttpCase, o: HttpOutcome): void {
  if (o.status === undefined) {
    bump(t, `http reset (${o.error ?? '?'})`);
    if (!c.mayReset) t.failures.push(`${c.method} ${c.path.slice(0, 120)}: ${o.error ?? 'no answer'}`);
    return;
  }
  bump(t, `http ${o.status}`);
  if (o.status >= 500) t.failures.push(`${c.method} ${c.path.slice(0, 120)} -> ${o.status} ${o.text.slice(0, 200)}`);
  if (STACK_TRACE.test(o.text)) t.failures.push(`${c.method} ${c.path.slice(0, 120)}: internals in the answer: ${o.text.slice(0, 200)}`);
  if (o.status >= 400 && c.method !== 'HEAD') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(o.text);
    } catch {
      parsed = undefined;
    }
    const p = parsed as { error?: { code?: unknown; message?: unknown }; message?: unknown } | undefined;
    const contract = typeof p?.error?.code === 'string' && typeof p.error.message === 'string';
    const gateway = o.status === 401 && p?.message === 'Unauthorized';
    if (!contract && !gateway) t.failures.push(`${c.method} ${c.path.slice(0, 120)} -> ${o.status} without the error contract: ${o.text.slice(0, 200)}`);
    if (contract) bump(t, `http ${o.status} ${String(p?.error?.code)}`);
  }
  // The route is matched on the path alone; a query string does not change it.
  const routePath = c.path.split('?')[0] ?? '';
  const register = c.method === 'PUT' && /^\/v1\/clusters\/[^/]+\/nodes\/[^/]+$/.test(routePath);
  if (register && (o.status === 200 || o.status === 201)) {
    const [, , , cluster, , node] = routePath.split('/').map((s) => decodeURIComponent(s));
    const sent = c.body && c.body.length > 0 ? (JSON.parse(c.body.toString('utf8')) as { metadata?: Record<string, string> }) : {};
    const key = `${String(cluster)}/${String(node)}`;
    const set = t.registered.get(key) ?? new Set<string>();
    set.add(canonical(sent.metadata ?? {}));
    t.registered.set(key, set);
  }
}

// ─── WebSocket sessions ─────────────────────────────────────────────────────

function connectQuery(r: Rng): Record<string, string> {
  const q: Record<string, string> = {};
  const roll = r();
  const valid = pick(r, tokens.valid);
  if (roll < 0.8) q.token = valid.token;
  else if (roll < 0.93) q.token = pick(r, tokens.bad);
  if (chance(r, 0.7)) {
    // Mostly the token's own cluster (the connection opens), sometimes another or an invalid id.
    const own = valid.cluster === '*' ? pick(r, CLUSTERS) : valid.cluster;
    q.clusterId = chance(r, 0.75) ? own : chance(r, 0.5) ? pick(r, CLUSTERS) : pick(r, BAD_IDS.concat(UNICODE));
  }
  if (chance(r, 0.1)) q.nodeId = pick(r, NODES.concat(BAD_IDS));
  if (chance(r, 0.05)) q.incarnation = pick(r, ['1', '0', 'abc', '99999999999999999999']);
  if (chance(r, 0.05)) q.extra = 'é'.repeat(int(r, 100));
  return q;
}

function frame(r: Rng): { data: string | Buffer; binary: boolean; tooBig: boolean } {
  const roll = r();
  const cluster = () => (chance(r, 0.8) ? pick(r, CLUSTERS) : pick(r, BAD_IDS.concat(UNICODE)));
  if (roll < 0.35) return { data: JSON.stringify({ action: pick(r, ['subscribe', 'unsubscribe']), clusterId: cluster() }), binary: false, tooBig: false };
  if (roll < 0.45) return { data: '{"action":"ping"}', binary: false, tooBig: false };
  if (roll < 0.5) return { data: Buffer.from(Array.from({ length: 1 + int(r, 64) }, () => int(r, 256))), binary: true, tooBig: false };
  if (roll < 0.505) return { data: 'x'.repeat(200 * 1024), binary: false, tooBig: true };
  const odd = [
    'not json',
    '',
    '{',
    'null',
    '[]',
    '"subscribe"',
    '{"action":"$connect"}',
    '{"action":"$disconnect"}',
    '{"action":"unknown"}',
    '{"action":42}',
    '{"action":["subscribe"]}',
    '{"action":{"nested":true}}',
    '{"action":"subscribe"}',
    '{"action":"subscribe","clusterId":"fz-a","extra":1}',
    '{"action":"ping","x":1}',
    JSON.stringify({ action: 'subscribe', clusterId: 'c'.repeat(5000) }),
    `{"action":"subscribe","clusterId":"${'['.repeat(3000)}"}`,
    JSON.stringify({ action: pick(r, UNICODE), clusterId: pick(r, UNICODE) }),
  ];
  return { data: pick(r, odd), binary: false, tooBig: false };
}

async function wsSession(t: Tally, i: number): Promise<void> {
  const r = caseRng(2, i);
  const query = connectQuery(r);
  const ws = new WebSocket(`${rt.wsUrl}?${new URLSearchParams(query).toString()}`, { maxPayload: 1024 * 1024 });
  const inbox: Record<string, unknown>[] = [];
  let closed: number | undefined;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  ws.on('message', (data) => {
    try {
      inbox.push(JSON.parse(data.toString()) as Record<string, unknown>);
    } catch {
      t.failures.push(`ws: a reply that is not JSON: ${data.toString().slice(0, 100)}`);
    }
    notify();
  });
  ws.on('close', (code) => {
    closed = code;
    notify();
  });
  ws.on('error', () => {});
  const upgrade = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (req, res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        if (STACK_TRACE.test(text)) t.failures.push(`ws connect: internals in the refusal: ${text.slice(0, 200)}`);
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
    });
    ws.once('open', () => resolve(101));
    ws.once('error', () => resolve(0));
  });
  bump(t, `ws connect ${upgrade}`);
  if (upgrade >= 500 || upgrade === 0) t.failures.push(`ws connect ${JSON.stringify(query).slice(0, 200)} -> ${upgrade}`);
  if (upgrade !== 101) return;

  const nextReply = (from: number): Promise<Record<string, unknown> | undefined> =>
    new Promise((resolve) => {
      const look = () => {
        // Membership events of subscribed clusters may arrive in between; replies are everything else.
        const found = inbox.slice(from).find((m) => !String(m.type).startsWith('NODE_'));
        if (found || closed !== undefined) {
          waiters.delete(look);
          clearTimeout(timer);
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(look);
        resolve(undefined);
      }, 10_000);
      waiters.add(look);
      look();
    });

  // A flood of subscribe actions in some sessions: more than twice the limit, so that one fixed window
  // overflows even when the flood straddles a window's end (a flood of 130 could split 70 + 60 and meet no limit).
  const frames = Array.from({ length: FRAMES_PER_SESSION }, () => frame(r));
  if (chance(r, 0.25)) {
    frames.unshift(...Array.from({ length: 2 * ACTION_LIMIT.actions + 1 }, () => ({ data: JSON.stringify({ action: pick(r, ['subscribe', 'unsubscribe']), clusterId: pick(r, CLUSTERS) }), binary: false, tooBig: false })));
  }
  for (const f of frames) {
    if (closed !== undefined) break;
    const before = inbox.length;
    ws.send(f.data, { binary: f.binary });
    const reply = await nextReply(before);
    if (f.tooBig) {
      bump(t, `ws frame closed ${closed ?? 'open'}`);
      if (closed !== 1009) t.failures.push(`ws: an oversized frame closed the connection with ${closed ?? 'nothing'}, not 1009`);
      break;
    }
    if (!reply) {
      t.failures.push(`ws: no reply to ${String(f.data).slice(0, 80)} (closed ${closed ?? 'no'})`);
      break;
    }
    const code = reply.type === 'ERROR' ? String((reply.error as { code?: unknown } | undefined)?.code) : '';
    bump(t, `ws frame ${String(reply.type)}${code ? ` ${code}` : ''}`);
    if (code === 'INTERNAL' || code === 'undefined') t.failures.push(`ws: ${String(f.data).slice(0, 80)} -> ${JSON.stringify(reply).slice(0, 200)}`);
  }
  if (closed === undefined) {
    const done = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000);
    await Promise.race([done, sleep(5000)]);
  }
}

async function pool<T>(count: number, concurrency: number, job: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        await job(i);
      }
    }),
  );
}

test(`${HTTP_CASES} HTTP requests and ${WS_SESSIONS} WebSocket sessions of generated input: no 5xx, no crash, and only valid writes in the table`, async () => {
  const mint = (cluster: string, role: Role) => rt.mint(cluster, role);
  tokens = {
    valid: await Promise.all(
      (['node', 'reader', 'admin'] as const).flatMap((role) => [...CLUSTERS.slice(0, 2), '*'].map(async (cluster) => ({ role, cluster, token: await mint(cluster, role) }))),
    ),
    bad: [
      await expiredWith(rt.secret, '*', 'admin'),
      await wronglySigned('*', 'admin'),
      unsignedAdmin(),
      'abc.def.ghi',
      'not-a-token',
      `${'a'.repeat(50)}.${'b'.repeat(50)}.`,
      '…',
    ],
  };
  const t: Tally = { counts: new Map(), failures: [], registered: new Map() };
  const started = Date.now();
  let alive = true;
  const watchdog = setInterval(() => {
    if (rt.runtime.process.exitCode !== null || rt.runtime.process.signalCode !== null) alive = false;
  }, 100);

  await pool(HTTP_CASES, HTTP_CONCURRENCY, async (i) => {
    const c = httpCase(i);
    check(t, c, await send(rt.runtime.port, c));
  });
  const httpMs = Date.now() - started;
  await pool(WS_SESSIONS, WS_CONCURRENCY, (i) => wsSession(t, i));
  clearInterval(watchdog);
  agent.destroy();
  const totalMs = Date.now() - started;

  // The runtime is alive and still answers.
  expect(alive).toBe(true);
  expect(rt.runtime.process.exitCode).toBeNull();
  expect((await fetch(`${rt.httpUrl}/v1/health`)).status).toBe(200);

  const frames = [...t.counts].filter(([k]) => k.startsWith('ws frame')).reduce((sum, [, n]) => sum + n, 0);
  const connects = [...t.counts].filter(([k]) => k.startsWith('ws connect')).reduce((sum, [, n]) => sum + n, 0);
  console.info(
    `fuzz (seed ${SEED}): ${HTTP_CASES} HTTP requests in ${(httpMs / 1000).toFixed(1)} s, ${connects} WebSocket connects and ${frames} frames; ` +
      `${HTTP_CASES + connects + frames} cases in ${(totalMs / 1000).toFixed(1)} s; ${t.registered.size} node keys registered\n` +
      [...t.counts].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `  ${k.padEnd(40)} ${n}`).join('\n'),
  );
  if (t.failures.length > 0) console.error(rt.runtime.output().split('\n').filter((l) => /ERROR|error/.test(l)).slice(0, 10).join('\n'));
  expect([...t.failures.filter((f) => / -> 5\d\d /.test(f)), ...t.failures].slice(0, 20)).toEqual([]);
  expect(HTTP_CASES + connects + frames).toBeGreaterThanOrEqual(10_000);
  // The fuzzer reached the interesting places: accepted writes, each kind of refusal, throttling, oversized input.
  for (const key of ['http 201', 'http 200', 'http 204', 'http 400 VALIDATION_FAILED', 'http 401 UNAUTHORIZED', 'http 403 FORBIDDEN', 'http 404 NOT_FOUND', 'http 413 PAYLOAD_TOO_LARGE', 'ws connect 101', 'ws connect 401', 'ws frame SUBSCRIBED', 'ws frame ERROR THROTTLED', 'ws frame ERROR FORBIDDEN']) {
    expect(t.counts.get(key) ?? 0, key).toBeGreaterThan(0);
  }

  // Every socket is closed: once their $disconnects ran, no connection or subscription item is left — only the
  // clusters' subscriptions versions, counters that must never go back (functions/core/subscriptions.ts).
  const items = await eventually(async () => {
    const all = await rt.scan();
    const left = all.filter((i) => /^(WS|S)#/.test(String(i.pk)) && !(String(i.pk).startsWith('S#') && /^VERSION(#\d+)?$/.test(String(i.sk))));
    expect(left.map((i) => `${String(i.pk)} ${String(i.sk)}`)).toEqual([]);
    return all;
  }, 15_000, 'no connection or subscription item left');

  // Only what accepted registrations wrote: node items with their metadata, and their clusters' index and revision items.
  const clusters = new Set([...t.registered.keys()].map((k) => k.split('/')[0]));
  const unexpected: string[] = [];
  for (const item of items) {
    const pk = String(item.pk);
    const sk = String(item.sk);
    if (pk === 'CLUSTERS') {
      if (!clusters.has(sk)) unexpected.push(`cluster index ${sk}`);
    } else if (pk.startsWith('C#') && sk === 'META') {
      if (!clusters.has(pk.slice(2))) unexpected.push(`revision of ${pk}`);
    } else if (pk.startsWith('C#') && sk.startsWith('N#')) {
      const key = `${pk.slice(2)}/${sk.slice(2)}`;
      const accepted = t.registered.get(key);
      if (!accepted) unexpected.push(`node ${key}`);
      else if (!accepted.has(canonical((item.metadata as Record<string, string> | undefined) ?? {}))) unexpected.push(`metadata of ${key}: ${JSON.stringify(item.metadata)}`);
      if (item.clusterId !== pk.slice(2) || item.nodeId !== sk.slice(2)) unexpected.push(`ids of ${key}`);
    } else if (pk.startsWith('S#') && /^VERSION(#\d+)?$/.test(sk)) {
      // A cluster someone subscribed to: its subscriptions version's shards stay.
      if (!isValidId(pk.slice(2))) unexpected.push(`subscriptions version of ${pk}`);
    } else unexpected.push(`${pk} ${sk}`);
  }
  expect(unexpected).toEqual([]);
  // And every accepted registration is there.
  expect(items.filter((i) => String(i.sk).startsWith('N#')).length).toBe(t.registered.size);
  expect(rt.runtime.output()).not.toMatch(/failed inside the runtime|answered 500/);
}, 420_000);
