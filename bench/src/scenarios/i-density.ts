/**
 * I. Density: thousands of idle streams with heartbeats on, on one server process, opened in
 * steps; at each step what a stream costs in memory, what a heartbeat round costs in CPU, and how
 * long one event takes to reach everyone. The streams come from the lean density clients
 * (density-client.ts), over several processes and loopback source addresses.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DensityClients } from '../density-clients.js';
import { EVENT_BYTES } from '../payload.js';
import { defineScenario, multiple, target, type MetricSpec, type Metrics, type Scale, type Target } from '../scenario.js';
import type { ServerProcess } from '../server-process.js';
import { LABELS, type Implementation } from '../servers.js';
import { median, percentile } from '../stats.js';

// Express and Koa by hand too: what each framework costs per stream with no library at all is the
// floor under ssekit's figures there.
const SERVERS: readonly Implementation[] = [
  'raw',
  'ssekit-node',
  'ssekit-express',
  'ssekit-fastify',
  'ssekit-koa',
  'express-bare',
  'koa-bare',
];
/** Events published to everyone at each step, one after another. */
export const FAN_OUT_EVENTS = 5;
/** After each event reached every client, before the next. */
export const FAN_OUT_PAUSE_MS = 100;
/** How long one event may take to reach every client before the run fails. */
const DELIVERY_TIMEOUT_MS = 60_000;

export type DensityScale = Scale & {
  readonly step1: number;
  readonly step2: number;
  readonly step3: number;
  readonly clientProcesses: number;
  /** The ssekit servers' `keepAliveMs` (`BENCH_KEEP_ALIVE_MS`): short, so that rounds fit in a run. */
  readonly keepAliveMs: number;
};

/** The quiet window over which a heartbeat round is measured: two heartbeat periods (at least 1.5, as the issue asks). */
export const quietWindowMs = (keepAliveMs: number): number => 2 * keepAliveMs;

const stepsOf = (s: DensityScale): number[] => [s.step1, s.step2, s.step3];

function stepMetrics(n: number, windowMs: number): MetricSpec[] {
  const group = `${n} streams`;
  const at = (key: string, label: string, unit: string, digits: number, ratio = false): MetricSpec => ({
    key: `${key}@${n}`,
    label,
    unit,
    digits,
    ratio,
    group,
  });
  return [
    at('rss', 'RSS per stream', 'KB', 2, true),
    at('heap', 'heap per stream', 'KB', 2, true),
    at('connect', 'time to connect all', 's', 2),
    at('idleCpu', `server CPU over ${windowMs} ms quiet`, 'ms', 1),
    at('heartbeatRound', 'CPU of one heartbeat round', 'ms', 2),
    at('publishCpu', 'CPU of one publish to all', 'ms', 2),
    at('p50', 'fan-out p50', 'ms', 1, true),
    at('p99', 'fan-out p99', 'ms', 1, true),
    at('last', 'last client had it', 'ms', 1, true),
  ];
}

/**
 * Publishes `events` events of 100 bytes one by one on `publisher`, each once the previous reached
 * every client and after a short pause, from seq `firstSeq` on. Resolves with the publishes' CPU
 * (µs each), the time until the last client had each (ms), and every delivery latency (ms, sorted).
 */
export async function fanOut(
  publisher: ServerProcess,
  clients: DensityClients,
  firstSeq: number,
  events: number,
): Promise<{ publishCpuMicros: number[]; lastMs: number[]; latencies: Float64Array }> {
  const publishCpuMicros: number[] = [];
  const lastMs: number[] = [];
  for (let seq = firstSeq; seq < firstSeq + events; seq++) {
    await publisher.peer.call('publish-one', { seq, bytes: EVENT_BYTES }, 30_000);
    lastMs.push(await clients.awaitSeq(seq, DELIVERY_TIMEOUT_MS));
    await sleep(FAN_OUT_PAUSE_MS);
    // Measured like a heartbeat round, over a window that holds what follows the writes too: the
    // write callbacks, and the kernel's work on the clients' ACKs. No heartbeat falls in it: the
    // event was a write to every stream.
    const { cpuMicros } = await publisher.peer.call<{ cpuMicros: number }>('cpu-since-publish', {}, 30_000);
    publishCpuMicros.push(cpuMicros);
  }
  return { publishCpuMicros, lastMs, latencies: await clients.latencies(firstSeq, firstSeq + events - 1) };
}

export const portOf = (server: ServerProcess): number => Number(new URL(server.url).port);

export const density = defineScenario<DensityScale>({
  id: 'I',
  title: 'Density',
  scale: {
    full: { step1: 5000, step2: 10_000, step3: 19_000, clientProcesses: 4, keepAliveMs: 2000 },
    quick: { step1: 300, step2: 600, step3: 1000, clientProcesses: 2, keepAliveMs: 500 },
  },
  describe: (s) =>
    `${stepsOf(s).join(', ')} concurrent idle streams on one server process, subscribed to one channel (raw node:http, Express by hand and Koa by hand: one set of responses), opened in steps in the same process, from ${s.clientProcesses} lean client processes (\`net.connect\`, a hand-written request, a byte-level parser) on loopback source addresses of their own, at most 250 connecting at a time per process. The ssekit servers send heartbeats every ${s.keepAliveMs} ms (\`keepAliveMs\`); the hand-written servers send none. At each step: RSS and heap used after forced GCs, less the figures before the first stream, per stream; the time to connect everyone (the steps so far together); the server's CPU over a quiet window of ${quietWindowMs(s.keepAliveMs)} ms, and from it the CPU of one heartbeat round (that CPU / heartbeats the clients received in the window × streams); then ${FAN_OUT_EVENTS} events of ${EVENT_BYTES} bytes, each published once the previous reached every client (and ${FAN_OUT_PAUSE_MS} ms more): the CPU of one publish (from just before it until every client had it and ${FAN_OUT_PAUSE_MS} ms more, as a heartbeat round's window holds what follows its writes; median), the p50 and p99 of every delivery latency, and the median time until the last client had an event.`,
  skipInQuick: true,
  metrics: [],
  metricsAt: (s) => stepsOf(s).flatMap((n) => stepMetrics(n, quietWindowMs(s.keepAliveMs))),
  applies: (impl) => SERVERS.includes(impl),
  run: ({ withServers, scale, check }) =>
    withServers(1, { BENCH_KEEP_ALIVE_MS: String(scale.keepAliveMs) }, ([server]) =>
      DensityClients.with(scale.clientProcesses, scale.step3, async (clients) => {
        const port = portOf(server!);
        const windowMs = quietWindowMs(scale.keepAliveMs);
        const before = (await server!.stats(true)).memory;
        const metrics: Metrics = {};
        let open = 0;
        let published = 0;
        let connectMs = 0;
        for (const n of stepsOf(scale)) {
          connectMs += await clients.open([port], n - open, published + 1);
          open = n;
          await server!.until(`${n} streams on the server`, (stats) => stats.streams === n, 60_000);
          const { memory } = await server!.stats(true);
          metrics[`rss@${n}`] = (memory.rss - before.rss) / n / 1000;
          metrics[`heap@${n}`] = (memory.heapUsed - before.heapUsed) / n / 1000;
          metrics[`connect@${n}`] = connectMs / 1000;

          const heartbeatsBefore = await clients.heartbeats();
          const idle = await server!.peer.call<{ cpuMicros: number }>('idle-cpu', { ms: windowMs }, windowMs + 30_000);
          const heartbeats = (await clients.heartbeats()) - heartbeatsBefore;
          metrics[`idleCpu@${n}`] = idle.cpuMicros / 1000;
          if (heartbeats > 0) metrics[`heartbeatRound@${n}`] = (idle.cpuMicros / heartbeats) * (n / 1000);

          const fan = await fanOut(server!, clients, published + 1, FAN_OUT_EVENTS);
          published += FAN_OUT_EVENTS;
          metrics[`publishCpu@${n}`] = median(fan.publishCpuMicros) / 1000;
          metrics[`p50@${n}`] = percentile(fan.latencies, 50);
          metrics[`p99@${n}`] = percentile(fan.latencies, 99);
          metrics[`last@${n}`] = median(fan.lastMs);
        }
        check(await clients.totals(published));
        return metrics;
      }),
    ),
  targets(results) {
    const top = 19_000;
    const targets: Target[] = [];
    for (const impl of results.ssekit.filter((impl) => SERVERS.includes(impl))) {
      targets.push(
        target(`I: ${LABELS[impl]} RSS per stream at ${top} ≤ 1.0× raw`, results.ratio(impl, `rss@${top}`), multiple, (r) => r <= 1),
        target(`I: ${LABELS[impl]} fan-out p99 at ${top} ≤ 0.7× raw`, results.ratio(impl, `p99@${top}`), multiple, (r) => r <= 0.7),
      );
      // Both in the same server process, in the same run: per-run ratios, then their median.
      const ratios = (results.runs(impl) ?? [])
        .filter((m) => m[`heartbeatRound@${top}`] !== undefined && m[`publishCpu@${top}`] !== undefined)
        .map((m) => m[`heartbeatRound@${top}`]! / m[`publishCpu@${top}`]!);
      targets.push(
        target(
          `I: ${LABELS[impl]} CPU of a heartbeat round over ${top} idle streams ≤ the CPU of one publish to them`,
          ratios.length ? median(ratios) : undefined,
          (r) => `${multiple(r)} of one publish`,
          (r) => r <= 1,
        ),
      );
    }
    return targets;
  },
});
