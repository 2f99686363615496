/** D. Latency: one event every 10 ms for 3 s, and how long each took to reach each client. */
import { EVENT_BYTES } from '../payload.js';
import { contestants, defineScenario, target } from '../scenario.js';
import { LABELS } from '../servers.js';
import { percentile } from '../stats.js';

const LATENCY_INTERVAL_MS = 10;
const LATENCY_EVENTS = 300;

export const latency = defineScenario({
  id: 'D',
  title: 'Latency',
  scale: { full: { latencyClients: 200 }, quick: { latencyClients: 200 } },
  describe: (s) =>
    `${s.latencyClients} clients; one event of ${EVENT_BYTES} bytes of data every ${LATENCY_INTERVAL_MS} ms for ${(LATENCY_EVENTS * LATENCY_INTERVAL_MS) / 1000} s. Delivery latency: receive time in the client minus the send time in the event, over every event of every client.`,
  metrics: [
    { key: 'p50', label: 'p50 latency', unit: 'ms', digits: 2 },
    { key: 'p99', label: 'p99 latency', unit: 'ms', digits: 2, headline: 'p99 latency' },
    { key: 'max', label: 'max latency', unit: 'ms', digits: 2 },
  ],
  applies: contestants,
  run: ({ withServer, clients, measured, check, scale }) =>
    withServer(async (server) => {
      await clients.open(server, '/events', scale.latencyClients, { expect: LATENCY_EVENTS, latency: true });
      await server.stats(true);
      const totals = await measured(server, async () => {
        const readers = clients.awaitReaders('await', 60_000);
        await server.publish({ count: LATENCY_EVENTS, bytes: EVENT_BYTES, pace: { everyMs: LATENCY_INTERVAL_MS } }, 60_000);
        return readers;
      });
      check(totals);
      const latencies = totals.latencies!;
      return { p50: percentile(latencies, 50) / 1000, p99: percentile(latencies, 99) / 1000, max: latencies[latencies.length - 1]! / 1000 };
    }),
  targets(results) {
    const raw = results.median('raw', 'p99');
    return results.ssekit.map((impl) => {
      const p99 = results.median(impl, 'p99');
      return target(
        `D: ${LABELS[impl]} p99 within 1 ms of raw`,
        p99 === undefined || raw === undefined ? undefined : p99 - raw,
        (d) => `${p99!.toFixed(2)} ms vs ${raw!.toFixed(2)} ms (${d >= 0 ? '+' : ''}${d.toFixed(2)} ms)`,
        (d) => d <= 1,
      );
    });
  },
});
