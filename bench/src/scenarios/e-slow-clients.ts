/**
 * E. Slow clients: some clients stall and never read, while the others read 5 MiB each. What
 * the stalled clients cost the server, and whether the readers were slowed.
 *
 * The issue fixes no event for E. A stalled client costs the server memory only once the
 * kernel's buffers for its socket are full, and on loopback (64 KiB segments, send buffers
 * autotuned up to 4 MiB) that is about 3.8 MB per socket: with 100-byte events it would take
 * some 40,000 events to each of 1000 clients. So E sends 320 events of 16 KiB (5 MiB per
 * client), paced so that the readers together get about 250 MB/s (one event every 62 ms to 950
 * readers), near what this 2-core machine sustains through Node's HTTP client. Quick mode keeps
 * the aggregate rate with its fewer readers, so its interval is shorter.
 */
import { defineScenario, nodeContestants, target, type ScenarioRun, type Target } from '../scenario.js';
import { LABELS } from '../servers.js';
import { percentile } from '../stats.js';

const SLOW_EVENT_BYTES = 16 * 1024;
const SLOW_EVENTS = 320;
const SLOW_RATE_BYTES_PER_SEC = 250e6;
/** ssekit's default, which every ssekit server here uses. */
const MAX_BUFFERED_BYTES = 256 * 1024;
const MiB = 1024 * 1024;

const scale = {
  full: { slowClients: 1000, slowStalled: 50, slowControl: true },
  // Quick mode skips the control: it checks correctness only.
  quick: { slowClients: 200, slowStalled: 10, slowControl: false },
};
type SlowScale = (typeof scale)['full'];

const slowIntervalMs = (s: SlowScale) =>
  Math.max(1, Math.round((((s.slowClients - s.slowStalled) * SLOW_EVENT_BYTES) / SLOW_RATE_BYTES_PER_SEC) * 1000));

/** One server process: `slowClients - slowStalled` readers, plus `stalled` clients that never read. */
function slowClientsRun({ withServer, clients, measured, check, scale: s }: ScenarioRun<SlowScale>, stalled: number) {
  return withServer(async (server) => {
    const clientCount = s.slowClients - s.slowStalled + stalled;
    await clients.open(server, '/events', clientCount, { slow: stalled, expect: SLOW_EVENTS, latency: true });
    const before = await server.stats(true);
    await server.peer.call('sample-rss', { everyMs: 5 });
    const { published, totals } = await measured(server, async () => {
      const readers = clients.awaitReaders('await', 120_000);
      const published = await server.publish(
        { count: SLOW_EVENTS, bytes: SLOW_EVENT_BYTES, pace: { everyMs: slowIntervalMs(s) } },
        120_000,
      );
      return { published, totals: await readers };
    });
    const { peak } = await server.peer.call<{ peak: NodeJS.MemoryUsage }>('stop-sampling');
    if (process.env.BENCH_DEBUG) console.log('    peak', JSON.stringify(peak), 'before', JSON.stringify(before.memory));
    const after = await server.stats();
    check(totals);
    const heap = (memory: NodeJS.MemoryUsage) => memory.heapUsed + memory.external;
    return {
      rssGrowth: (peak.rss - before.memory.rss) / 1e6,
      heapGrowth: (heap(peak) - heap(before.memory)) / 1e6,
      readersP99: percentile(totals.latencies!, 99) / 1000,
      readersWallMs: (totals.lastCompleteAt - published.t0) / 1000,
      slowDropped: clientCount - after.streams,
    };
  });
}

export const slowClients = defineScenario({
  id: 'E',
  title: 'Slow clients',
  scale,
  describe: (s) =>
    `${s.slowClients} clients, of which ${s.slowStalled} pause their response at once and never read again; ${SLOW_EVENTS} events of ${SLOW_EVENT_BYTES / 1024} KiB, one every ${slowIntervalMs(s)} ms (${((SLOW_EVENTS * SLOW_EVENT_BYTES) / MiB).toFixed(1)} MiB per client: past the ~3.8 MB that the kernel buffers for a stalled loopback socket; about ${(SLOW_RATE_BYTES_PER_SEC / 1e6).toFixed(0)} MB/s to the readers together). Peak server RSS, sampled every 5 ms, minus RSS after a forced GC before the first event (and the JS heap plus external memory at that peak). Each server also runs a control, in a process of its own: the same ${s.slowClients - s.slowStalled} readers and events with no stalled client. Its growth is the constant (V8 sizing its heap to the allocation rate, socket buffers); what the stalled clients cost is the difference, divided by ${s.slowStalled}. The readers' latency and completion time show whether they were slowed.`,
  metrics: [
    { key: 'rssGrowth', label: 'peak RSS growth', unit: 'MB', digits: 1, ratio: true },
    { key: 'controlRssGrowth', label: 'the same without stalled clients', unit: 'MB', digits: 1 },
    { key: 'rssGrowthPerSlow', label: 'peak RSS growth per stalled client', unit: 'KB', digits: 0 },
    { key: 'heapGrowth', label: 'heap + external growth at the peak', unit: 'MB', digits: 1 },
    { key: 'readersP99', label: 'readers p99 latency', unit: 'ms', digits: 2 },
    { key: 'readersWallMs', label: 'readers done after', unit: 'ms', digits: 0 },
    { key: 'slowDropped', label: 'slow clients cut off', unit: '', digits: 0 },
  ],
  applies: nodeContestants,
  async run(run) {
    // The control: the same readers and events, no stalled client, in a server process of its
    // own. What a server's RSS grows by there (V8 sizing its heap to the allocation rate, the
    // sockets' buffers) is the constant; the difference is what the stalled clients cost.
    const stalled = await slowClientsRun(run, run.scale.slowStalled);
    if (!run.scale.slowControl) return stalled;
    const control = await slowClientsRun(run, 0);
    return {
      ...stalled,
      controlRssGrowth: control.rssGrowth,
      rssGrowthPerSlow: ((stalled.rssGrowth - control.rssGrowth) * 1000) / run.scale.slowStalled,
    };
  },
  targets(results) {
    const targets: Target[] = [];
    const bound = (MAX_BUFFERED_BYTES + SLOW_EVENT_BYTES) / 1000;
    for (const impl of results.ssekit) {
      targets.push(
        target(
          `E: ${LABELS[impl]} peak RSS growth per stalled client ≤ maxBufferedBytes + one event = ${bound.toFixed(0)} KB`,
          results.median(impl, 'rssGrowthPerSlow'),
          (v) => `${v.toFixed(0)} KB (constant, without stalled clients: ${results.median(impl, 'controlRssGrowth')?.toFixed(1)} MB)`,
          (v) => v <= bound,
        ),
      );
    }
    // Not slowed: the readers got every event (a failed run otherwise) and finished as soon
    // as raw node:http's readers under the same load, within 5%.
    const rawDone = results.median('raw', 'readersWallMs');
    const rawP99 = results.median('raw', 'readersP99');
    for (const impl of results.ssekit) {
      const done = results.median(impl, 'readersWallMs');
      const p99 = results.median(impl, 'readersP99');
      targets.push(
        target(
          `E: ${LABELS[impl]} readers not slowed (done within 5% of raw's readers)`,
          done === undefined || rawDone === undefined ? undefined : done / rawDone,
          (r) =>
            `done after ${done!.toFixed(0)} ms vs ${rawDone!.toFixed(0)} ms (${r.toFixed(2)}×); p99 ${p99!.toFixed(1)} ms vs ${rawP99!.toFixed(1)} ms`,
          (r) => r <= 1.05,
        ),
      );
    }
    return targets;
  },
});
