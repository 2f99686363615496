/**
 * ssekit-node on core as it was at an earlier revision, built by scripts/baseline-core.mjs into
 * the directory `BENCH_BASELINE_CORE` names: a change of core measured against what came before
 * it, side by side in one run. Opt-in (`--impls`).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchServer } from './common.js';
import { serveOn, type CoreBuild } from './ssekit-node.js';

export async function start(): Promise<BenchServer> {
  const dir = process.env.BENCH_BASELINE_CORE;
  if (!dir) throw new Error('ssekit-node-baseline needs BENCH_BASELINE_CORE: run node bench/scripts/baseline-core.mjs <rev> first.');
  const load = async (file: string) => (await import(pathToFileURL(path.resolve(dir, file)).href)) as Partial<CoreBuild>;
  return serveOn({ ...(await load('index.mjs')), ...(await load('node.mjs')) } as CoreBuild);
}
