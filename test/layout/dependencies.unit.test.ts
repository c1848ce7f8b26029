/**
 * Dependencies between the repository's top-level folders point one way:
 * the CLI on top; the SDK and the server code below it; the contract module
 * at the bottom, depending on nothing. Every import (static or dynamic) of
 * the production code is read with TypeScript's own pre-processor; a cycle
 * between folders, or an arrow that points up, fails with the imports that
 * make it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { REPO_ROOT } from '../support/runtime.ts';

/** The production folders (tests may import anything: they stand outside the layout). */
const FOLDERS = ['bin', 'cli', 'client', 'contract', 'console', 'functions', 'infra', 'local', 'bench', 'robustness', 'scripts'];
/** The workspace packages, imported by name. */
const PACKAGES: Record<string, string> = { '@roster/client': 'client', '@roster/contract': 'contract' };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(name) ? [path] : [];
  });
}

/** The top-level folder an import of `file` lands in, or undefined for a third-party or built-in module. */
function targetFolder(file: string, specifier: string): string | undefined {
  const named = Object.keys(PACKAGES).find((name) => specifier === name || specifier.startsWith(`${name}/`));
  if (named) return PACKAGES[named];
  if (!specifier.startsWith('.')) return undefined;
  const top = relative(REPO_ROOT, resolve(dirname(file), specifier)).split(sep)[0];
  return top !== undefined && FOLDERS.includes(top) ? top : undefined;
}

/** folder → folder → the imports that make the arrow. */
function folderGraph(): Map<string, Map<string, string[]>> {
  const graph = new Map<string, Map<string, string[]>>(FOLDERS.map((f) => [f, new Map()]));
  for (const folder of FOLDERS) {
    for (const file of sourceFiles(join(REPO_ROOT, folder))) {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      for (const { fileName: specifier } of importedFiles) {
        const target = targetFolder(file, specifier);
        if (target === undefined || target === folder) continue;
        const edges = graph.get(folder) as Map<string, string[]>;
        edges.set(target, [...(edges.get(target) ?? []), `${relative(REPO_ROOT, file)} → ${specifier}`]);
      }
    }
  }
  return graph;
}

/** A cycle of folders, if there is one (depth-first search). */
function findCycle(graph: Map<string, Map<string, string[]>>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (folder: string): string[] | undefined => {
    if (state.get(folder) === 'done') return undefined;
    if (state.get(folder) === 'open') return [...path.slice(path.indexOf(folder)), folder];
    state.set(folder, 'open');
    path.push(folder);
    for (const next of graph.get(folder)?.keys() ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(folder, 'done');
    return undefined;
  };
  for (const folder of FOLDERS) {
    const cycle = visit(folder);
    if (cycle) return cycle;
  }
  return undefined;
}

const graph = folderGraph();
const dependents = (target: string): string[] => FOLDERS.filter((f) => graph.get(f)?.has(target));
const describeEdges = (folder: string): string[] => [...(graph.get(folder) ?? [])].flatMap(([, imports]) => imports);

describe('the layout of the repository', () => {
  test('has no import cycle between top-level folders', () => {
    const cycle = findCycle(graph);
    const evidence = cycle?.slice(1).map((to, i) => (graph.get(cycle[i] as string)?.get(to) ?? []).join('; '));
    expect(cycle && `${cycle.join(' → ')}\n${evidence?.join('\n')}`).toBeUndefined();
  });

  test('the contract module depends on nothing; the SDK only on the contract', () => {
    expect(describeEdges('contract')).toEqual([]);
    expect([...(graph.get('client')?.keys() ?? [])]).toEqual(['contract']);
  });

  test('the CLI stands on top: only its launcher (bin/) imports it', () => {
    expect(dependents('cli')).toEqual(['bin']);
    expect([...(graph.get('cli')?.keys() ?? [])].sort()).toEqual(expect.arrayContaining(['bench', 'client', 'local', 'robustness']));
  });

  test('the server code (functions), the console and the bench import the SDK by its package name only', () => {
    for (const folder of FOLDERS) {
      const relativeImports = describeEdges(folder).filter((edge) => edge.includes('→ .') && /\/client\//.test(edge.split('→ ')[1] ?? ''));
      expect(relativeImports, folder).toEqual([]);
    }
  });
});
