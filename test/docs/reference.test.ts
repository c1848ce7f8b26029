/**
 * The API reference in docs/reference/ is generated from the contract
 * documents (scripts/build-api-reference.ts, `npm run docs`); it is never
 * edited by hand. This regenerates it into a temporary directory and fails
 * when the committed pages differ: the contract changed and `npm run docs`
 * was not run.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { REFERENCE_DIR, REFERENCE_PAGES, buildApiReference } from '../../scripts/build-api-reference.ts';

const out = mkdtempSync(path.join(tmpdir(), 'roster-reference-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the generated API reference', () => {
  test('docs/reference/ is what `npm run docs` makes from contract/ today', () => {
    buildApiReference(out);
    for (const { page, source } of REFERENCE_PAGES) {
      const committed = readFileSync(path.join(REFERENCE_DIR, page));
      const fresh = readFileSync(path.join(out, page));
      expect(committed.equals(fresh), `docs/reference/${page} is out of date with ${source}: run npm run docs and commit the result`).toBe(true);
    }
  });

  test('each page carries its document, works offline and sends no telemetry', () => {
    for (const { page, source } of REFERENCE_PAGES) {
      const html = readFileSync(path.join(REFERENCE_DIR, page), 'utf8');
      const doc = JSON.parse(readFileSync(path.join(REFERENCE_DIR, '..', '..', source), 'utf8')) as { info: { title: string; description: string } };
      expect(html).toContain(doc.info.title);
      expect(html).toContain('"disableTelemetry":true');
      // --inlineBundle: Redoc's script is in the page, not loaded from a CDN.
      expect(html).not.toMatch(/<script[^>]+src="https?:/);
    }
  });
});
