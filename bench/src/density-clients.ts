/**
 * The density scenarios' load (I and K): several lean client processes (density-client.ts),
 * started for one run and stopped after it, each holding its share of the streams from loopback
 * source addresses of its own. Their reports come back merged, as {@link ReaderTotals} for the
 * run's checks.
 */
import type { DensityOpened, DensityReport } from './density-client.js';
import { noReaders, type ReaderTotals } from './load-clients.js';
import { forkChild, stop, tailOf, waitReady } from './processes.js';
import { Peer } from './rpc.js';
import { RunFailure } from './run-failure.js';

/**
 * Connections per source address, at most: a bound source address takes an ephemeral port of
 * its own per connection (some 28,000 per address in 32768-60999), and a run's closed
 * connections hold theirs in TIME_WAIT for a minute, into the next run.
 */
const CONNECTIONS_PER_ADDRESS = 8000;
/** Connections per client process, at most: each has the machine's cap of 20,000 descriptors. */
export const MAX_PER_PROCESS = 15_000;
/** Connections whose head has not arrived, per client process: within the servers' accept backlog (1024) over all of them. */
const CONCURRENCY = 250;

export class DensityClients {
  private constructor(
    private readonly peers: readonly Peer[],
    /** Each process's share of every `open`. */
    private readonly addresses: readonly (readonly string[])[],
  ) {}

  /** Starts `processes` client processes for `capacity` connections in all; stops them again if one fails to start. */
  static async start(processes: number, capacity: number): Promise<DensityClients> {
    const each = Math.ceil(capacity / processes);
    if (each > MAX_PER_PROCESS) throw new Error(`density clients: ${each} connections per process, past ${MAX_PER_PROCESS}`);
    const perProcess = Math.max(1, Math.ceil(each / CONNECTIONS_PER_ADDRESS));
    const peers: Peer[] = [];
    const addresses: string[][] = [];
    try {
      await Promise.all(
        Array.from({ length: processes }, async (_, i) => {
          const child = forkChild('density-client.ts', []);
          tailOf(child, `[density client ${i}] `, true);
          const peer = new Peer(`density client ${i}`, child);
          peers.push(peer);
          await waitReady(child, `density client ${i}`);
          await peer.call('init', { capacity: each });
        }),
      );
    } catch (error) {
      await Promise.all(peers.map((peer) => stop(peer.child, peer)));
      throw error;
    }
    // 127.0.0.2 onwards; 127.0.0.1 is the servers' own.
    for (let i = 0; i < processes; i++) addresses.push(Array.from({ length: perProcess }, (_, k) => `127.0.0.${2 + i * perProcess + k}`));
    return new DensityClients(peers, addresses);
  }

  /**
   * Opens `count` more streams, split over the processes, each spread over `ports`; they must
   * each get every event from `firstSeq` on. Resolves with the wall time it took (ms).
   */
  async open(ports: readonly number[], count: number, firstSeq: number): Promise<number> {
    const n = this.peers.length;
    const start = performance.now();
    const results = await Promise.all(
      this.peers.map((peer, i) =>
        peer.call<DensityOpened>(
          'open',
          {
            ports,
            addresses: this.addresses[i],
            count: Math.floor(count / n) + (i < count % n ? 1 : 0),
            firstSeq,
            concurrency: CONCURRENCY,
            timeoutMs: 180_000,
          },
          200_000,
        ),
      ),
    );
    const ms = performance.now() - start;
    const opened = results.reduce((sum, result) => sum + result.opened, 0);
    if (opened !== count) {
      const failures = results.map((result) => `${JSON.stringify(result.failures)}${result.timedOut ? ' (timed out)' : ''}`).join(' ');
      throw new RunFailure(`opened ${opened} of ${count} streams: ${failures}`);
    }
    return ms;
  }

  /** Heartbeat comments received so far, over every connection. */
  async heartbeats(): Promise<number> {
    const counts = await Promise.all(this.peers.map((peer) => peer.call<{ heartbeats: number }>('heartbeats', {}, 30_000)));
    return counts.reduce((sum, { heartbeats }) => sum + heartbeats, 0);
  }

  /** Waits until every open connection had `seq`; resolves with when the last one had it (ms after its send). */
  async awaitSeq(seq: number, timeoutMs: number): Promise<number> {
    const results = await Promise.all(
      this.peers.map((peer) =>
        peer.call<{ received: number; expected: number; lastMs: number }>('await-seq', { seq, timeoutMs }, timeoutMs + 30_000),
      ),
    );
    const received = results.reduce((sum, result) => sum + result.received, 0);
    const expected = results.reduce((sum, result) => sum + result.expected, 0);
    if (received < expected) throw new RunFailure(`event ${seq} reached ${received} of ${expected} streams within ${timeoutMs} ms`);
    return Math.max(...results.map((result) => result.lastMs));
  }

  /** Every delivery latency (ms) of the events `from` to `to`, sorted. */
  async latencies(from: number, to: number): Promise<Float64Array> {
    const parts = await Promise.all(this.peers.map((peer) => peer.call<Float64Array>('latencies', { from, to }, 60_000)));
    const all = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    return all.sort();
  }

  /** What the readers saw of the events 1 to `published`, merged, in the shape the run's checks take. */
  async totals(published: number): Promise<ReaderTotals> {
    const reports = await Promise.all(this.peers.map((peer) => peer.call<DensityReport>('report', { published }, 60_000)));
    const errors: Record<string, number> = {};
    for (const report of reports) for (const [error, count] of Object.entries(report.errors)) errors[error] = (errors[error] ?? 0) + count;
    const sum = (key: keyof Omit<DensityReport, 'errors'>) => reports.reduce((total, report) => total + report[key], 0);
    const dropped = sum('dropped');
    return {
      ...noReaders(),
      readers: sum('readers'),
      events: sum('expected'),
      lost: sum('lost'),
      duplicates: sum('duplicates'),
      misordered: sum('misordered'),
      unexpected: sum('unexpected'),
      droppedReaders: dropped,
      // A drop is already counted as such; its reason would only repeat it.
      errors: dropped ? {} : errors,
    };
  }

  /** Closes every connection and stops the processes. */
  async stop(): Promise<void> {
    await Promise.all(this.peers.map((peer) => stop(peer.child, peer)));
  }

  /** Runs `run` with `processes` client processes for `capacity` connections, and stops them after, whatever happens. */
  static async with<T>(processes: number, capacity: number, run: (clients: DensityClients) => Promise<T>): Promise<T> {
    const clients = await DensityClients.start(processes, capacity);
    try {
      return await run(clients);
    } finally {
      await clients.stop();
    }
  }
}
