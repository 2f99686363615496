/**
 * The README's recipes are code that runs: each block marked `<!-- recipe: PATH -->` is that
 * file, verbatim, and each line of a block marked `<!-- recipe routes: PATHS -->` is in one of
 * those files. The files themselves are tested (prom-client.test.ts, demo/test/demo.test.ts),
 * so the README cannot drift from what is tested.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

/** Each marker with the code block that follows it. */
function recipes(kind: 'recipe' | 'recipe routes'): Array<{ paths: string[]; code: string }> {
  const pattern = new RegExp(`<!-- ${kind}: ([^>]+) -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\``, 'g');
  return [...README.matchAll(pattern)].map(([, paths, code]) => ({ paths: paths!.trim().split(/\s+/), code: code! }));
}

test('every recipe block is its file, verbatim', () => {
  const blocks = recipes('recipe');
  expect(blocks.map((block) => block.paths)).toEqual([['demo/src/metrics.ts'], ['packages/metrics/test/recipes/prom-client.ts']]);
  for (const { paths, code } of blocks) expect(code).toBe(readFileSync(path.join(ROOT, paths[0]!), 'utf8'));
});

test('every line of a routes block is in the files it names', () => {
  const blocks = recipes('recipe routes');
  expect(blocks).toHaveLength(1);
  for (const { paths, code } of blocks) {
    const sources = paths.map((file) => readFileSync(path.join(ROOT, file), 'utf8')).join('\n');
    const lines = code.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('//'));
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect([line, sources.includes(line.trim())]).toEqual([line, true]);
  }
});
