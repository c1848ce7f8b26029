/**
 * Every relative link and anchor in README.md, docs/ and client/README.md
 * resolves: the file exists, and a `#fragment` names a heading of the page it
 * points at (as GitHub makes heading anchors). External links (http, mailto)
 * are not fetched: the tests run offline.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT, anchors, docFiles, links, readDoc } from './markdown.ts';

const files = docFiles();

function problem(file: string, target: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined;
  const [pathPart = '', fragment] = target.split('#', 2);
  const resolved = pathPart === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(pathPart)));
  if (resolved.startsWith('..')) return `points outside the repository (${resolved})`;
  const absolute = path.join(REPO_ROOT, resolved);
  if (!existsSync(absolute)) return `no such file: ${resolved}`;
  if (fragment === undefined || fragment === '') return undefined;
  if (statSync(absolute).isDirectory() || !resolved.endsWith('.md')) return `an anchor into something that is not a Markdown page: ${resolved}`;
  if (!anchors(resolved).has(fragment)) return `no heading with the anchor #${fragment} in ${resolved}`;
  return undefined;
}

describe('links in the documentation', () => {
  test('the pages are found (README.md, docs/, client/README.md)', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('client/README.md');
    expect(files.filter((f) => f.startsWith('docs/')).length).toBeGreaterThan(15);
  });

  test.each(files)('%s: every relative link and anchor resolves', (file) => {
    const broken = links(file)
      .map((link) => ({ link, why: problem(file, link.target) }))
      .filter((x) => x.why !== undefined)
      .map(({ link, why }) => `${file}:${link.line} (${link.target}): ${why}`);
    expect(broken).toEqual([]);
  });

  test('the checker itself finds a missing file and a missing anchor', () => {
    expect(problem('README.md', 'docs/no-such-page.md')).toMatch(/no such file/);
    expect(problem('README.md', 'docs/README.md#no-such-heading')).toMatch(/no heading/);
    expect(problem('README.md', '#a-60-second-tour')).toBeUndefined();
    expect(problem('docs/operating/deploy.md', 'control-tower.md#customer-managed-key--c-kmskeyarnarnawskms')).toBeUndefined();
  });

  test('every page under docs/ is reachable from the documentation map (docs/README.md)', () => {
    const mapped = new Set(links('docs/README.md').map((l) => path.posix.normalize(path.posix.join('docs', l.target.split('#')[0] ?? ''))));
    const unmapped = files.filter((f) => f.startsWith('docs/') && f !== 'docs/README.md' && !mapped.has(f));
    expect(unmapped).toEqual([]);
  });

  test('the README is a front page: at most 250 lines, linking into docs/', () => {
    const readme = readDoc('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    expect(links('README.md').filter((l) => l.target.startsWith('docs/')).length).toBeGreaterThan(10);
  });
});
