/**
 * The documentation as the tests in test/docs/ see it: which files, their
 * fenced blocks (with the `<!-- doc-test: … -->` marker before each), their
 * headings' anchors as GitHub makes them, and their links.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../support/runtime.ts';

export { REPO_ROOT };

/** README.md, every Markdown page under docs/, and the SDK package's README, relative to the repository. */
export function docFiles(): string[] {
  const pages: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.md')) pages.push(rel);
    }
  };
  walk('docs');
  return ['README.md', ...pages, 'client/README.md'];
}

export function readDoc(file: string): string {
  return readFileSync(path.join(REPO_ROOT, file), 'utf8');
}

export type Marker =
  | { kind: 'aws'; reason: string }
  | { kind: 'not-run'; reason: string }
  | { kind: 'until-ctrl-c' };

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string's first word ('' when there is none). */
  lang: string;
  code: string;
  marker?: Marker;
  /** A `<!-- doc-test: … -->` comment that is not one of the markers above. */
  badMarker?: string;
}

const MARKER = /^<!--\s*doc-test:\s*(.*?)\s*-->$/;

function parseMarker(text: string): Marker | undefined {
  if (text === 'aws') return { kind: 'aws', reason: 'needs an AWS account' };
  if (text === 'until-ctrl-c') return { kind: 'until-ctrl-c' };
  const notRun = /^not-run\s+(\S.*)$/.exec(text);
  if (notRun?.[1]) return { kind: 'not-run', reason: notRun[1] };
  return undefined;
}

/** Every fenced block of `file`, with the marker comment on the non-blank line just before its fence. */
export function blocks(file: string): Block[] {
  const lines = readDoc(file).split('\n');
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i] ?? '');
    if (!open?.[1]) continue;
    const fence = open[1];
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !(lines[i] ?? '').trimStart().startsWith(fence); i++) body.push(lines[i] ?? '');
    let prev = start - 1;
    while (prev >= 0 && (lines[prev] ?? '').trim() === '') prev--;
    const comment = MARKER.exec((lines[prev] ?? '').trim());
    const block: Block = { file, line: start + 1, lang: (open[2] ?? '').toLowerCase(), code: body.join('\n') };
    if (comment) {
      const marker = parseMarker(comment[1] ?? '');
      if (marker) block.marker = marker;
      else block.badMarker = comment[0];
    }
    found.push(block);
  }
  return found;
}

export const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);
export const SCRIPT_LANGS = new Set(['ts', 'typescript', 'js', 'javascript', 'mjs']);

/** The text outside fenced blocks and inline code spans, line numbers kept. */
export function prose(file: string): string[] {
  const lines = readDoc(file).split('\n');
  let fence: string | undefined;
  return lines.map((line) => {
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (line.trimStart().startsWith(fence)) fence = undefined;
      return '';
    }
    if (open?.[1]) {
      fence = open[1];
      return '';
    }
    return line.replace(/(`+)[^`]*?\1/g, '');
  });
}

/**
 * GitHub's anchor for a heading (github-slugger): the heading's text without
 * its Markdown, lower-cased, every character that is not a letter, mark,
 * digit, `_`, `-` or space removed, spaces made hyphens; a repeated slug
 * gets `-1`, `-2`, … .
 */
export function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of readDoc(file).replace(/^ {0,3}(```|~~~)[\s\S]*?^ {0,3}\1.*$/gm, '').split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading?.[1]) continue;
    const text = heading[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/`([^`]*)`/g, '$1')
      .replace(/<[^>]+>/g, '')
      .replace(/(\*\*|__|\*|_)(.+?)\1/g, '$2');
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

export interface Link {
  file: string;
  line: number;
  target: string;
}

/** Every Markdown link `[text](target)` and HTML `href`/`src` outside code. */
export function links(file: string): Link[] {
  const found: Link[] = [];
  prose(file).forEach((text, index) => {
    for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push({ file, line: index + 1, target: m[1] ?? '' });
    for (const m of text.matchAll(/\b(?:href|src)="([^"]+)"/g)) found.push({ file, line: index + 1, target: m[1] ?? '' });
  });
  return found;
}
