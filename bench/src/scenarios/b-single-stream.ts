/** B. Single stream: one client, 200,000 events, each sent when the previous send let go. */
import { EVENT_BYTES } from '../payload.js';
import { contestants, defineScenario, multiple, target } from '../scenario.js';
import { LABELS } from '../servers.js';

const SINGLE_EVENTS = 200_000;

export const singleStream = defineScenario({
  id: 'B',
  title: 'Single stream',
  describe: () =>
    `One client; ${SINGLE_EVENTS.toLocaleString('en')} events of ${EVENT_BYTES} bytes of data, each sent when the previous send let go (after a drain when the socket was full). better-sse has no backpressure: it pushes every event at once and Node buffers what the socket cannot take.`,
  metrics: [
    { key: 'cpuPerEvent', label: 'server CPU per event', unit: 'µs', digits: 2, ratio: true, headline: 'single stream CPU per event' },
    { key: 'eventsPerSec', label: 'events per second', unit: '/s', digits: 0, ratio: true },
  ],
  applies: contestants,
  run: ({ withServer, clients, measured, check }) =>
    withServer(async (server) => {
      const client = clients.all[0]!;
      await client.call(
        'open',
        { url: server.url + '/single', count: 1, slow: 0, expect: SINGLE_EVENTS, latency: false, concurrency: 1 },
        30_000,
      );
      await server.until('the single stream on the server', (stats) => stats.single);
      await server.stats(true);
      const { sent, totals, stats } = await measured(server, async () => {
        const reader = clients.awaitReaders('await', 180_000, [client]);
        const sent = await server.peer.call<{ t0: number }>('single', { count: SINGLE_EVENTS, bytes: EVENT_BYTES }, 180_000);
        const totals = await reader;
        return { sent, totals, stats: await server.stats() };
      });
      check(totals);
      return {
        cpuPerEvent: stats.cpuMicros / SINGLE_EVENTS,
        eventsPerSec: SINGLE_EVENTS / ((totals.lastCompleteAt - sent.t0) / 1e6),
      };
    }),
  targets: (results) =>
    results.ssekit.map((impl) =>
      target(`B: ${LABELS[impl]} CPU per event ≤ 1.1× raw`, results.ratio(impl, 'cpuPerEvent'), multiple, (ratio) => ratio <= 1.1),
    ),
});
