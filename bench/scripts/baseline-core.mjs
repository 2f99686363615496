#!/usr/bin/env node
/**
 * Builds @ssekit/core as it was at a git revision into bench/.baseline/<rev>/dist, for the
 * `ssekit-node-baseline` server: the same node:http server as `ssekit-node`, on that core. A run
 * with both measures a change of core against what came before it, side by side, in one run:
 *
 *   node bench/scripts/baseline-core.mjs 91bae29
 *   BENCH_BASELINE_CORE=bench/.baseline/91bae29/dist pnpm bench --scenarios A,A2,B,C,D \
 *     --impls raw,ssekit-node,ssekit-node-baseline
 *
 * Prints the dist directory. Core has no dependencies, so its sources and the repository's tsup
 * are all it needs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const rev = process.argv[2];
if (!rev) {
  console.error('usage: node bench/scripts/baseline-core.mjs <git revision>');
  process.exit(2);
}
const sha = execFileSync('git', ['rev-parse', '--short', `${rev}^{commit}`], { cwd: root, encoding: 'utf8' }).trim();
const dir = path.join(root, 'bench', '.baseline', sha);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const archive = execFileSync('git', ['archive', sha, 'packages/core/src'], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
execFileSync('tar', ['-x', '-C', dir], { input: archive });
const src = path.join(dir, 'packages', 'core', 'src');
// The flags of the repository's tsup.config.ts, ESM only, without types: what a server loads.
execFileSync(
  path.join(root, 'node_modules', '.bin', 'tsup'),
  [
    path.join(src, 'index.ts'),
    path.join(src, 'node.ts'),
    '--no-config',
    '--format',
    'esm',
    '--splitting',
    '--target',
    'node20',
    '--platform',
    'node',
    '--treeshake',
    '--out-dir',
    path.join(dir, 'dist'),
  ],
  { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] },
);
console.log(path.join(dir, 'dist'));
