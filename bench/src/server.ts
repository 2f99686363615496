/**
 * One server under test, in a process of its own: `server.ts <implementation>`, forked by the
 * orchestrator with `--expose-gc`. It listens on 127.0.0.1, port 0, sends `{ ready, port }`,
 * then obeys requests over IPC. Its CPU, memory and handles are read from inside, so that they
 * are the server's alone.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { makeData, nowMicros } from './payload.js';
import { limitLifetime, serve, type Request } from './rpc.js';
import { isImplementation, startServer } from './servers.js';

/** What the `publish` command takes: `count` events of `bytes` bytes of data, at `pace`. */
export interface PublishArgs {
  readonly count: number;
  readonly bytes: number;
  /**
   * How the events follow one another. `'burst'`: each as soon as the previous publish resolved,
   * which is a microtask when the publish is in memory, so every event lands in one turn of the
   * event loop (and a library that merges a turn's writes to a socket merges them all).
   * `'macrotask'`: one per turn, `await setImmediate()` between publishes, as events usually
   * arrive in an app. `{ everyMs }`: on a fixed schedule.
   */
  readonly pace: 'burst' | 'macrotask' | { readonly everyMs: number };
}

/** What the `publish` command answers: when the first publish began and the last ended (µs), and how many events it published. */
export interface Published {
  readonly t0: number;
  readonly t1: number;
  readonly published: number;
}

/**
 * What the `newest` command answers (scenario J): every event sent before `before` (µs) has a
 * seq of at most `seq`, and every event up to `seq` is published.
 */
export interface Newest {
  readonly seq: number;
  readonly before: number;
}

/** What the `pressure` command answers (scenario J). */
export interface ServerPressure {
  /** The event loop's delay: p99 and max of how late its 10 ms checks ran, since it listened or since the last reset. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  /** How many checks that is. */
  readonly loopDelaySamples: number;
  /** The process's peak resident set size so far (`process.resourceUsage().maxRSS`). */
  readonly maxRssBytes: number;
  /** CPU (user + system) over the same span as the delay. */
  readonly cpuMs: number;
}

/** The resolution of the event-loop delay histogram that `BENCH_LOOP_DELAY=1` turns on. */
const LOOP_DELAY_RESOLUTION_MS = 10;

/** What the `stats` command answers. */
export interface ServerStats {
  /** Streams in the broadcast. */
  readonly streams: number;
  /** Whether scenario B's stream is open. */
  readonly single: boolean;
  /** CPU (user + system) since the last publish, single-stream run or `mark-cpu` began (or the process did). */
  readonly cpuMicros: number;
  readonly memory: NodeJS.MemoryUsage;
  /** Live handles and requests by type. */
  readonly handles: Record<string, number>;
}

const implementation = process.argv[2] ?? '';
if (!isImplementation(implementation)) {
  console.error(`server: unknown implementation ${JSON.stringify(implementation)}`);
  process.exit(2);
}
limitLifetime(15 * 60_000);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('server: run with --expose-gc');

// Scenario J: on from the process's start, so that no part of a storm escapes it, and reset when
// the server listens, since nothing before that is the storm's doing.
const loopDelay = process.env.BENCH_LOOP_DELAY === '1' ? monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS }) : undefined;
loopDelay?.enable();

const server = await startServer(implementation);
const listeningAt = nowMicros();
loopDelay?.reset();
/** CPU when the server listened, or at the last `pressure` reset. */
let pressureCpuMark = process.cpuUsage();

/** CPU at the start of the last publish or single-stream run. */
let cpuMark = process.cpuUsage();
/** CPU at the start of the last `publish-one`, for `cpu-since-publish`. */
let publishOneMark = process.cpuUsage();
let sampler: NodeJS.Timeout | undefined;
let profiler: Session | undefined;
let peak = process.memoryUsage();
/** Aborted by `stop-publishing`: the publish loop ends after the event in flight, without waiting out its pace. */
let publishing = new AbortController();
/** Events still to publish at once, between two paced ones: asked for by `burst`. */
let burstLeft = 0;
/** Aborted by `burst`, to cut short the wait for the next paced event. */
let pacing = new AbortController();
/** The last event whose publish resolved, and the send time of the one in flight. */
let publishedSeq = 0;
let inFlightSentAt: number | undefined;

/** Full collections until the heap stops shrinking, with turns between for weak callbacks. */
async function collect(): Promise<void> {
  let last = Infinity;
  for (let i = 0; i < 8; i++) {
    gc!();
    await new Promise((resolve) => setImmediate(resolve));
    const used = process.memoryUsage().heapUsed;
    if (i >= 2 && used >= last - 1024) break;
    last = used;
  }
}

/** CPU (user + system) since `mark`, in microseconds. */
function cpuMicrosSince(mark: NodeJS.CpuUsage): number {
  const cpu = process.cpuUsage(mark);
  return cpu.user + cpu.system;
}

/** Live handles and requests by type, as Node reports them. */
function handles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

serve(async (request) => {
  switch (request.cmd) {
    case 'stats': {
      if (request.gc) await collect();
      const cpu = process.cpuUsage(cpuMark);
      return {
        streams: server.streams(),
        single: server.hasSingle(),
        cpuMicros: cpu.user + cpu.system,
        memory: process.memoryUsage(),
        handles: handles(),
      } satisfies ServerStats;
    }
    case 'publish': {
      // The same loop for every implementation, so that only the publish differs.
      const { count, bytes, pace } = request as Request & PublishArgs;
      cpuMark = process.cpuUsage();
      const stop = (publishing = new AbortController()).signal;
      publishedSeq = 0;
      const t0 = nowMicros();
      // When the next paced event is due: a burst's events go out between two, and move it not.
      let dueAt = performance.now();
      let seq = 0;
      burstLeft = 0;
      while (seq < count && !stop.aborted) {
        const bursting = burstLeft > 0;
        if (bursting) burstLeft--;
        const data = makeData(++seq, bytes);
        inFlightSentAt = data.t;
        await server.publish(data);
        publishedSeq = seq;
        inFlightSentAt = undefined;
        if (seq === count || pace === 'burst') continue;
        if (pace === 'macrotask') await nextTurn();
        else {
          if (!bursting) dueAt += pace.everyMs;
          if (burstLeft > 0) continue;
          const wait = dueAt - performance.now();
          pacing = new AbortController();
          if (wait > 0) await sleep(wait, undefined, { signal: AbortSignal.any([stop, pacing.signal]) }).catch(() => {});
        }
      }
      return { t0, t1: nowMicros(), published: seq } satisfies Published;
    }
    case 'publish-one': {
      // Scenarios I and K: one event, timed alone, once the previous reached every client.
      // Its CPU is read by `cpu-since-publish`, once every client had it.
      const data = makeData(request.seq as number, request.bytes as number);
      publishOneMark = process.cpuUsage();
      await server.publish(data);
      return {};
    }
    case 'cpu-since-publish':
      // Scenario I: a publish's CPU with its aftermath (write callbacks, the kernel's ACKs), over
      // the same kind of window as a heartbeat round's.
      return { cpuMicros: cpuMicrosSince(publishOneMark) };
    case 'idle-cpu': {
      // Scenario I: CPU over a quiet window, where a server spends it on heartbeats alone.
      const mark = process.cpuUsage();
      await sleep(request.ms as number);
      return { cpuMicros: cpuMicrosSince(mark) };
    }
    case 'burst':
      // Scenario J: events that pile up while its server is down, for every client to replay.
      burstLeft += request.count as number;
      pacing.abort();
      return {};
    case 'stop-publishing':
      // Scenario J publishes until every client is back; the `publish` call answers with the count.
      publishing.abort();
      return {};
    case 'newest':
      return { seq: publishedSeq, before: inFlightSentAt ?? nowMicros() } satisfies Newest;
    case 'pressure': {
      if (!loopDelay) throw new Error('server: started without BENCH_LOOP_DELAY=1');
      // The histogram holds each check's whole interval: the delay is what exceeds the resolution.
      const delayMs = (nanoseconds: number) => Math.max(0, nanoseconds / 1e6 - LOOP_DELAY_RESOLUTION_MS);
      const pressure: ServerPressure = {
        loopDelayP99Ms: delayMs(loopDelay.percentile(99)),
        loopDelayMaxMs: delayMs(loopDelay.max),
        loopDelaySamples: loopDelay.count,
        maxRssBytes: process.resourceUsage().maxRSS * 1024,
        cpuMs: cpuMicrosSince(pressureCpuMark) / 1000,
      };
      if (request.reset) {
        loopDelay.reset();
        pressureCpuMark = process.cpuUsage();
      }
      return pressure;
    }
    case 'single': {
      if (!server.hasSingle()) throw new Error('no stream on /single');
      const count = request.count as number;
      const bytes = request.bytes as number;
      cpuMark = process.cpuUsage();
      const t0 = nowMicros();
      for (let seq = 1; seq <= count; seq++) await server.sendSingle(makeData(seq, bytes));
      return { t0, t1: nowMicros() };
    }
    case 'sample-rss': {
      // Peak RSS while a scenario runs, sampled: buffers held for slow clients stay for far
      // longer than a sampling period. The heap at that moment tells whose memory it is.
      clearInterval(sampler);
      peak = process.memoryUsage();
      sampler = setInterval(() => {
        const rss = process.memoryUsage.rss();
        if (rss > peak.rss) peak = process.memoryUsage();
      }, request.everyMs as number);
      return {};
    }
    case 'stop-sampling': {
      clearInterval(sampler);
      sampler = undefined;
      const now = process.memoryUsage();
      if (now.rss > peak.rss) peak = now;
      return { peak };
    }
    case 'profile-start': {
      // The measured phase only, unlike --cpu-prof, which would also take in the connections.
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: request.intervalMicros as number });
      await profiler.post('Profiler.start');
      return {};
    }
    case 'profile-stop': {
      if (!profiler) throw new Error('no profile running');
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(request.file as string, JSON.stringify(profile));
      return {};
    }
    case 'shutdown': {
      if (!server.shutdown) throw new Error(`${implementation} has no shutdown`);
      const start = performance.now();
      await server.shutdown();
      return { ms: performance.now() - start };
    }
    case 'mark-cpu':
      // Where a server that does not publish (a second instance) starts counting its CPU.
      cpuMark = process.cpuUsage();
      return {};
    case 'exit':
      await server.dispose?.();
      // After the reply is out: the orchestrator waits for the exit itself.
      setImmediate(() => process.exit(0));
      return {};
    default:
      throw new Error(`unknown command ${request.cmd}`);
  }
});

process.send!({ ready: true, port: server.port, pid: process.pid, listeningAt });
