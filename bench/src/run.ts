/**
 * The state of one bench run, in one object: the options, the load clients, every run's
 * figures, the correctness tallies and the failures. `runOne` runs one scenario on one server
 * and records what came of it.
 */
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR } from './bench-dir.js';
import { LoadClients, type ReaderTotals } from './load-clients.js';
import type { BenchOptions } from './options.js';
import { Results } from './results.js';
import { RunFailure } from './run-failure.js';
import { metricsOf, scaleOf, type Scale, type Scenario, type ScenarioRun } from './scenario.js';
import { withServerFleet, withServerProcesses, type ServerProcess, type StartServer } from './server-process.js';
import { LABELS, PEERS, type Implementation } from './servers.js';
import { format } from './tables.js';

/** What the readers saw over every run of one server. */
export interface Tally {
  runs: number;
  failed: number;
  events: number;
  lost: number;
  duplicates: number;
  misordered: number;
  unexpected: number;
}

/** How many client processes make the load. */
const CLIENT_PROCESSES = 2;

export class BenchRun {
  readonly clients = new LoadClients(CLIENT_PROCESSES);
  readonly results = new Results();
  readonly tallies = new Map<Implementation, Tally>();
  /** Each failed run, labelled, with what went wrong. */
  readonly failures: string[] = [];
  /** How many of the failed runs were the peers': findings about them, not a failed bench. */
  peerFailures = 0;
  readonly startedAt = Date.now();
  /** The machine's load when the run began, for RESULTS.md. */
  readonly loadAtStart = os.loadavg();
  private runs = 0;

  constructor(readonly options: BenchOptions) {}

  tally(impl: Implementation): Tally {
    let entry = this.tallies.get(impl);
    if (!entry) this.tallies.set(impl, (entry = { runs: 0, failed: 0, events: 0, lost: 0, duplicates: 0, misordered: 0, unexpected: 0 }));
    return entry;
  }

  /** Runs `scenario` on `impl` in a fresh server process, prints its figures or its failure, and records them. */
  async runOne(scenario: Scenario, impl: Implementation, rep: number): Promise<void> {
    const { options } = this;
    const started = Date.now();
    const label = `[rep ${rep}/${options.reps}] ${scenario.id} ${scenario.title} · ${LABELS[impl]}`;
    const profileFile = options.cpuProf ? path.join(BENCH_DIR, 'profiles', `${scenario.id}-${impl}-rep${rep}.cpuprofile`) : undefined;
    const tally = this.tally(impl);
    tally.runs++;
    try {
      const metrics = await scenario.run(this.scenarioRun(impl, scaleOf(scenario, options.quick), profileFile));
      this.results.add(scenario, impl, metrics);
      const shown = metricsOf(scenario, options.quick).map(
        (metric) =>
          `${metric.label}${metric.group ? ` @${metric.group}` : ''} ${format(metrics[metric.key], metric.digits)}${metric.unit ? ' ' + metric.unit : ''}`,
      );
      console.log(`${label}: ${shown.join(', ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (error) {
      tally.failed++;
      const message = error instanceof Error ? error.message : String(error);
      this.failures.push(`${label}: ${message}`);
      if (PEERS.includes(impl)) this.peerFailures++;
      console.log(`${label}: FAILED: ${message}`);
      // A client that timed out may hold state: start afresh.
      if (!(error instanceof RunFailure) || this.clients.anyExited) await this.clients.restart();
    }
  }

  private scenarioRun(impl: Implementation, scale: Scale, profileFile: string | undefined): ScenarioRun {
    // The clients' streams close before the servers stop, so that none reconnects to a server going away.
    const closingStreams = async <T>(run: () => Promise<T>): Promise<T> => {
      try {
        return await run();
      } finally {
        await this.clients.closeStreams().catch(() => {});
      }
    };
    const execPath = this.options.serverNode;
    const withServers = <T>(count: number, env: Readonly<Record<string, string>>, run: (servers: ServerProcess[]) => Promise<T>) =>
      withServerProcesses(impl, count, { execPath, env }, (servers) => closingStreams(() => run(servers)));
    const withFleet = <T>(run: (start: StartServer) => Promise<T>) =>
      withServerFleet(impl, { execPath }, (start) => closingStreams(() => run(start)));
    return {
      impl,
      scale,
      clients: this.clients,
      serial: ++this.runs,
      withServers,
      withServerFleet: withFleet,
      withServer: (run) => withServers(1, {}, ([server]) => run(server!)),
      async measured(server, phase) {
        if (!profileFile) return phase();
        await server.peer.call('profile-start', { intervalMicros: 100 });
        const result = await phase();
        await server.peer.call('profile-stop', { file: profileFile });
        return result;
      },
      check: (totals) => this.check(impl, totals),
    };
  }

  /** Adds what the readers saw to `impl`'s tally, and fails the run on any loss, duplicate or misordering. */
  private check(impl: Implementation, totals: ReaderTotals): void {
    const tally = this.tally(impl);
    tally.events += totals.events;
    tally.lost += totals.lost;
    tally.duplicates += totals.duplicates;
    tally.misordered += totals.misordered;
    tally.unexpected += totals.unexpected;
    const problems: string[] = [];
    if (totals.lost) problems.push(`${totals.lost} lost`);
    if (totals.duplicates) problems.push(`${totals.duplicates} duplicated`);
    if (totals.misordered) problems.push(`${totals.misordered} misordered`);
    if (totals.unexpected) problems.push(`${totals.unexpected} unexpected`);
    if (totals.droppedReaders) problems.push(`${totals.droppedReaders} readers dropped by the server`);
    if (totals.timedOut) problems.push('timed out');
    if (Object.keys(totals.errors).length) problems.push(`client errors ${JSON.stringify(totals.errors)}`);
    if (problems.length) throw new RunFailure(`${problems.join(', ')} (of ${totals.events} events to ${totals.readers} readers)`);
  }
}
