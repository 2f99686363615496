/**
 * The load: a few long-lived client processes (`client.ts`), which open the streams, read them
 * and check every event. Their reports come back merged into one {@link ReaderTotals}.
 */
import type { ClientReport } from './client.js';
import { noReconnects, type ReconnectStatus } from './reconnect-status.js';
import { forkChild, stop, tailOf, waitReady } from './processes.js';
import { Peer } from './rpc.js';
import { RunFailure } from './run-failure.js';
import type { ServerProcess } from './server-process.js';

/** What the readers of every client process saw, summed. */
export interface ReaderTotals {
  readers: number;
  slow: number;
  /** Events the readers should have had: readers × events each. */
  events: number;
  lost: number;
  duplicates: number;
  misordered: number;
  unexpected: number;
  droppedReaders: number;
  /** When the last reader had its last event, in microseconds (see `nowMicros`). */
  lastCompleteAt: number;
  ended: number;
  farewells: number;
  retries: number;
  retryMin: number;
  retryMax: number;
  errors: Record<string, number>;
  timedOut: boolean;
  /** Every latency sample of every reader, sorted; when asked for. */
  latencies: Float64Array | undefined;
}

export interface OpenOptions {
  /** How many of the streams stall: they never read. @default 0 */
  readonly slow?: number;
  /** Events each reader must get; with `reconnectMs`, the most it may get, until `expect` says. @default 0 */
  readonly expect?: number;
  /** Whether the readers record each event's latency. @default false */
  readonly latency?: boolean;
  /**
   * Readers that reconnect as an EventSource does (see client.ts), after this long unless the
   * server says otherwise. @default they do not reconnect
   */
  readonly reconnectMs?: number;
}

export type { ReconnectStatus } from './reconnect-status.js';

export class LoadClients {
  private peers: Peer[] = [];

  constructor(private readonly processes: number) {}

  /** The client processes. */
  get all(): readonly Peer[] {
    return this.peers;
  }

  /** Whether any client process has gone. */
  get anyExited(): boolean {
    return this.peers.some((peer) => peer.exited);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.processes; i++) {
      const child = forkChild('client.ts', []);
      tailOf(child, `[client ${i}] `, true);
      await waitReady(child, `client ${i}`);
      this.peers.push(new Peer(`client ${i}`, child));
    }
  }

  /** Starts afresh, for after a failure that may have left a client holding state. */
  async restart(): Promise<void> {
    for (const peer of this.peers.splice(0)) peer.child.kill('SIGKILL');
    await this.start();
  }

  async stop(): Promise<void> {
    for (const peer of this.peers.splice(0)) await stop(peer.child, peer);
  }

  /** The shares of `count` over the client processes. */
  split(count: number): number[] {
    const n = this.peers.length;
    return this.peers.map((_, i) => Math.floor(count / n) + (i < count % n ? 1 : 0));
  }

  /**
   * Opens `count` streams on `route` over the client processes, and, for the broadcast, waits
   * until the server has them all.
   */
  async open(server: ServerProcess, route: string, count: number, options: OpenOptions = {}): Promise<void> {
    const slow = this.split(options.slow ?? 0);
    const results = await Promise.all(
      this.split(count).map((share, i) =>
        share === 0
          ? Promise.resolve({ opened: 0, failures: {} })
          : this.peers[i]!.call<{ opened: number; failures: Record<string, number> }>(
              'open',
              {
                url: server.url + route,
                count: share,
                slow: slow[i],
                expect: options.expect ?? 0,
                latency: options.latency ?? false,
                reconnectMs: options.reconnectMs,
                concurrency: 50,
              },
              120_000,
            ),
      ),
    );
    const opened = results.reduce((sum, result) => sum + result.opened, 0);
    if (opened !== count) {
      const failures = results.map((result) => JSON.stringify(result.failures)).join(' ');
      throw new RunFailure(`opened ${opened} of ${count} streams: ${failures}`);
    }
    if (route === '/events') await server.until(`${count} streams on the server`, (stats) => stats.streams === count);
  }

  /**
   * Asks each client (every one, or those given) to wait until its readers have every event
   * (`await`) or until their streams end (`await-end`), and merges their reports.
   */
  async awaitReaders(command: 'await' | 'await-end', timeoutMs: number, peers: readonly Peer[] = this.peers): Promise<ReaderTotals> {
    return totalOf(await Promise.all(peers.map((peer) => peer.call<ClientReport>(command, { timeoutMs }, timeoutMs + 30_000))));
  }

  /** Reconnecting readers: how many events they must each get, now that the publishing is over. */
  async expect(events: number): Promise<void> {
    await Promise.all(this.peers.map((peer) => peer.call('expect', { events }, 30_000)));
  }

  /**
   * Where the reconnecting readers of every client stand since `since` (µs), summed; `newest`
   * is where the publishing stands (see the server's `newest` command).
   */
  async reconnectStatus(since: number, newest?: { seq: number; before: number }): Promise<ReconnectStatus> {
    const all = await Promise.all(this.peers.map((peer) => peer.call<ReconnectStatus>('reconnect-status', { since, newest }, 30_000)));
    const total = noReconnects();
    for (const status of all) {
      for (const key of ['readers', 'live', 'caughtUp', 'attempts', 'deferred', 'gaveUp'] as const) total[key] += status[key];
      total.lastLiveAt = Math.max(total.lastLiveAt, status.lastLiveAt);
      total.lastCaughtUpAt = Math.max(total.lastCaughtUpAt, status.lastCaughtUpAt);
      for (const [code, count] of Object.entries(status.drops)) total.drops[code] = (total.drops[code] ?? 0) + count;
    }
    return total;
  }

  /** Closes every stream of every client; waits for all of them, then throws the first error. */
  async closeStreams(): Promise<void> {
    const closed = await Promise.allSettled(this.peers.map((peer) => peer.call('close', {}, 30_000)));
    const failed = closed.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** Totals of no reader: what merging starts from. */
export function noReaders(): ReaderTotals {
  return {
    readers: 0,
    slow: 0,
    events: 0,
    lost: 0,
    duplicates: 0,
    misordered: 0,
    unexpected: 0,
    droppedReaders: 0,
    lastCompleteAt: 0,
    ended: 0,
    farewells: 0,
    retries: 0,
    retryMin: Infinity,
    retryMax: -Infinity,
    errors: {},
    timedOut: false,
    latencies: undefined,
  };
}

function totalOf(reports: readonly ClientReport[]): ReaderTotals {
  const totals = noReaders();
  const latencies: Float64Array[] = [];
  for (const report of reports) {
    totals.readers += report.readers;
    totals.slow += report.slow;
    totals.events += report.readers * report.expected;
    totals.lost += report.lost;
    totals.duplicates += report.duplicates;
    totals.misordered += report.misordered;
    totals.unexpected += report.unexpected;
    totals.droppedReaders += report.droppedReaders;
    totals.lastCompleteAt = Math.max(totals.lastCompleteAt, report.lastCompleteAt);
    totals.ended += report.ended;
    totals.farewells += report.farewells;
    totals.retries += report.retries;
    if (report.retryMin !== undefined) totals.retryMin = Math.min(totals.retryMin, report.retryMin);
    if (report.retryMax !== undefined) totals.retryMax = Math.max(totals.retryMax, report.retryMax);
    for (const [error, count] of Object.entries(report.errors)) totals.errors[error] = (totals.errors[error] ?? 0) + count;
    totals.timedOut ||= report.timedOut;
    if (report.latencies) latencies.push(report.latencies);
  }
  if (latencies.length) {
    const all = new Float64Array(latencies.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of latencies) {
      all.set(part, offset);
      offset += part.length;
    }
    totals.latencies = all.sort();
  }
  return totals;
}
