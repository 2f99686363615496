/**
 * The command line: `pnpm bench [--quick] [--reps N] [--scenarios A,A2,B] [--impls raw,ssekit-node]
 * [--node 24|PATH] [--cpu-prof] [--out FILE]`. See the README for what each option does.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { resolveNode } from '../../scripts/node-versions.mjs';
import { BENCH_DIR } from './bench-dir.js';
import { IMPLEMENTATIONS, isImplementation, OPT_IN, type Implementation } from './servers.js';

export interface BenchOptions {
  /** The smoke test: one repetition, fewer connections, raw and ssekit only, nothing written. */
  readonly quick: boolean;
  readonly reps: number;
  /** The ids of the scenarios to run. */
  readonly scenarios: readonly string[];
  readonly impls: readonly Implementation[];
  readonly cpuProf: boolean;
  /** Where the Markdown results go; nowhere when undefined. */
  readonly out: string | undefined;
  /** The node binary the servers run on; the load clients always run on this process's Node. */
  readonly serverNode: string;
  /** Its version, as it reports it. */
  readonly serverNodeVersion: string;
}

const KNOWN = ['--quick', '--reps', '--scenarios', '--impls', '--node', '--cpu-prof', '--out'];
const WITH_VALUE = ['--reps', '--scenarios', '--impls', '--node', '--out'];

/** Parses the options; exits with a message and code 2 on any it does not know. */
export function parseOptions(
  argv: readonly string[],
  scenarioIds: readonly string[],
  optInIds: readonly string[] = [],
  notInQuickIds: readonly string[] = [],
): BenchOptions {
  // pnpm passes on a `--` before the script's own arguments.
  const args = argv.filter((arg) => arg !== '--');
  const value = (name: string): string | undefined => {
    const at = args.findIndex((arg) => arg === name || arg.startsWith(name + '='));
    if (at === -1) return undefined;
    const arg = args[at]!;
    return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[at + 1];
  };
  for (const [index, arg] of args.entries()) {
    if (!arg.startsWith('--')) {
      if (index > 0 && WITH_VALUE.includes(args[index - 1]!)) continue;
      usageError(`unexpected argument ${arg}`);
    }
    if (!KNOWN.includes(arg.split('=')[0]!)) usageError(`unknown option ${arg}; known: ${KNOWN.join(' ')}`);
  }
  const quick = args.includes('--quick');
  const reps = Number(value('--reps') ?? (quick ? 1 : 3));
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) usageError('--reps takes an integer from 1 to 20');
  // The opt-in scenarios (K) run only when named; those too slow for the smoke test (I), in quick mode only when named.
  const left = (id: string) => optInIds.includes(id) || (quick && notInQuickIds.includes(id));
  const scenarios = (value('--scenarios') ?? scenarioIds.filter((id) => !left(id)).join(',')).toUpperCase().split(',');
  for (const id of scenarios) if (!scenarioIds.includes(id)) usageError(`unknown scenario ${id}; known: ${scenarioIds.join(', ')}`);
  const defaultImpls = IMPLEMENTATIONS.filter((impl) => !OPT_IN.includes(impl) && (!quick || impl === 'raw' || impl.startsWith('ssekit-')));
  const impls = value('--impls')?.split(',') ?? [...defaultImpls];
  for (const impl of impls) if (!isImplementation(impl)) usageError(`unknown implementation ${impl}; known: ${IMPLEMENTATIONS.join(', ')}`);
  let serverNode = process.execPath;
  let serverNodeVersion = process.version;
  const nodeSpec = value('--node');
  if (nodeSpec !== undefined) {
    try {
      serverNode = resolveNode(nodeSpec);
      serverNodeVersion = execFileSync(serverNode, ['--version'], { encoding: 'utf8' }).trim();
    } catch (error) {
      usageError(`--node ${nodeSpec}: ${(error as Error).message}`);
    }
  }
  // Only a full run of everything on this process's Node replaces RESULTS.md by default; on
  // another Node it writes RESULTS-node<major>.md, which RESULTS.md then summarizes.
  const complete = !quick && value('--scenarios') === undefined && value('--impls') === undefined;
  const defaultOut = nodeSpec === undefined ? 'RESULTS.md' : `RESULTS-node${majorOf(serverNodeVersion)}.md`;
  const out = value('--out') ?? (complete ? path.join(BENCH_DIR, defaultOut) : undefined);
  return {
    quick,
    reps,
    scenarios,
    impls: impls as Implementation[],
    cpuProf: args.includes('--cpu-prof'),
    out,
    serverNode,
    serverNodeVersion,
  };
}

const majorOf = (version: string) => version.replace(/^v/, '').split('.')[0]!;

function usageError(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}
