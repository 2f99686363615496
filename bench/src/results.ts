/**
 * Every successful run's figures, by scenario and server, and what the tables show of them: the
 * median with min and max over the repetitions, and the ratio to the scenario's baseline.
 */
import type { Metrics, Scenario } from './scenario.js';
import { FETCH_API, DEDICATED, type Implementation } from './servers.js';
import { summarize, type Summary } from './stats.js';

export interface Cell {
  readonly summary: Summary;
  /** The median of the per-repetition ratios to the baseline, with their extremes. */
  readonly ratio: Summary | undefined;
}

/** One scenario's results, as its targets read them. */
export interface ScenarioResults {
  /** The ssekit servers of this bench run (those dedicated to H and J aside), whom targets are about. */
  readonly ssekit: readonly Implementation[];
  /** The figures of each successful run of `impl`, in order. */
  runs(impl: Implementation): readonly Metrics[] | undefined;
  /** The median of `key` over the runs of `impl`. */
  median(impl: Implementation, key: string): number | undefined;
  /** The median ratio of `key` to the baseline's. */
  ratio(impl: Implementation, key: string): number | undefined;
}

export const baselineOf = (scenario: Scenario): Implementation => scenario.baseline?.impl ?? 'raw';

export class Results {
  private readonly byScenario = new Map<string, Map<Implementation, Metrics[]>>();

  add(scenario: Scenario, impl: Implementation, metrics: Metrics): void {
    let byImpl = this.byScenario.get(scenario.id);
    if (!byImpl) this.byScenario.set(scenario.id, (byImpl = new Map()));
    byImpl.set(impl, [...(byImpl.get(impl) ?? []), metrics]);
  }

  /** Whether any run of `scenario` succeeded. */
  has(scenario: Scenario): boolean {
    return this.byScenario.has(scenario.id);
  }

  runs(scenario: Scenario, impl: Implementation): readonly Metrics[] | undefined {
    return this.byScenario.get(scenario.id)?.get(impl);
  }

  cell(scenario: Scenario, impl: Implementation, key: string): Cell | undefined {
    const runs = this.runs(scenario, impl);
    // A metric that this scale does not measure (E's control in quick mode) has no cell either.
    if (!runs?.length || runs.some((metrics) => metrics[key] === undefined)) return undefined;
    const values = runs.map((metrics) => metrics[key]!);
    const base = this.runs(scenario, baselineOf(scenario));
    let ratio: Summary | undefined;
    if (base?.length) {
      // Paired by repetition: runs of one repetition ran close in time, on the same noise.
      const ratios: number[] = [];
      for (let i = 0; i < Math.min(base.length, runs.length); i++) ratios.push(runs[i]![key]! / base[i]![key]!);
      ratio = summarize(ratios);
    }
    return { summary: summarize(values), ratio };
  }

  /** `scenario`'s results, for its targets, over the servers of this bench run. */
  of(scenario: Scenario, impls: readonly Implementation[]): ScenarioResults {
    return {
      ssekit: impls.filter((impl) => impl.startsWith('ssekit-') && !DEDICATED.includes(impl) && !FETCH_API.includes(impl)),
      runs: (impl) => this.runs(scenario, impl),
      median: (impl, key) => this.cell(scenario, impl, key)?.summary.median,
      ratio: (impl, key) => this.cell(scenario, impl, key)?.ratio?.median,
    };
  }
}
