/**
 * H. Fan-out through Redis: two server instances, 500 clients each, sharing one feed through
 * `@ssekit/redis`, against the in-memory channel. One event every 20 ms, a rate this machine
 * sustains with room to spare, so that latency is not queueing.
 */
import { EVENT_BYTES } from '../payload.js';
import { defineScenario } from '../scenario.js';
import { REDIS_SCENARIO_ONLY } from '../servers.js';
import { percentile } from '../stats.js';

const REDIS_CLIENTS_PER_INSTANCE = 500;
const REDIS_EVENTS = 300;
const REDIS_INTERVAL_MS = 20;

export const redisFanOut = defineScenario({
  id: 'H',
  title: 'Fan-out through Redis',
  describe: () =>
    `Two server instances (processes) of ssekit on node:http, ${REDIS_CLIENTS_PER_INSTANCE} clients on each; ${REDIS_EVENTS} events of ${EVENT_BYTES} bytes of data, one every ${REDIS_INTERVAL_MS} ms. With the Redis backplane (\`@ssekit/redis\` on ioredis), the first instance publishes and both deliver what they read from the Redis stream. With the in-memory channel, the baseline here, each instance publishes the same events to its own channel. Server CPU per delivered event on each instance, from the first publish until every client had every event; delivery latency from the publish call to the client.`,
  metrics: [
    { key: 'cpuPublisher', label: 'CPU per delivered event, publishing instance', unit: 'µs', digits: 2, ratio: true },
    { key: 'cpuOther', label: 'CPU per delivered event, other instance', unit: 'µs', digits: 2, ratio: true },
    { key: 'p50', label: 'p50 latency', unit: 'ms', digits: 2, ratio: true },
    { key: 'p99', label: 'p99 latency', unit: 'ms', digits: 2, ratio: true },
    { key: 'lost', label: 'lost events', unit: '', digits: 0 },
  ],
  applies: (impl) => impl === 'ssekit-node' || REDIS_SCENARIO_ONLY.includes(impl),
  baseline: { impl: 'ssekit-node', name: 'in-memory' },
  run: ({ impl, serial, withServers, clients, measured, check }) =>
    // A key prefix of its own per run: the two instances share it, and no other run sees it.
    withServers(2, { BENCH_REDIS_PREFIX: `ssekit-bench:${process.pid}:${serial}:` }, async (servers) => {
      await Promise.all(
        servers.map((server, i) =>
          clients.all[i]!.call(
            'open',
            {
              url: server.url + '/events',
              count: REDIS_CLIENTS_PER_INSTANCE,
              slow: 0,
              expect: REDIS_EVENTS,
              latency: true,
              concurrency: 50,
            },
            120_000,
          ),
        ),
      );
      for (const server of servers) {
        await server.until(
          `${REDIS_CLIENTS_PER_INSTANCE} streams on each instance`,
          (stats) => stats.streams === REDIS_CLIENTS_PER_INSTANCE,
        );
        await server.stats(true);
        await server.peer.call('mark-cpu');
      }
      const publishers = impl === 'ssekit-redis' ? servers.slice(0, 1) : servers;
      const totals = await measured(servers[0]!, async () => {
        const readers = clients.awaitReaders('await', 120_000);
        const pace = { everyMs: REDIS_INTERVAL_MS };
        await Promise.all(publishers.map((server) => server.publish({ count: REDIS_EVENTS, bytes: EVENT_BYTES, pace }, 120_000)));
        return readers;
      });
      const [first, second] = await Promise.all(servers.map((server) => server.stats()));
      check(totals);
      const delivered = REDIS_CLIENTS_PER_INSTANCE * REDIS_EVENTS;
      const latencies = totals.latencies!;
      return {
        cpuPublisher: first!.cpuMicros / delivered,
        cpuOther: second!.cpuMicros / delivered,
        p50: percentile(latencies, 50) / 1000,
        p99: percentile(latencies, 99) / 1000,
        lost: totals.lost,
      };
    }),
});
