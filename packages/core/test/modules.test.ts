/**
 * Core's modules form a tree: no import cycle between them, type-only imports included, so that
 * each file can be read (and loaded) after the ones it stands on.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const SRC = path.join(__dirname, '..', 'src');

/** Each module's relative imports and re-exports, `import type` included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(SRC).filter((name) => name.endsWith('.ts'))) {
    const source = readFileSync(path.join(SRC, file), 'utf8');
    const targets = [...source.matchAll(/^(?:import|export)\b[^;]*?from '\.\/([\w-]+)\.js';/gms)].map(([, name]) => `${name}.ts`);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every cycle, as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, trail: string[]) => {
    const at = trail.indexOf(file);
    if (at >= 0) return void found.push([...trail.slice(at), file]);
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
    done.add(file);
  };
  for (const file of graph.keys()) visit(file, []);
  return found;
}

test('the graph is read from the sources', () => {
  const graph = importGraph();
  expect(graph.get('channel.ts')).toEqual(expect.arrayContaining(['stream.ts', 'symbols.ts', 'backplane.ts']));
  expect(graph.get('history.ts')).toContain('backplane.ts');
});

test('no import cycle between core modules, type-only imports included', () => {
  expect(cycles(importGraph())).toEqual([]);
});

test('the cycle finder finds a cycle, type-only or not', () => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['a.ts']],
  ]);
  expect(cycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
});
