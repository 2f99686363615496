/**
 * H. Fan-out through a backplane: two server instances, 500 clients each, sharing one feed
 * through `@ssekit/redis`, `@ssekit/postgres` or `@ssekit/nats`, against the in-memory channel.
 * One event every 20 ms, a rate this machine sustains with room to spare, so that latency is not
 * queueing.
 */
import { EVENT_BYTES } from '../payload.js';
import { defineScenario, multiple, target, type Target } from '../scenario.js';
import { BACKPLANES, LABELS } from '../servers.js';
import { percentile } from '../stats.js';

const CLIENTS_PER_INSTANCE = 500;
const EVENTS = 300;
const INTERVAL_MS = 20;

export const backplaneFanOut = defineScenario({
  id: 'H',
  title: 'Fan-out through a backplane',
  describe: () =>
    `Two server instances (processes) of ssekit on node:http, ${CLIENTS_PER_INSTANCE} clients on each; ${EVENTS} events of ${EVENT_BYTES} bytes of data, one every ${INTERVAL_MS} ms. With a backplane (\`@ssekit/redis\` on ioredis, \`@ssekit/postgres\` on pg, \`@ssekit/nats\` on JetStream), the first instance publishes and both deliver what they read from the engine. With the in-memory channel, the baseline here, each instance publishes the same events to its own channel. Server CPU per delivered event on each instance, from the first publish until every client had every event; delivery latency from the publish call to the client.`,
  metrics: [
    { key: 'cpuPublisher', label: 'CPU per delivered event, publishing instance', unit: 'µs', digits: 2, ratio: true },
    { key: 'cpuOther', label: 'CPU per delivered event, other instance', unit: 'µs', digits: 2, ratio: true },
    { key: 'p50', label: 'p50 latency', unit: 'ms', digits: 2, ratio: true },
    { key: 'p99', label: 'p99 latency', unit: 'ms', digits: 2, ratio: true },
    { key: 'lost', label: 'lost events', unit: '', digits: 0 },
  ],
  applies: (impl) => impl === 'ssekit-node' || BACKPLANES.includes(impl),
  baseline: { impl: 'ssekit-node', name: 'in-memory' },
  run: ({ impl, serial, withServers, clients, measured, check }) =>
    // A namespace of its own per run (a key prefix, a table, a stream): the two instances share
    // it, and no other run sees it.
    withServers(2, { BENCH_BACKPLANE_NAMESPACE: `ssekit_bench_${process.pid}_${serial}` }, async (servers) => {
      await Promise.all(
        servers.map((server, i) =>
          clients.all[i]!.call(
            'open',
            {
              url: server.url + '/events',
              count: CLIENTS_PER_INSTANCE,
              slow: 0,
              expect: EVENTS,
              latency: true,
              concurrency: 50,
            },
            120_000,
          ),
        ),
      );
      for (const server of servers) {
        await server.until(`${CLIENTS_PER_INSTANCE} streams on each instance`, (stats) => stats.streams === CLIENTS_PER_INSTANCE);
        await server.stats(true);
        await server.peer.call('mark-cpu');
      }
      const publishers = BACKPLANES.includes(impl) ? servers.slice(0, 1) : servers;
      const totals = await measured(servers[0]!, async () => {
        const readers = clients.awaitReaders('await', 120_000);
        const pace = { everyMs: INTERVAL_MS };
        await Promise.all(publishers.map((server) => server.publish({ count: EVENTS, bytes: EVENT_BYTES, pace }, 120_000)));
        return readers;
      });
      const [first, second] = await Promise.all(servers.map((server) => server.stats()));
      check(totals);
      const delivered = CLIENTS_PER_INSTANCE * EVENTS;
      const latencies = totals.latencies!;
      return {
        cpuPublisher: first!.cpuMicros / delivered,
        cpuOther: second!.cpuMicros / delivered,
        p50: percentile(latencies, 50) / 1000,
        p99: percentile(latencies, 99) / 1000,
        lost: totals.lost,
      };
    }),
  targets(results) {
    const targets: Target[] = [];
    for (const impl of BACKPLANES) {
      if (!results.runs(impl)) continue;
      for (const [key, instance] of [
        ['cpuPublisher', 'publishing instance'],
        ['cpuOther', 'other instance'],
      ] as const) {
        targets.push(
          target(
            `H: ${LABELS[impl]} CPU per delivered event, ${instance}, ≤ 1.2× in-memory`,
            results.ratio(impl, key),
            multiple,
            (ratio) => ratio <= 1.2,
          ),
        );
      }
      targets.push(target(`H: ${LABELS[impl]} p99 latency ≤ 2× in-memory`, results.ratio(impl, 'p99'), multiple, (ratio) => ratio <= 2));
    }
    return targets;
  },
});
