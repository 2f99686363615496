/**
 * What a bench run reports: RESULTS.md (machine, headline, one table per scenario, targets,
 * correctness, failed runs) and the same tables on the console. Every table comes from what the
 * scenarios declare; nothing here knows one scenario from another.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR } from './bench-dir.js';
import { OTHER_NODES_END, OTHER_NODES_START } from './result-files.js';
import { baselineOf, type Results } from './results.js';
import type { BenchRun } from './run.js';
import { metricsOf, scaleOf, target, type MetricSpec, type Scenario, type Target } from './scenario.js';
import { LABELS, DEDICATED, type Implementation } from './servers.js';
import type { Summary } from './stats.js';
import { format, plain, table } from './tables.js';

export interface Report {
  readonly markdown: string;
  readonly console: string;
  /** The headline table, dated, for the READMEs; undefined when no scenario has a headline metric. */
  readonly headline: string | undefined;
}

type Table = { header: string[]; rows: string[][] };

export function renderReport(run: BenchRun, scenarios: readonly Scenario[], elapsedSeconds: number): Report {
  const { options, results } = run;
  const md = machineSection(run, elapsedSeconds);
  const con: string[] = [];

  let headline: string | undefined;
  const headlineTable = renderHeadline(run, scenarios);
  if (headlineTable) {
    const { header, rows } = headlineTable;
    md.push('<!-- headline:start -->', '## Headline', '', ...table(header, rows), '<!-- headline:end -->', '');
    con.push('Headline (medians; multiples of raw node:http):', ...plain(header, rows), '');
    const date = new Date().toISOString().slice(0, 10);
    headline = [
      `From the run of ${date} (${options.reps} repetitions, Node ${options.serverNodeVersion}):`,
      '',
      ...table(header, rows),
    ].join('\n');
  }

  for (const scenario of scenarios) {
    md.push(`## ${scenario.id}. ${scenario.title}`, '', scenario.describe(scaleOf(scenario, options.quick)), '');
    con.push(`${scenario.id}. ${scenario.title}`);
    // One table per group of metrics (I's steps), or one for all.
    for (const [group, metrics] of groupsOf(metricsOf(scenario, options.quick))) {
      const { header, rows } = renderScenario(results, scenario, options.impls, metrics);
      if (group !== undefined) {
        md.push(`### ${group}`, '');
        con.push(`  ${group}:`);
      }
      md.push(...table(header, rows), '');
      con.push(...plain(header, rows));
    }
    con.push('');
  }

  const targets = scenarios
    .filter((scenario) => results.has(scenario))
    .flatMap((scenario) => [...(scenario.targets?.(results.of(scenario, options.impls)) ?? []), ...fetchApiTargets(scenario, results)]);
  if (targets.length) {
    const header = ['target', 'measured', ''];
    const rows = targets.map((target) => [
      target.what,
      target.measured,
      target.met === undefined ? 'not measured' : target.met ? 'met' : 'MISSED',
    ]);
    md.push(
      '<!-- targets:start -->',
      '## Targets',
      '',
      'Medians, as the issue states each target.',
      '',
      ...table(header, rows),
      '<!-- targets:end -->',
      '',
    );
    con.push('Targets:', ...plain(header, rows), '');
  }

  // RESULTS.md keeps a place for the runs on other Node releases: see result-files.ts.
  if (options.serverNodeVersion === process.version) md.push(OTHER_NODES_START, OTHER_NODES_END, '');
  md.push(...correctnessSection(run));
  return { markdown: md.join('\n'), console: con.join('\n'), headline };
}

/** The console's last words: what the readers saw on each server, the failed runs, and PASS or FAIL. */
export function renderVerdict(run: BenchRun, elapsedSeconds: number): { text: string; passed: boolean } {
  const lines = ['', 'Correctness (every event of every reader, over every run):'];
  for (const impl of run.options.impls) {
    const t = run.tally(impl);
    lines.push(
      `  ${LABELS[impl].padEnd(20)} ${t.runs} runs, ${t.failed} failed; ${t.events.toLocaleString('en')} events checked: ${t.lost} lost, ${t.duplicates} duplicated, ${t.misordered} misordered, ${t.unexpected} unexpected`,
    );
  }
  if (run.failures.length) lines.push('', `FAILED RUNS (${run.failures.length}):`, ...run.failures.map((failure) => `  ${failure}`));
  // ssekit's runs and the baseline's decide; a peer that fails (runs out of heap, say) is a
  // finding about that peer, listed above and in RESULTS.md.
  const ours = run.failures.length - run.peerFailures;
  const runs = [...run.tallies.values()].reduce((sum, t) => sum + t.runs, 0);
  const peerNote = run.peerFailures ? `; the peers failed ${run.peerFailures} runs, listed above` : '';
  lines.push('', `RESULT: ${ours ? 'FAIL' : 'PASS'} (${runs} runs in ${elapsedSeconds.toFixed(0)} s${peerNote})`);
  return { text: lines.join('\n'), passed: ours === 0 };
}

function machineSection(run: BenchRun, elapsedSeconds: number): string[] {
  const { options } = run;
  const cpus = os.cpus();
  const versions = ['better-sse', '@fastify/sse', 'express', 'fastify', 'koa', 'tsx'].map((name) => `${name} ${versionOf(name)}`);
  const args = process.argv.slice(2);
  return [
    '# ssekit benchmark results',
    '',
    `Generated by \`pnpm bench${args.length ? ' ' + args.join(' ') : ''}\` on ${new Date().toISOString()}, in ${(elapsedSeconds / 60).toFixed(1)} minutes. Regenerate it with the same command; see [README.md](README.md) for what each scenario does and how.`,
    '',
    '## Machine',
    '',
    `- ${os.type()} ${os.release()} (${os.arch()}), ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    options.serverNodeVersion === process.version
      ? `- Node ${process.version}, V8 ${process.versions.v8}`
      : `- Servers on Node ${options.serverNodeVersion} (\`--node\`); the orchestrator and the load clients on Node ${process.version}`,
    `- ssekit (workspace) ${versionOf('@ssekit/core')}, built from the working tree at ${sourceRevision()}; ${versions.join(', ')}`,
    `- Load average (1 min) at the start and the end of the run: ${run.loadAtStart[0]?.toFixed(2) ?? '?'} and ${os.loadavg()[0]!.toFixed(2)}. The machine is shared: other processes' load adds noise, which the interleaving and the medians only partly absorb.`,
    `- ${options.reps} interleaved repetitions; each figure is the median [min–max] over the repetitions, and each ratio the median [min–max] of the per-repetition ratios to raw node:http (runs of one repetition are paired). A run with any lost, duplicated or misordered event is a failed run and gives no figure.`,
    '',
  ];
}

/** The headline: every metric that a scenario puts there, for every server but those dedicated to H and J. */
function renderHeadline(run: BenchRun, scenarios: readonly Scenario[]): Table | undefined {
  const columns = scenarios.flatMap((scenario) =>
    metricsOf(scenario, run.options.quick)
      .filter((metric) => metric.headline)
      .map((metric) => ({ scenario, metric })),
  );
  if (!columns.length) return undefined;
  const header = ['', ...columns.map(({ scenario, metric }) => `${scenario.id}: ${metric.headline}`)];
  const rows = run.options.impls
    .filter((impl) => !DEDICATED.includes(impl))
    .map((impl) => [
      LABELS[impl],
      ...columns.map(({ scenario, metric }) => {
        const c = run.results.cell(scenario, impl, metric.key);
        if (!c) return scenario.applies(impl) ? 'failed' : 'n/a';
        const figure = `${format(c.summary.median, metric.digits)} ${metric.unit}`;
        if (impl === baselineOf(scenario) || !metric.ratio || !c.ratio) return figure;
        return `${format(c.ratio.median, 2)}× (${figure})`;
      }),
    ]);
  return { header, rows };
}

/** A scenario's table: each metric's median [min–max], and its ratio to the baseline where it has one. */
/** `metrics` by their `group`, in order; those without one together. */
function groupsOf(metrics: readonly MetricSpec[]): Map<string | undefined, MetricSpec[]> {
  const groups = new Map<string | undefined, MetricSpec[]>();
  for (const metric of metrics) groups.set(metric.group, [...(groups.get(metric.group) ?? []), metric]);
  return groups;
}

function renderScenario(results: Results, scenario: Scenario, impls: readonly Implementation[], metrics: readonly MetricSpec[]): Table {
  const ratioHeading = `× ${scenario.baseline?.name ?? 'raw'}`;
  const header = [
    '',
    ...metrics.flatMap((metric) => [`${metric.label}${metric.unit ? ` (${metric.unit})` : ''}`, ...(metric.ratio ? [ratioHeading] : [])]),
  ];
  const rows = impls
    .filter((impl) => scenario.applies(impl) || scenario.notRun?.listed(impl))
    .map((impl) => [LABELS[impl], ...metrics.flatMap((metric) => metricCells(results, scenario, impl, metric))]);
  return { header, rows };
}

function metricCells(results: Results, scenario: Scenario, impl: Implementation, metric: MetricSpec): string[] {
  const c = results.cell(scenario, impl, metric.key);
  let value: string;
  if (!scenario.applies(impl)) value = scenario.notRun?.reason ?? 'not run';
  // Runs that succeeded but gave no such figure: a metric this scale does not measure (E's control in quick mode).
  else if (!c) value = results.runs(scenario, impl)?.length ? '–' : 'failed';
  else value = spread(c.summary, metric.digits);
  if (!metric.ratio) return [value];
  if (!c?.ratio) return [value, '–'];
  return [value, impl === baselineOf(scenario) ? '1.00×' : spread(c.ratio, 2, '×')];
}

/** `median [min–max]`, with `suffix` after the median. */
function spread(summary: Summary, digits: number, suffix = ''): string {
  return `${format(summary.median, digits)}${suffix} [${format(summary.min, digits)}–${format(summary.max, digits)}]`;
}

function correctnessSection(run: BenchRun): string[] {
  const rows = run.options.impls.map((impl) => {
    const t = run.tally(impl);
    return [
      LABELS[impl],
      String(t.runs),
      String(t.failed),
      t.events.toLocaleString('en'),
      String(t.lost),
      String(t.duplicates),
      String(t.misordered),
    ];
  });
  const lines = ['## Correctness', '', ...table(['', 'runs', 'failed', 'events checked', 'lost', 'duplicated', 'misordered'], rows), ''];
  // A server's stderr can hold a whole V8 out-of-memory report: its first lines say enough.
  const brief = (failure: string) => {
    const line = failure.replace(/\s+/g, ' ');
    return line.length > 600 ? `${line.slice(0, 600)}…` : line;
  };
  if (run.failures.length) lines.push('Failed runs:', '', ...run.failures.map((failure) => `- ${brief(failure)}`), '');
  return lines;
}

/** The commit the packages were built from, and whether they had uncommitted changes. */
function sourceRevision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
    const dirty =
      git('status', '--porcelain', '--', '../packages/core', '../packages/express', '../packages/fastify', '../packages/koa') !== '';
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes to the measured packages' : ''}`;
  } catch {
    return 'an unknown commit';
  }
}

function versionOf(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

/**
 * The Fetch API servers' target, on every scenario both ran: @ssekit/web ahead of Hono's own
 * streamSSE on each headline metric (all of them lower-is-better).
 */
function fetchApiTargets(scenario: Scenario, results: Results): Target[] {
  return scenario.metrics
    .filter((metric) => metric.headline)
    .flatMap((metric) => {
      const ours = results.cell(scenario, 'ssekit-web', metric.key)?.summary.median;
      const theirs = results.cell(scenario, 'hono-sse', metric.key)?.summary.median;
      if (ours === undefined && theirs === undefined) return [];
      const what = `${scenario.id}: ${LABELS['ssekit-web']} ${metric.label} below ${LABELS['hono-sse']}'s`;
      const measured = (ratio: number) =>
        `${ratio.toFixed(2)}× (${ours!.toFixed(metric.digits)} vs ${theirs!.toFixed(metric.digits)} ${metric.unit})`;
      return [target(what, ours === undefined || theirs === undefined ? undefined : ours / theirs, measured, (ratio) => ratio < 1)];
    });
}
