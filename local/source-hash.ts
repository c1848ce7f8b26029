/**
 * A short hash of a set of source files, for caches that must never serve a
 * stale copy: the template cache (local/template/source.ts) and the console
 * cache (local/console.ts) name each entry by the hash of what it was built
 * from, so a change to any of those files is a new name.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function filesUnder(dir: string, extensions: RegExp): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const file = path.join(dir, name);
      if (name === 'node_modules' || name === 'dist') return [];
      if (statSync(file).isDirectory()) return filesUnder(file, extensions);
      return extensions.test(name) ? [file] : [];
    });
}

/**
 * The hash of `entries` under `root` (directories walked for files whose
 * names match `extensions`; files taken as they are), their paths and
 * contents, and `extra`: 24 hex digits.
 */
export function hashSources(root: string, entries: readonly string[], extensions: RegExp, extra = ''): string {
  const hash = createHash('sha256');
  for (const entry of entries) {
    const full = path.join(root, entry);
    const files = statSync(full).isDirectory() ? filesUnder(full, extensions) : [full];
    for (const file of files) hash.update(path.relative(root, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.update(extra).digest('hex').slice(0, 24);
}
