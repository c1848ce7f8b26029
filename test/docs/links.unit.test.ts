/**
 * Every relative link and anchor in README.md, docs/ and client/README.md
 * resolves: the file exists, and a `#fragment` names a heading of the page it
 * points at (as GitHub makes heading anchors). client/README.md is also the
 * package's README, read where `../` leads nowhere: it links into the
 * repository by the repository's address, checked the same way. Other
 * external links (http, mailto) are not fetched: the tests run offline.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT, anchors, docFiles, links, readDoc } from './markdown.ts';

const files = docFiles();

/** The repository's address, as the SDK package names it (`repository.url`). */
const REPOSITORY = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'client', 'package.json'), 'utf8')) as { repository: { url: string } }).repository.url
  .replace(/^git\+/, '')
  .replace(/\.git$/, '');

/** A link into the repository by its address (`…/blob/main/PATH#anchor`, `…/tree/main/PATH`, `…#readme`): the file it names, from the root. */
function inRepository(target: string): string | undefined {
  if (!target.startsWith(REPOSITORY)) return undefined;
  const rest = target.slice(REPOSITORY.length);
  if (rest === '' || rest === '#readme') return 'README.md';
  const match = /^\/(?:blob|tree)\/main\/([^#]*)(#.*)?$/.exec(rest);
  return match ? `/${match[1]}${match[2] ?? ''}` : `/no such address in the repository: ${rest}`;
}

function problem(file: string, link: string): string | undefined {
  const target = inRepository(link) ?? link;
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return undefined;
  const [pathPart = '', fragment] = target.split('#', 2);
  const resolved =
    pathPart === ''
      ? file
      : pathPart.startsWith('/')
        ? path.posix.normalize(decodeURIComponent(pathPart.slice(1)))
        : path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(pathPart)));
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

  test('client/README.md, read inside the package where ../ leads nowhere, links into the repository only by its address', () => {
    const relative = links('client/README.md')
      .filter((l) => !l.target.startsWith('#') && !/^https?:/.test(l.target))
      .map((l) => `client/README.md:${l.line} (${l.target})`);
    expect(relative).toEqual([]);
    expect(links('client/README.md').filter((l) => l.target.startsWith(REPOSITORY)).length).toBeGreaterThan(2);
  });

  test('the checker itself finds a missing file and a missing anchor', () => {
    expect(problem('client/README.md', `${REPOSITORY}/blob/main/docs/no-such-page.md`)).toMatch(/no such file/);
    expect(problem('client/README.md', `${REPOSITORY}/blob/main/docs/running-nodes/cli.md#no-such-heading`)).toMatch(/no heading/);
    expect(problem('client/README.md', `${REPOSITORY}/blob/main/docs/running-nodes/cli.md#where-to-run-it`)).toBeUndefined();
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
