/**
 * J. Reconnect storm: thousands of clients on one channel with history (ssekit on node:http, on
 * `@ssekit/redis`, so that the history outlives the server), the server SIGKILLed and started
 * again on the same port while a publisher of its own keeps publishing, and every client coming
 * back at once with its `Last-Event-ID`; without admission control, and with it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadClients, ReconnectStatus } from '../load-clients.js';
import { EVENT_BYTES, nowMicros } from '../payload.js';
import { RunFailure } from '../run-failure.js';
import { defineScenario, target, type Scale } from '../scenario.js';
import { pickFixedPort, type ServerProcess } from '../server-process.js';
import { ADMISSION, LABELS, type Implementation } from '../servers.js';

/**
 * One event every so often, all along: before the crash, while the server is down, and through
 * the storm. Not oftener: one event to 5,000 clients costs the server some 50 to 70 ms of CPU on
 * this 2-core machine (5,000 socket writes, A2's cost per delivered event), and at one a second
 * that one late check in a hundred would be the p99 by itself, whatever the storm does.
 */
const INTERVAL_MS = 2000;
/** Events flow live this long before the crash; the event-loop delay before the crash is read over it. */
const LIVE_MS = 2000;
/** From the kill until a new server process starts. */
const DOWN_MS = 2000;
/** The clients' reconnection time until a server sends `retry:`: an EventSource's usual default. */
const RETRY_MS = 1000;
/** A run fails when its clients are not all back by then. */
const BACK_TIMEOUT_MS = 60_000;
/**
 * The most events a run may publish (the publisher stops once every client is back): enough for
 * the longest run the time limits allow, and far within what the channel may replay
 * (`maxReplayEvents`, 10,000 by default) and what its Redis stream keeps (`maxLen`, 10,000).
 */
const MAX_EVENTS = 100;
/** The targets, with admission. */
const TARGET_LOOP_DELAY_MS = 100;
const TARGET_BACK_MS = 30_000;

const PLAIN = 'ssekit-redis' satisfies Implementation;
const ADMITTED = 'ssekit-redis-admission' satisfies Implementation;

/**
 * Why the admission variant's values: what a reconnect was measured to cost without admission,
 * and what this machine has to spend on it.
 */
const ADMISSION_SIZING =
  "without admission, the 5,000 reconnects (each replaying some 50 events) cost the server about 3 s of CPU, some 0.6 ms each. 1,000 opens a second is then about 60% of a core: what the server can spend on this 2-core machine while the load clients and Redis share the rest. Fewer would bring every client back later and send more of them round again, each deferral a request of its own on a new connection. 5,000 clients at 1,000 a second take 5 s plus their retries (1 to 2 s, admission's defaults), well within the 30 s target. A replay is one XRANGE round trip: even at 50 ms under load, 1,000 opens a second keep about 50 in flight, so 64 concurrent replays (and a queue of 1,024) hardly hold the opens back, yet they bound how many replays run, and answer, at once. Quick mode keeps that shape with a tenth of the clients: a tenth of the opens a second, and 8 concurrent replays.";

type StormScale = Scale & {
  readonly stormClients: number;
  /**
   * Events the publisher sends at once while the server is down, on top of its pace: what every
   * client misses, and replays when it comes back. The replays are most of a storm's cost.
   */
  readonly missedEvents: number;
  readonly opensPerSecond: number;
  readonly concurrentReplays: number;
};

/** What the admission variant's server reads its admission from. */
function admissionEnv(impl: Implementation, scale: StormScale): Record<string, string> {
  if (!ADMISSION.includes(impl)) return {};
  return {
    BENCH_ADMISSION_OPENS_PER_SECOND: String(scale.opensPerSecond),
    BENCH_ADMISSION_CONCURRENT_REPLAYS: String(scale.concurrentReplays),
  };
}

/** Polls the clients until every one is back: live on the new server, and caught up. */
async function untilEveryoneIsBack(clients: LoadClients, publisher: ServerProcess, since: number, n: number): Promise<ReconnectStatus> {
  const deadline = Date.now() + BACK_TIMEOUT_MS;
  for (;;) {
    const now = await clients.reconnectStatus(since, await publisher.newest());
    if (now.gaveUp) throw new RunFailure(`${now.gaveUp} clients gave up reconnecting (${JSON.stringify(now.drops)})`);
    if (now.caughtUp === n) return now;
    if (Date.now() > deadline) {
      throw new RunFailure(
        `after ${BACK_TIMEOUT_MS / 1000} s, ${now.live} of ${n} clients had a live stream again and ${now.caughtUp} had caught up (${now.deferred} deferrals, drops ${JSON.stringify(now.drops)})`,
      );
    }
    await sleep(100);
  }
}

export const reconnectStorm = defineScenario<StormScale>({
  id: 'J',
  title: 'Reconnect storm',
  scale: {
    full: { stormClients: 5000, missedEvents: 50, opensPerSecond: 1000, concurrentReplays: 64 },
    quick: { stormClients: 500, missedEvents: 20, opensPerSecond: 100, concurrentReplays: 8 },
  },
  describe: (s) =>
    `${s.stormClients.toLocaleString('en')} clients on one channel of ssekit on node:http with \`@ssekit/redis\` (one stream group, the channel's default \`maxReplayEvents\` of 10,000), over the load-client processes; a publisher in a process of its own publishes one event of ${EVENT_BYTES} bytes of data every ${INTERVAL_MS} ms to the same channel through Redis, all along. After ${LIVE_MS / 1000} s the server process is SIGKILLed (no \`retry\`, no goodbye); right after, the publisher sends ${s.missedEvents} events at once, so that every client has ${s.missedEvents} and more to replay; ${DOWN_MS / 1000} s later a new one starts on the same port. The clients reconnect as an EventSource does: after their reconnection time (the last \`retry:\` they read, else ${RETRY_MS} ms, without jitter, so that they come back together), with \`Last-Event-ID\`; a 503, or a 200 carrying \`Retry-After\`, is a deferral, after which they wait the \`retry:\` in its body or else \`Retry-After\`. Two variants of the server that starts after the crash: its group without admission, and with \`admission: { opensPerSecond: ${s.opensPerSecond}, concurrentReplays: ${s.concurrentReplays} }\` (the clients first connect to a server without admission in both, since a client deferred then would carry the deferral's jittered retry into the storm, out of step with the others). ` +
    `Why those values: ${ADMISSION_SIZING} ` +
    `Measured from the moment the new server listens: until every client has a live stream again (a head that is not a deferral), and until every client also holds every event sent before its stream went live (its replay is complete: "back"); the new server's event-loop delay, p99 and max (\`monitorEventLoopDelay\` at 10 ms resolution, on from the process's start, reset when it listens, read once every client is back; a check's delay is how far past its 10 ms it ran) and its peak RSS (\`process.resourceUsage().maxRSS\`); the deferred answers and reconnect attempts the clients made after the crash; lost and repeated events over each client's whole life, across its reconnects (any is a failed run). The first server's event-loop delay p99 over the ${LIVE_MS / 1000} s before the crash shows what the steady fan-out to every client costs by itself.`,
  metrics: [
    { key: 'downMs', label: 'down (kill to listening)', unit: 'ms', digits: 0 },
    { key: 'liveMs', label: 'every client live again', unit: 'ms', digits: 0 },
    { key: 'backMs', label: 'every client back and caught up', unit: 'ms', digits: 0 },
    { key: 'loopDelayP99', label: 'event-loop delay p99', unit: 'ms', digits: 1 },
    { key: 'loopDelayMax', label: 'event-loop delay max', unit: 'ms', digits: 1 },
    { key: 'loopDelayP99Steady', label: 'event-loop delay p99 before the crash', unit: 'ms', digits: 1 },
    { key: 'cpuMs', label: 'server CPU until every client was back', unit: 'ms', digits: 0 },
    { key: 'peakRss', label: 'peak RSS', unit: 'MB', digits: 1 },
    { key: 'deferred', label: 'deferred answers', unit: '', digits: 0 },
    { key: 'attempts', label: 'reconnect attempts', unit: '', digits: 0 },
    { key: 'lost', label: 'lost events', unit: '', digits: 0 },
    { key: 'repeated', label: 'repeated events', unit: '', digits: 0 },
  ],
  applies: (impl) => impl === PLAIN || ADMISSION.includes(impl),
  run: ({ impl, serial, scale, clients, withServerFleet, check }) =>
    withServerFleet(async (start) => {
      const n = scale.stormClients;
      // A namespace of its own per run, which the publisher and both servers share.
      const shared = { BENCH_BACKPLANE_NAMESPACE: `ssekit_bench_${process.pid}_${serial}` };
      const storm = { ...shared, BENCH_PORT: String(await pickFixedPort()), BENCH_LOOP_DELAY: '1' };
      // The publisher and the first server are plain ssekit-redis in both variants: a client
      // deferred while connecting would keep the deferral's jittered retry as its reconnection
      // time, and come back out of step with the others. Only the server after the crash differs.
      const [publisher, first] = await Promise.all([start(shared, PLAIN), start(storm, PLAIN)]);
      const events = MAX_EVENTS + scale.missedEvents;
      await clients.open(first, '/events', n, { expect: events, reconnectMs: RETRY_MS });

      await first.pressure(true);
      const publishing = publisher.publish(
        { count: events, bytes: EVENT_BYTES, pace: { everyMs: INTERVAL_MS } },
        MAX_EVENTS * INTERVAL_MS + 60_000,
      );
      publishing.catch(() => {}); // awaited below; a failed run stops the publisher with the rest
      await sleep(LIVE_MS);
      const steady = await first.pressure();
      const beforeCrash = await clients.reconnectStatus(Infinity);
      await first.kill();
      const killedAt = nowMicros();
      await publisher.burst(scale.missedEvents);
      await sleep(DOWN_MS);

      const second = await start({ ...storm, ...admissionEnv(impl, scale) });
      const since = second.listeningAt;
      const back = await untilEveryoneIsBack(clients, publisher, since, n);
      const pressure = await second.pressure();

      await publisher.stopPublishing();
      const { published } = await publishing;
      await clients.expect(published);
      const totals = await clients.awaitReaders('await', 30_000);
      check(totals);
      const deferred = back.deferred - beforeCrash.deferred;
      const liveMs = (back.lastLiveAt - since) / 1000;
      // A token bucket of opensPerSecond, refilled at that rate, opens at most that many plus that
      // many a second: more opens than that with no deferral means admission never ran.
      const bucketAllows = scale.opensPerSecond * (1 + liveMs / 1000);
      if (ADMISSION.includes(impl) && deferred === 0 && n > bucketAllows) {
        throw new RunFailure(
          `${n} streams opened in ${liveMs.toFixed(0)} ms without one deferral, where opensPerSecond ${scale.opensPerSecond} allows ${Math.floor(bucketAllows)}: the group did not apply admission`,
        );
      }
      return {
        downMs: (since - killedAt) / 1000,
        liveMs,
        backMs: (back.lastCaughtUpAt - since) / 1000,
        loopDelayP99: pressure.loopDelayP99Ms,
        loopDelayMax: pressure.loopDelayMaxMs,
        loopDelayP99Steady: steady.loopDelayP99Ms,
        cpuMs: pressure.cpuMs,
        peakRss: pressure.maxRssBytes / 2 ** 20,
        deferred,
        attempts: back.attempts - beforeCrash.attempts,
        lost: totals.lost,
        repeated: totals.duplicates,
      };
    }),
  targets(results) {
    const ms = (value: number) => `${value.toFixed(1)} ms`;
    return [
      target(
        `J: ${LABELS[ADMITTED]}: event-loop delay p99 during the storm < ${TARGET_LOOP_DELAY_MS} ms`,
        results.median(ADMITTED, 'loopDelayP99'),
        ms,
        (value) => value < TARGET_LOOP_DELAY_MS,
      ),
      target(
        `J: ${LABELS[ADMITTED]}: every client back within ${TARGET_BACK_MS / 1000} s`,
        results.median(ADMITTED, 'backMs'),
        (value) => `${(value / 1000).toFixed(1)} s`,
        (value) => value < TARGET_BACK_MS,
      ),
    ];
  },
});
