/**
 * K. One machine, many processes: scenario I's idle streams over several server processes of
 * ssekit on node:http that share one channel through `@ssekit/redis`, as many as the machine
 * holds (19,000 each, within the descriptor cap of 20,000 per process), and one event reaching
 * them all. Opt-in: it runs only when `--scenarios` names it.
 */
import { DensityClients, MAX_PER_PROCESS } from '../density-clients.js';
import { EVENT_BYTES } from '../payload.js';
import { RunFailure } from '../run-failure.js';
import { defineScenario, target, type Scale } from '../scenario.js';
import { median, percentile } from '../stats.js';
import { FAN_OUT_EVENTS, FAN_OUT_PAUSE_MS, fanOut, portOf } from './i-density.js';

/** The targets. */
const TARGET_P99_MS = 2000;
const TARGET_TOTAL_RSS_BYTES = 2 * 2 ** 30;

type FleetScale = Scale & {
  readonly serverProcesses: number;
  readonly streamsPerServer: number;
  readonly clientProcesses: number;
  readonly keepAliveMs: number;
};

export const manyProcesses = defineScenario<FleetScale>({
  id: 'K',
  title: 'One machine, many processes',
  optIn: true,
  scale: {
    full: { serverProcesses: 5, streamsPerServer: 19_000, clientProcesses: 8, keepAliveMs: 15_000 },
    quick: { serverProcesses: 5, streamsPerServer: 1000, clientProcesses: 2, keepAliveMs: 1000 },
  },
  describe: (s) =>
    `${s.serverProcesses} server processes of ssekit on node:http sharing one channel through \`@ssekit/redis\` (a key prefix of their own per run), ${s.streamsPerServer} idle streams on each, ${s.serverProcesses * s.streamsPerServer} in all, heartbeats every ${s.keepAliveMs} ms, from ${s.clientProcesses} lean client processes (as in I; each spreads its connections over every server). The first server publishes ${FAN_OUT_EVENTS} events of ${EVENT_BYTES} bytes, each once the previous reached every client (and ${FAN_OUT_PAUSE_MS} ms more); every server delivers what it reads from Redis. Time to connect everyone; the servers' RSS together after forced GCs, and RSS and heap used per stream (less the figures before the first stream); the p50 and p99 of every delivery latency, from the publish call to the client, and the median time until the last client had an event; lost events. Opt-in: runs only when named in \`--scenarios\`.`,
  metrics: [
    { key: 'connect', label: 'time to connect all', unit: 's', digits: 2 },
    { key: 'rssTotal', label: 'servers RSS together', unit: 'MB', digits: 0 },
    { key: 'rssPerStream', label: 'RSS per stream', unit: 'KB', digits: 2 },
    { key: 'heapPerStream', label: 'heap per stream', unit: 'KB', digits: 2 },
    { key: 'p50', label: 'fan-out p50', unit: 'ms', digits: 1 },
    { key: 'p99', label: 'fan-out p99', unit: 'ms', digits: 1 },
    { key: 'last', label: 'last client had it', unit: 'ms', digits: 1 },
    { key: 'lost', label: 'lost events', unit: '', digits: 0 },
  ],
  applies: (impl) => impl === 'ssekit-redis',
  run: ({ withServers, scale, serial, check }) => {
    const total = scale.serverProcesses * scale.streamsPerServer;
    if (total / scale.clientProcesses > MAX_PER_PROCESS)
      throw new Error(`K: ${total} streams need more than ${scale.clientProcesses} client processes`);
    const env = { BENCH_BACKPLANE_NAMESPACE: `ssekit_bench_${process.pid}_${serial}`, BENCH_KEEP_ALIVE_MS: String(scale.keepAliveMs) };
    return withServers(scale.serverProcesses, env, (servers) =>
      DensityClients.with(scale.clientProcesses, total, async (clients) => {
        const memory = async () => (await Promise.all(servers.map((server) => server.stats(true)))).map((stats) => stats.memory);
        const sum = (all: NodeJS.MemoryUsage[], key: 'rss' | 'heapUsed') => all.reduce((s, m) => s + m[key], 0);
        const before = await memory();
        const connectMs = await clients.open(servers.map(portOf), total, 1);
        for (const server of servers)
          await server.until(
            `${scale.streamsPerServer} streams on each server`,
            (stats) => stats.streams === scale.streamsPerServer,
            60_000,
          );
        const after = await memory();
        const fan = await fanOut(servers[0]!, clients, 1, FAN_OUT_EVENTS);
        // Every stream still held after the fan-out.
        for (const server of servers) {
          const { streams } = await server.stats();
          if (streams !== scale.streamsPerServer)
            throw new RunFailure(`a server holds ${streams} of its ${scale.streamsPerServer} streams`);
        }
        const totals = await clients.totals(FAN_OUT_EVENTS);
        check(totals);
        return {
          connect: connectMs / 1000,
          rssTotal: sum(after, 'rss') / 1e6,
          rssPerStream: (sum(after, 'rss') - sum(before, 'rss')) / total / 1000,
          heapPerStream: (sum(after, 'heapUsed') - sum(before, 'heapUsed')) / total / 1000,
          p50: percentile(fan.latencies, 50),
          p99: percentile(fan.latencies, 99),
          last: median(fan.lastMs),
          lost: totals.lost,
        };
      }),
    );
  },
  targets(results) {
    const total = results.median('ssekit-redis', 'rssTotal');
    return [
      target(
        `K: one event to every stream, p99 < ${TARGET_P99_MS / 1000} s`,
        results.median('ssekit-redis', 'p99'),
        (ms) => `${ms.toFixed(0)} ms`,
        (ms) => ms < TARGET_P99_MS,
      ),
      target(
        'K: the servers’ RSS together < 2 GiB',
        total,
        (mb) => `${((mb * 1e6) / 2 ** 30).toFixed(2)} GiB`,
        (mb) => mb * 1e6 < TARGET_TOTAL_RSS_BYTES,
      ),
      target('K: no event lost', results.median('ssekit-redis', 'lost'), String, (lost) => lost === 0),
    ];
  },
});
