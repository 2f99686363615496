/**
 * What a scenario is: one module under scenarios/ exports one {@link Scenario}, which declares
 * its sizes, the servers it runs on, its metrics, its run and its targets. The orchestrator
 * (bench.ts) runs it, and report.ts renders what it declares; neither knows any scenario.
 */
import type { LoadClients, ReaderTotals } from './load-clients.js';
import type { ScenarioResults } from './results.js';
import type { ServerProcess, StartServer } from './server-process.js';
import { FETCH_API, FRAMEWORK_REFERENCES, DEDICATED, type Implementation } from './servers.js';

/** One run's figures, by metric key. */
export type Metrics = Record<string, number>;

/** A scenario's sizes: connection counts and the like, which quick mode may lower. */
export type Scale = Readonly<Record<string, number | boolean>>;

export interface MetricSpec {
  /** Its key in {@link Metrics}. */
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  /** Fraction digits shown. */
  readonly digits: number;
  /** Whether it is also shown as a multiple of the baseline's. @default false */
  readonly ratio?: boolean;
  /** Its column heading in the headline table, when it has one there. */
  readonly headline?: string;
  /** The table it shows in, when its scenario has several (I: one per step). */
  readonly group?: string;
}

/** One target, as the issue states it, and how far it was met. */
export interface Target {
  readonly what: string;
  readonly measured: string;
  /** Undefined when it could not be measured (a failed run). */
  readonly met: boolean | undefined;
}

/** What a scenario's run gets: its server, its sizes, the load clients, and the checks. */
export interface ScenarioRun<TScale extends Scale = Scale> {
  readonly impl: Implementation;
  readonly scale: TScale;
  readonly clients: LoadClients;
  /** A number that no other run of this bench has: for names that must not collide. */
  readonly serial: number;
  /** Runs a fresh server process of `impl` for the length of `run`. */
  withServer<T>(run: (server: ServerProcess) => Promise<T>): Promise<T>;
  /** Runs `count` server processes of `impl`, with `env` added to their environment. */
  withServers<T>(count: number, env: Readonly<Record<string, string>>, run: (servers: ServerProcess[]) => Promise<T>): Promise<T>;
  /**
   * Lets `run` start server processes of `impl` (or of another server, as it asks) one by one,
   * each with an environment of its own, and kill them as a crash would (J); those left are
   * stopped when it ends.
   */
  withServerFleet<T>(run: (start: StartServer) => Promise<T>): Promise<T>;
  /** Runs a measured phase: under the CPU profiler with `--cpu-prof`. */
  measured<T>(server: ServerProcess, phase: () => Promise<T>): Promise<T>;
  /** Counts what the readers saw, and fails the run on any lost, duplicated or misordered event. */
  check(totals: ReaderTotals): void;
}

export interface Scenario<TScale extends Scale = Scale> {
  /** A letter (and a digit for a variant), as the issues and RESULTS.md name it. */
  readonly id: string;
  readonly title: string;
  /** Its sizes in a full run and in quick mode, which keeps every event and may only lower the connections. */
  readonly scale?: { readonly full: TScale; readonly quick: TScale };
  /** What it runs and measures, for RESULTS.md. */
  describe(scale: TScale): string;
  readonly metrics: readonly MetricSpec[];
  /** Its metrics when they depend on its sizes (one set per step: I and K); `metrics` otherwise. */
  metricsAt?(scale: TScale): readonly MetricSpec[];
  /** Whether it runs only when `--scenarios` names it: never in the default run nor in `--quick`. @default false */
  readonly optIn?: boolean;
  /** Whether `--quick` leaves it out unless `--scenarios` names it (I: its fixed costs would slow the smoke test by a quarter). @default false */
  readonly skipInQuick?: boolean;
  applies(impl: Implementation): boolean;
  /** What its ratios divide by, and how its tables name that. @default raw node:http, 'raw' */
  readonly baseline?: { readonly impl: Implementation; readonly name: string };
  /** Servers its table lists though it does not run on them, and why not. */
  readonly notRun?: { readonly listed: (impl: Implementation) => boolean; readonly reason: string };
  run(run: ScenarioRun<TScale>): Promise<Metrics>;
  /** Its targets, from its own results. */
  targets?(results: ScenarioResults): Target[];
}

/** Types a scenario from its scale, so that `describe` and `run` see that scale's keys. */
export function defineScenario<TScale extends Scale>(scenario: Scenario<TScale>): Scenario {
  return scenario;
}

/** The sizes `scenario` runs at, in quick mode or in a full run. */
export function scaleOf(scenario: Scenario, quick: boolean): Scale {
  return scenario.scale?.[quick ? 'quick' : 'full'] ?? {};
}

/** The metrics `scenario` reports at the sizes it runs at. */
export function metricsOf(scenario: Scenario, quick: boolean): readonly MetricSpec[] {
  return scenario.metricsAt?.(scaleOf(scenario, quick)) ?? scenario.metrics;
}

/** Every server on its own: all but the servers dedicated to H and J. */
export const everyServer = (impl: Implementation): boolean => !DEDICATED.includes(impl);

/** Every server but the bare-framework references. */
export const contestants = (impl: Implementation): boolean => everyServer(impl) && !FRAMEWORK_REFERENCES.includes(impl);

/** The contestants on Node's own responses: E and F, which the Fetch API servers do not run. */
export const nodeContestants = (impl: Implementation): boolean => contestants(impl) && !FETCH_API.includes(impl);

/** A target on one measured value; not measured when the value is missing (its runs failed). */
export function target(what: string, value: number | undefined, shown: (value: number) => string, met: (value: number) => boolean): Target {
  return value === undefined ? { what, measured: '–', met: undefined } : { what, measured: shown(value), met: met(value) };
}

/** A ratio as the targets show it: `0.36×`. */
export const multiple = (ratio: number): string => `${ratio.toFixed(2)}×`;
