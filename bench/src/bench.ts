/**
 * The orchestrator: `pnpm bench [--quick] [--reps N] [--scenarios A,A2,B] [--impls raw,ssekit-node]
 * [--node 24|PATH] [--cpu-prof] [--out FILE]`.
 *
 * Every scenario (scenarios/) runs over every implementation in interleaved order: repetition 1
 * runs A on each implementation (in an order rotated per repetition), then A2, and so on;
 * repetition 2 does the same again. Each run gets a fresh server process; two long-lived client
 * processes make the load. All traffic stays on 127.0.0.1, and every loop is bounded in count
 * and time.
 *
 * A run in which any reader lost, duplicated or misordered an event is a failed run: it gives
 * no figure, it is printed, and the process exits non-zero.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR } from './bench-dir.js';
import { parseOptions } from './options.js';
import { renderReport, renderVerdict } from './report.js';
import { writeResults } from './result-files.js';
import { BenchRun } from './run.js';
import type { Scenario } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

/** A bound on the whole run, whatever hangs. */
const LIMIT_MINUTES = { full: 90, quick: 10 };

async function main(): Promise<void> {
  const ids = SCENARIOS.map((scenario) => scenario.id);
  const optIn = SCENARIOS.filter((scenario) => scenario.optIn).map((scenario) => scenario.id);
  const notInQuick = SCENARIOS.filter((scenario) => scenario.skipInQuick).map((scenario) => scenario.id);
  const options = parseOptions(process.argv.slice(2), ids, optIn, notInQuick);
  const scenarios = SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.id));
  const limitMinutes = options.quick ? LIMIT_MINUTES.quick : LIMIT_MINUTES.full;
  setTimeout(() => {
    console.error(`bench: still running after ${limitMinutes} minutes; giving up`);
    process.exit(1);
  }, limitMinutes * 60_000).unref();

  console.log(
    `ssekit bench: ${options.quick ? 'QUICK (correctness smoke test: no figure from it is a result)' : 'full'}; ${options.reps} repetition(s); scenarios ${options.scenarios.join(',')}; ${options.impls.join(', ')}; servers on Node ${options.serverNodeVersion}`,
  );
  if (options.quick)
    console.log(
      `QUICK MODE: ${quickReductions(scenarios)}; event counts and sizes as in the full run; peers skipped unless --impls names them.`,
    );
  if (options.cpuProf) mkdirSync(path.join(BENCH_DIR, 'profiles'), { recursive: true });

  const run = new BenchRun(options);
  await run.clients.start();
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const scenario of scenarios) {
      for (const impl of rotate(options.impls, rep - 1).filter((impl) => scenario.applies(impl))) await run.runOne(scenario, impl, rep);
    }
  }
  await run.clients.stop();
  const elapsedSeconds = (Date.now() - run.startedAt) / 1000;

  const report = renderReport(run, scenarios, elapsedSeconds);
  console.log('\n' + report.console);
  if (options.out) writeResults(options.out, report);
  const verdict = renderVerdict(run, elapsedSeconds);
  console.log(verdict.text);
  process.exitCode = verdict.passed ? 0 : 1;
}

/** What quick mode lowers, over the scenarios that run: `fanoutClients 1000 -> 200, ...`. */
function quickReductions(scenarios: readonly Scenario[]): string {
  const reduced = new Set<string>();
  for (const { scale } of scenarios) {
    if (!scale) continue;
    for (const [key, full] of Object.entries(scale.full))
      if (scale.quick[key] !== full) reduced.add(`${key} ${full} -> ${scale.quick[key]}`);
  }
  return reduced.size ? `connection counts reduced (${[...reduced].join(', ')})` : 'connection counts as in the full run';
}

/** `items`, starting at index `by` and wrapping around. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

await main();
