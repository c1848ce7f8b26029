/**
 * The cache file: the last confirmed list, so a client that starts while the
 * information center is unreachable still has a (stale) list to serve.
 *
 * Writes are atomic: the content goes to a temporary file in the same
 * directory, which is then renamed over the old one. A reader — this client
 * after a crash, or another process — sees the old file or the new one,
 * never half of one.
 */
import { isNode, isObject } from '@roster/contract';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Node } from './types.ts';

const FORMAT = 'roster-cache/1';

export interface CacheFileContent {
  format: typeof FORMAT;
  clusterId: string;
  /** The cluster revision the list reflects. */
  revision: number;
  /** When the list was last confirmed by the server (ISO time). */
  savedAt: string;
  /** The healthy nodes. */
  nodes: readonly Node[];
}

export function cacheFileContent(clusterId: string, revision: number, savedAt: Date, nodes: readonly Node[]): CacheFileContent {
  return { format: FORMAT, clusterId, revision, savedAt: savedAt.toISOString(), nodes };
}

export async function writeCacheFile(path: string, content: CacheFileContent): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(content));
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Reads a cache file for `clusterId`. A missing file is `undefined`; a file
 * that is unreadable or belongs to another cluster is an error the caller
 * reports and ignores.
 */
export async function readCacheFile(path: string, clusterId: string): Promise<CacheFileContent | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const content: unknown = JSON.parse(text);
  if (
    !isObject(content) ||
    content.format !== FORMAT ||
    typeof content.revision !== 'number' ||
    typeof content.savedAt !== 'string' ||
    Number.isNaN(Date.parse(content.savedAt)) ||
    !Array.isArray(content.nodes) ||
    !content.nodes.every(isNode)
  ) {
    throw new Error(`${path} is not a Roster cache file`);
  }
  if (content.clusterId !== clusterId) throw new Error(`${path} caches cluster ${String(content.clusterId)}, not ${clusterId}`);
  return content as unknown as CacheFileContent;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * One client's cache file. Reading never fails the client (a file it cannot
 * use is reported and ignored); writes never overlap, and while one is in
 * progress only the newest content waits, so a burst of syncs costs at most
 * two writes.
 */
export class CacheFile {
  private writing: Promise<void> | undefined;
  private next: CacheFileContent | undefined;

  constructor(
    readonly path: string,
    private readonly clusterId: string,
    /** Told about a file that cannot be read or written; the client goes on without it. */
    private readonly warn: (message: string, error: unknown) => void,
  ) {}

  /** The saved list, or undefined when there is none or it is unusable (then `warn` says why). */
  async load(): Promise<CacheFileContent | undefined> {
    try {
      return await readCacheFile(this.path, this.clusterId);
    } catch (err) {
      this.warn(`ignoring the cache file ${this.path}: ${messageOf(err)}`, err);
      return undefined;
    }
  }

  /** Saves a list the server just confirmed (in the background). */
  save(revision: number, savedAt: Date, nodes: readonly Node[]): void {
    this.next = cacheFileContent(this.clusterId, revision, savedAt, nodes);
    this.writing ??= this.writeAll().finally(() => {
      this.writing = undefined;
    });
  }

  /** Resolves once every save so far is on disk (or reported as failed). */
  async flushed(): Promise<void> {
    await this.writing;
  }

  private async writeAll(): Promise<void> {
    for (let content = this.next; content; content = this.next) {
      this.next = undefined;
      try {
        await writeCacheFile(this.path, content);
      } catch (err) {
        this.warn(`could not write the cache file ${this.path}: ${messageOf(err)}`, err);
      }
    }
  }
}
