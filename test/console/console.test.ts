/**
 * The web console end to end, in a real headless browser (Debian's
 * chromium, driven by playwright-core) against the local runtime in a real
 * child process, with real agent processes:
 * nodes register → their rows appear live; an agent is SIGKILLed → its row
 * turns DOWN (disconnected) within a generous multiple of the detection
 * bound; the runtime restarts → the "connection lost" banner shows, then
 * "resynced", then clears. Screenshots go to test-results/console/.
 *
 * Chromium is required, not optional: without it this file fails with the
 * command that installs it (CI installs it in .ci/run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnRuntime, type SpawnedRuntime } from '../support/runtime.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const BIN = fileURLToPath(new URL('../../bin/roster.js', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../test-results/console/', import.meta.url));
/** Detection bound of a crashed agent: grace 2 s + sweep 1 s + delivery (generously 2 s); the test allows 4×. */
const CRASH_BOUND_MS = 2000 + 1000 + 2000;
const SLACK = 4;
const CLUSTER = 'backup';

let scratch: string;
let runtime: SpawnedRuntime | undefined;
let context: BrowserContext | undefined;
let page: Page;
const agents = new Map<string, ChildProcess>();
/** Every URL the page requested (HTTP) or opened (WebSocket). */
const requested: string[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];

function startRuntime(port = 0): Promise<SpawnedRuntime> {
  return spawnRuntime({ port, dataDir: path.join(scratch, 'data'), sweepInterval: 1, disconnectGrace: 2 });
}

function startAgent(nodeId: string, extra: string[]): ChildProcess {
  if (!runtime) throw new Error('no runtime');
  const agent = spawn(process.execPath, [BIN, 'agent', CLUSTER, nodeId, '--url', runtime.httpUrl, '--ws-url', runtime.wsUrl, ...extra], {
    stdio: 'ignore',
  });
  agents.set(nodeId, agent);
  return agent;
}

const row = (nodeId: string) => page.locator(`tr[data-node-id="${nodeId}"]`);
/** Evaluates a JavaScript expression in the page (a string: the tests' TypeScript has no DOM types). */
const js = async <T>(expression: string): Promise<T> => (await page.evaluate(expression)) as T;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium); .ci/run does this in CI`);
  }
  scratch = mkdtempSync(path.join(tmpdir(), 'roster-console-'));
  mkdirSync(SHOTS, { recursive: true });
  runtime = await startRuntime();
  // A persistent context is how playwright takes a user data directory of our own (a fresh one).
  context = await chromium.launchPersistentContext(path.join(scratch, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('request', (req) => requested.push(req.url()));
  page.on('websocket', (ws) => requested.push(ws.url()));
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });
}, 90_000);

afterAll(async () => {
  for (const agent of agents.values()) agent.kill('SIGKILL');
  await context?.close();
  await runtime?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}, 60_000);

describe.sequential('the web console', () => {
  test('shows nodes as they register, live, in the cluster view and the clusters view', async () => {
    if (!runtime) throw new Error('no runtime');
    await page.goto(`${runtime.httpUrl}/#/clusters/${CLUSTER}`);
    await expect.poll(() => page.locator('#conn').getAttribute('data-state'), { timeout: 10_000 }).toBe('open');
    await expect.poll(() => page.locator('.summary').textContent(), { timeout: 10_000 }).toMatch(/^0 UP · 0 DOWN/);

    // A long lease for n1: only its dropped connection can take it down quickly.
    startAgent('n1', ['--lease', '300', '--meta', 'zone=a', '--meta', 'role=primary']);
    startAgent('n2', ['--lease', '20', '--meta', 'zone=b']);
    startAgent('n3', ['--lease', '30', '--meta', 'zone=c']);
    for (const id of ['n1', 'n2', 'n3']) {
      await expect.poll(() => row(id).getAttribute('data-status'), { timeout: 20_000 }).toBe('UP');
    }
    await expect(row('n1').locator('.c-meta').textContent()).resolves.toContain('zone=a');
    await expect(row('n2').locator('.c-lease').textContent()).resolves.toBe('20 s');
    await expect(row('n2').locator('.c-expires').textContent()).resolves.toMatch(/^≥ \d+ s$/);
    await expect.poll(() => page.locator('.feed-list li').count(), { timeout: 10_000 }).toBe(3);

    // Keyboard: the breadcrumb link, Enter → the clusters view, with the focus on its heading.
    await page.locator('nav.crumbs a').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).hash, { timeout: 10_000 }).toBe('#/');
    await expect.poll(() => page.locator('h1:focus').count(), { timeout: 10_000 }).toBe(1);
    const clusterRow = page.locator(`tr[data-cluster-id="${CLUSTER}"]`);
    await expect.poll(() => clusterRow.locator('.c-up').textContent(), { timeout: 10_000 }).toBe('3');
    await expect(clusterRow.locator('.c-down').textContent()).resolves.toBe('0');
    await expect(clusterRow.locator('.c-last').textContent()).resolves.toMatch(/ago$/);
    await page.screenshot({ path: path.join(SHOTS, 'clusters.png'), fullPage: true });

    // Tab from the heading reaches the cluster's link; Enter opens the cluster again.
    await page.keyboard.press('Tab');
    await expect.poll(() => page.locator(':focus').textContent(), { timeout: 10_000 }).toBe(CLUSTER);
    await page.keyboard.press('Enter');
    await expect.poll(() => row('n3').getAttribute('data-status'), { timeout: 10_000 }).toBe('UP');
    await page.screenshot({ path: path.join(SHOTS, 'cluster.png'), fullPage: true });
    // The footer says what the sweeper is for, not only a "lag".
    await expect
      .poll(() => page.locator('#status-line').textContent(), { timeout: 10_000 })
      .toMatch(/the sweeper \(it marks nodes whose lease ran out DOWN\) last ran (under 1 s|\d+ s) before \d\d:\d\d:\d\d/);
  });

  test('turns a killed agent\'s row DOWN (disconnected) within the detection bound', async () => {
    // Note, in the page, when the row turns DOWN: the same clock as this process (one machine).
    await js(`(() => {
      const target = document.querySelector('tr[data-node-id="n1"]');
      new MutationObserver(() => {
        if (target.getAttribute('data-status') === 'DOWN') window.downAt ??= Date.now();
      }).observe(target, { attributes: true, attributeFilter: ['data-status'] });
    })()`);
    const killedAt = Date.now();
    agents.get('n1')?.kill('SIGKILL');
    await expect.poll(() => row('n1').getAttribute('data-status'), { timeout: SLACK * CRASH_BOUND_MS, interval: 50 }).toBe('DOWN');
    const downAt = await js<number | undefined>('window.downAt');
    const elapsed = (downAt ?? Date.now()) - killedAt;
    console.info(`console: crash → row DOWN in the browser took ${elapsed} ms (bound ${CRASH_BOUND_MS} ms)`);
    expect(elapsed).toBeLessThan(SLACK * CRASH_BOUND_MS);
    await expect(row('n1').locator('.c-reason').textContent()).resolves.toBe('disconnected');
    await expect(row('n1').locator('.c-status').textContent()).resolves.toBe('DOWN');
    await expect(row('n2').getAttribute('data-status')).resolves.toBe('UP');
    await expect(page.locator('.feed-list li').first().textContent()).resolves.toMatch(/DOWN\s*n1 disconnected/);
    await page.screenshot({ path: path.join(SHOTS, 'cluster-down.png'), fullPage: true });
    // A phone: the table becomes cards.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(js("getComputedStyle(document.querySelector('tbody tr')).display")).resolves.toBe('block');
    await page.screenshot({ path: path.join(SHOTS, 'cluster-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('shows a banner when its connection is lost, and clears it once resynced after the runtime restarts', async () => {
    if (!runtime) throw new Error('no runtime');
    const port = runtime.port;
    const banner = page.locator('#banner');
    const t0 = Date.now();
    await runtime.stop();
    runtime = undefined;
    const stoppedMs = Date.now() - t0;
    await expect.poll(() => banner.getAttribute('data-state'), { timeout: 10_000 }).toBe('lost');
    await expect(banner.textContent()).resolves.toMatch(/connection lost/i);
    await page.screenshot({ path: path.join(SHOTS, 'cluster-lost.png'), fullPage: true });

    // The same port and data: the page's URL stays valid and the table's records survive.
    runtime = await startRuntime(port);
    const readyMs = Date.now() - t0;
    await expect.poll(() => banner.getAttribute('data-state'), { timeout: 20_000 }).toBe('resynced');
    await expect(banner.textContent()).resolves.toMatch(/resynced/i);
    console.info(`console: runtime stopped after ${stoppedMs} ms, ready again at ${readyMs} ms, page resynced at ${Date.now() - t0} ms`);
    await expect.poll(() => banner.getAttribute('data-state'), { timeout: 10_000 }).toBe('hidden');
    expect(await banner.isVisible()).toBe(false);
    await expect(row('n1').getAttribute('data-status')).resolves.toBe('DOWN');

    // Live again: a node registered now appears without a reload.
    const res = await fetch(`${runtime.httpUrl}/v1/clusters/${CLUSTER}/nodes/n4`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ leaseSeconds: 60 }),
    });
    expect(res.status).toBe(201);
    await expect.poll(() => row('n4').getAttribute('data-status'), { timeout: 10_000 }).toBe('UP');
  });

  test('asks for a token on 401, keeps it in sessionStorage only, sends it as a Bearer header and the WebSocket token, and signs out', async () => {
    if (!runtime) throw new Error('no runtime');
    // The local runtime here runs without auth: the browser's requests are answered 401 unless they carry the token.
    const seen: (string | undefined)[] = [];
    await page.route('**/v1/**', async (route) => {
      const auth = route.request().headers().authorization;
      seen.push(auth);
      if (auth === 'Bearer s3cret') await route.continue();
      else await route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":{"code":"UNAUTHORIZED","message":"a token is required"}}' });
    });
    try {
      await page.goto(`${runtime.httpUrl}/#/`);
      const input = page.locator('#token');
      await expect.poll(() => input.isVisible(), { timeout: 10_000 }).toBe(true);
      await expect.poll(() => page.locator('#token:focus').count(), { timeout: 10_000 }).toBe(1);
      // It says where a token comes from, and the field is described by that text.
      const source = await page.locator('#token-source').textContent();
      expect(source).toContain('npm start -- --auth prints an admin token');
      expect(source).toContain('npx roster token create');
      expect(source).toMatch(/--data-dir DIR.*--outputs cdk-outputs\.json/);
      expect(await input.getAttribute('aria-describedby')).toContain('token-source');
      await page.keyboard.type('wrong');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#token-problem').textContent(), { timeout: 10_000 }).toMatch(/not accepted/);
      await page.keyboard.type('s3cret');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator(`tr[data-cluster-id="${CLUSTER}"]`).count(), { timeout: 10_000 }).toBe(1);
      expect(seen).toContain('Bearer s3cret');
      expect(await js("sessionStorage.getItem('roster.token')")).toBe('s3cret');
      expect(await js('localStorage.length')).toBe(0);
      expect(page.url()).not.toContain('s3cret');
      const page2Urls = requested.filter((u) => u.includes('s3cret'));
      // Only the WebSocket URL carries it (browsers cannot set WebSocket headers); the console asks for batched events.
      expect(page2Urls.length).toBeGreaterThan(0);
      for (const u of page2Urls) expect(u).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/ws\?token=s3cret&batch=true$/);

      await page.locator('#sign-out').click();
      await expect.poll(() => input.isVisible(), { timeout: 10_000 }).toBe(true);
      expect(await js("sessionStorage.getItem('roster.token')")).toBeNull();
    } finally {
      await page.unroute('**/v1/**');
    }
  });

  test('made no request beyond its own origin, and broke no Content-Security-Policy rule', () => {
    const port = runtime?.port;
    expect(requested.length).toBeGreaterThan(0);
    for (const url of requested) expect(url).toMatch(new RegExp(`^(https?|wss?)://127\\.0\\.0\\.1:${port}/|^data:`));
    expect(cspViolations).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
