/**
 * The orchestrator: `pnpm bench [--quick] [--reps N] [--scenarios A,B] [--impls raw,ssekit-node]
 * [--node 24|PATH] [--cpu-prof] [--out FILE]`.
 *
 * Every scenario runs over every implementation in interleaved order: repetition 1 runs A on
 * each implementation (in an order rotated per repetition), then B, and so on; repetition 2
 * does the same again. Each run gets a fresh server process; two long-lived client processes
 * make the load. All traffic stays on 127.0.0.1, and every loop is bounded in count and time.
 *
 * A run in which any reader lost, duplicated or misordered an event is a failed run: it gives
 * no figure, it is printed, and the process exits non-zero.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientReport } from './client.js';
import { EVENT_BYTES } from './payload.js';
import { Peer } from './rpc.js';
import { FRAMEWORK_REFERENCES, IMPLEMENTATIONS, isImplementation, LABELS, PEERS, REDIS_SCENARIO_ONLY, SHUTDOWN_CAPABLE, type Implementation } from './servers.js';
import { median, percentile, summarize, type Summary } from './stats.js';
import { resolveNode } from '../../scripts/node-versions.mjs';

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSX = import.meta.resolve('tsx');

// ---------------------------------------------------------------------------------------------
// What the issue fixes. Quick mode keeps every event count and size, and may only lower the
// number of connections (it checks correctness, never timings).

/** A: events per fan-out, and their data size. */
const FANOUT_EVENTS = 500;
/**
 * H: two instances, 500 clients each; one event every 20 ms, a rate this machine sustains with
 * room to spare, so that latency is not queueing.
 */
const REDIS_CLIENTS_PER_INSTANCE = 500;
const REDIS_EVENTS = 300;
const REDIS_INTERVAL_MS = 20;
let redisRuns = 0;
/** B: events on the single stream. */
const SINGLE_EVENTS = 200_000;
/** D: one event every 10 ms for 3 s. */
const LATENCY_INTERVAL_MS = 10;
const LATENCY_EVENTS = 300;
/**
 * E: the issue fixes no event for E. A stalled client costs the server memory only once the
 * kernel's buffers for its socket are full, and on loopback (64 KiB segments, send buffers
 * autotuned up to 4 MiB) that is about 3.8 MB per socket: with 100-byte events it would take
 * some 40,000 events to each of 1000 clients. So E sends 320 events of 16 KiB (5 MiB per
 * client), paced so that the readers together get about 250 MB/s (one event every 62 ms to 950
 * readers), near what this 2-core machine sustains through Node's HTTP client. Quick mode keeps
 * the aggregate rate with its fewer readers, so its interval is shorter.
 */
const SLOW_EVENT_BYTES = 16 * 1024;
const SLOW_EVENTS = 320;
const SLOW_RATE_BYTES_PER_SEC = 250e6;
const slowIntervalMs = (scale: Scale) => Math.max(1, Math.round((((scale.slowClients - scale.slowStalled) * SLOW_EVENT_BYTES) / SLOW_RATE_BYTES_PER_SEC) * 1000));
/** ssekit's default, which every ssekit server here uses. */
const MAX_BUFFERED_BYTES = 256 * 1024;

interface Scale {
  fanoutClients: number;
  idleConnections: number;
  latencyClients: number;
  slowClients: number;
  slowStalled: number;
  churnCycles: number;
  shutdownStreams: number;
  /** Whether E also runs its control, without stalled clients: a figure, not a correctness check. */
  slowControl: boolean;
}

const FULL: Scale = {
  fanoutClients: 1000,
  idleConnections: 5000,
  latencyClients: 200,
  slowClients: 1000,
  slowStalled: 50,
  churnCycles: 20_000,
  shutdownStreams: 1000,
  slowControl: true,
};

const QUICK: Scale = {
  fanoutClients: 200,
  idleConnections: 1000,
  latencyClients: 200,
  slowClients: 200,
  slowStalled: 10,
  churnCycles: 2000,
  shutdownStreams: 200,
  slowControl: false,
};

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  reps: number;
  scenarios: ScenarioId[];
  impls: Implementation[];
  cpuProf: boolean;
  out: string | undefined;
  /** The node binary the servers run on; the load clients always run on this process's Node. */
  serverNode: string;
  /** Its version, as it reports it. */
  serverNodeVersion: string;
}

const SCENARIO_IDS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H'] as const;
type ScenarioId = (typeof SCENARIO_IDS)[number];

function parseOptions(argv: readonly string[]): Options {
  const args = argv.filter((arg) => arg !== '--');
  const value = (name: string): string | undefined => {
    const at = args.findIndex((arg) => arg === name || arg.startsWith(name + '='));
    if (at === -1) return undefined;
    const arg = args[at]!;
    return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[at + 1];
  };
  const known = ['--quick', '--reps', '--scenarios', '--impls', '--node', '--cpu-prof', '--out'];
  for (const [index, arg] of args.entries()) {
    if (!arg.startsWith('--')) {
      if (index > 0 && ['--reps', '--scenarios', '--impls', '--node', '--out'].includes(args[index - 1]!)) continue;
      fail(`unexpected argument ${arg}`);
    }
    if (!known.includes(arg.split('=')[0]!)) fail(`unknown option ${arg}; known: ${known.join(' ')}`);
  }
  const quick = args.includes('--quick');
  const reps = Number(value('--reps') ?? (quick ? 1 : 3));
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) fail('--reps takes an integer from 1 to 20');
  const scenarios = (value('--scenarios') ?? SCENARIO_IDS.join(',')).toUpperCase().split(',') as ScenarioId[];
  for (const id of scenarios) if (!SCENARIO_IDS.includes(id)) fail(`unknown scenario ${id}`);
  const defaultImpls = quick ? IMPLEMENTATIONS.filter((impl) => impl === 'raw' || impl.startsWith('ssekit-')) : IMPLEMENTATIONS;
  const impls = (value('--impls')?.split(',') ?? [...defaultImpls]) as Implementation[];
  for (const impl of impls) if (!isImplementation(impl)) fail(`unknown implementation ${impl}; known: ${IMPLEMENTATIONS.join(', ')}`);
  let serverNode = process.execPath;
  let serverNodeVersion = process.version;
  const nodeSpec = value('--node');
  if (nodeSpec !== undefined) {
    try {
      serverNode = resolveNode(nodeSpec);
      serverNodeVersion = execFileSync(serverNode, ['--version'], { encoding: 'utf8' }).trim();
    } catch (error) {
      fail(`--node ${nodeSpec}: ${(error as Error).message}`);
    }
  }
  // Only a full run of everything on this process's Node replaces RESULTS.md by default; on
  // another Node it writes RESULTS-node<major>.md, which RESULTS.md then summarizes.
  const complete = !quick && value('--scenarios') === undefined && value('--impls') === undefined;
  const defaultOut = nodeSpec === undefined ? 'RESULTS.md' : `RESULTS-node${majorOf(serverNodeVersion)}.md`;
  const out = value('--out') ?? (complete ? path.join(BENCH_DIR, defaultOut) : undefined);
  return { quick, reps, scenarios, impls, cpuProf: args.includes('--cpu-prof'), out, serverNode, serverNodeVersion };
}

const majorOf = (version: string) => version.replace(/^v/, '').split('.')[0]!;

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Processes

const EXEC_ARGV = ['--import', TSX, '--expose-gc'];
const OPTIONS = parseOptions(process.argv.slice(2));

function forkChild(file: string, args: string[], execPath = process.execPath): ChildProcess {
  return fork(path.join(BENCH_DIR, 'src', file), args, {
    cwd: BENCH_DIR,
    execPath,
    execArgv: EXEC_ARGV,
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
}

async function waitReady(child: ChildProcess, name: string, timeoutMs = 30_000): Promise<{ port?: number }> {
  const ready = new Promise<{ port?: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready within ${timeoutMs} ms`)), timeoutMs);
    child.on('message', (message: { ready?: boolean; port?: number }) => {
      if (message.ready) {
        clearTimeout(timer);
        resolve(message);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (${signal ?? `code ${code}`})`));
    });
  });
  return ready;
}

async function stop(child: ChildProcess, peer: Peer | undefined): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  await peer?.call('exit', {}, 5_000).catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Keeps the tail of a child's stderr, to print when its run fails. */
function tailOf(child: ChildProcess, prefix: string, echo: boolean): () => string {
  let tail = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    if (echo) process.stderr.write(chunk.replace(/^(?=.)/gm, prefix));
    tail = (tail + chunk).slice(-4000);
  });
  return () => tail;
}

const clients: Peer[] = [];

async function startClients(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const child = forkChild('client.ts', []);
    tailOf(child, `[client ${i}] `, true);
    await waitReady(child, `client ${i}`);
    clients.push(new Peer(`client ${i}`, child));
  }
}

/** The shares of `count` over the client processes. */
function split(count: number): number[] {
  return clients.map((_, i) => Math.floor(count / clients.length) + (i < count % clients.length ? 1 : 0));
}

class RunFailure extends Error {}

interface Server {
  readonly peer: Peer;
  readonly url: string;
  stats(gc?: boolean): Promise<ServerStats>;
}

interface ServerStats {
  streams: number;
  single: boolean;
  cpuMicros: number;
  memory: NodeJS.MemoryUsage;
  handles: Record<string, number>;
}

/** With --cpu-prof: where the current run's profile of its measured phase goes. */
let profileFile: string | undefined;

/** Runs the measured phase of a scenario, under the CPU profiler when asked. */
async function measured<T>(server: Server, phase: () => Promise<T>): Promise<T> {
  if (!profileFile) return phase();
  await server.peer.call('profile-start', { intervalMicros: 100 });
  const result = await phase();
  await server.peer.call('profile-stop', { file: profileFile });
  return result;
}

function withServer<T>(impl: Implementation, run: (server: Server) => Promise<T>): Promise<T> {
  return withServers(impl, 1, ([server]) => run(server!));
}

/** Runs `count` server processes of `impl`, each on its own port, for the length of `run`. */
async function withServers<T>(impl: Implementation, count: number, run: (servers: Server[]) => Promise<T>): Promise<T> {
  const children = Array.from({ length: count }, () => forkChild('server.ts', [impl], OPTIONS.serverNode));
  const stderrs = children.map((child) => tailOf(child, `[${impl}] `, false));
  const peers = children.map((child) => new Peer(`server ${impl}`, child));
  try {
    const servers = await Promise.all(
      children.map(async (child, i): Promise<Server> => {
        const { port } = await waitReady(child, `server ${impl}`);
        const peer = peers[i]!;
        return { peer, url: `http://127.0.0.1:${port}`, stats: (gc = false) => peer.call<ServerStats>('stats', { gc }, 60_000) };
      }),
    );
    return await run(servers);
  } catch (error) {
    const tail = stderrs.map((stderr) => stderr().trim()).filter(Boolean).join('\n');
    if (tail) (error as Error).message += `\n  server stderr:\n${tail.replace(/^/gm, '    ')}`;
    throw error;
  } finally {
    await Promise.all(clients.map((client) => client.call('close', {}, 30_000).catch(() => {})));
    await Promise.all(children.map((child, i) => stop(child, peers[i]!)));
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new RunFailure(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Opens `count` streams over the client processes; `slow` of them stall. */
async function openStreams(server: Server, route: string, count: number, options: { slow?: number; expect?: number; latency?: boolean } = {}): Promise<void> {
  const slow = split(options.slow ?? 0);
  const results = await Promise.all(
    split(count).map((share, i) =>
      share === 0
        ? { opened: 0, failures: {} }
        : clients[i]!.call<{ opened: number; failures: Record<string, number> }>(
            'open',
            { url: server.url + route, count: share, slow: slow[i], expect: options.expect ?? 0, latency: options.latency ?? false, concurrency: 50 },
            120_000,
          ),
    ),
  );
  const opened = results.reduce((sum, result) => sum + result.opened, 0);
  if (opened !== count) {
    const failures = results.map((result) => JSON.stringify(result.failures)).join(' ');
    throw new RunFailure(`opened ${opened} of ${count} streams: ${failures}`);
  }
  if (route === '/events') {
    await waitFor(`${count} streams on the server`, async () => (await server.stats()).streams === count, 30_000);
  }
}

/** Every client's report, merged. */
interface Merged {
  readers: number;
  slow: number;
  events: number;
  lost: number;
  duplicates: number;
  misordered: number;
  unexpected: number;
  droppedReaders: number;
  lastCompleteAt: number;
  ended: number;
  farewells: number;
  retries: number;
  retryMin: number;
  retryMax: number;
  errors: Record<string, number>;
  timedOut: boolean;
  latencies: Float64Array | undefined;
}

function merge(reports: ClientReport[]): Merged {
  const merged: Merged = {
    readers: 0,
    slow: 0,
    events: 0,
    lost: 0,
    duplicates: 0,
    misordered: 0,
    unexpected: 0,
    droppedReaders: 0,
    lastCompleteAt: 0,
    ended: 0,
    farewells: 0,
    retries: 0,
    retryMin: Infinity,
    retryMax: -Infinity,
    errors: {},
    timedOut: false,
    latencies: undefined,
  };
  const latencies: Float64Array[] = [];
  for (const report of reports) {
    merged.readers += report.readers;
    merged.slow += report.slow;
    merged.events += report.readers * report.expected;
    merged.lost += report.lost;
    merged.duplicates += report.duplicates;
    merged.misordered += report.misordered;
    merged.unexpected += report.unexpected;
    merged.droppedReaders += report.droppedReaders;
    merged.lastCompleteAt = Math.max(merged.lastCompleteAt, report.lastCompleteAt);
    merged.ended += report.ended;
    merged.farewells += report.farewells;
    merged.retries += report.retries;
    if (report.retryMin !== undefined) merged.retryMin = Math.min(merged.retryMin, report.retryMin);
    if (report.retryMax !== undefined) merged.retryMax = Math.max(merged.retryMax, report.retryMax);
    for (const [error, count] of Object.entries(report.errors)) merged.errors[error] = (merged.errors[error] ?? 0) + count;
    merged.timedOut ||= report.timedOut;
    if (report.latencies) latencies.push(report.latencies);
  }
  if (latencies.length) {
    const all = new Float64Array(latencies.reduce((sum, part) => sum + part.length, 0));
    let offset = 0;
    for (const part of latencies) {
      all.set(part, offset);
      offset += part.length;
    }
    merged.latencies = all.sort();
  }
  return merged;
}

/** Asks every client that holds streams to wait for every event (or every end). */
function awaitClients(command: 'await' | 'await-end', timeoutMs: number): Promise<Merged> {
  return Promise.all(clients.map((client) => client.call<ClientReport>(command, { timeoutMs }, timeoutMs + 30_000))).then(merge);
}

// ---------------------------------------------------------------------------------------------
// Correctness, summed over every run of an implementation

interface Tally {
  runs: number;
  failed: number;
  events: number;
  lost: number;
  duplicates: number;
  misordered: number;
  unexpected: number;
}

const tallies = new Map<Implementation, Tally>();
const failures: string[] = [];
/** How many of the failed runs were the peers'. */
let peerFailures = 0;

function tally(impl: Implementation): Tally {
  let entry = tallies.get(impl);
  if (!entry) tallies.set(impl, (entry = { runs: 0, failed: 0, events: 0, lost: 0, duplicates: 0, misordered: 0, unexpected: 0 }));
  return entry;
}

/** Records what the readers saw, and fails the run on any loss, duplicate or misordering. */
function check(impl: Implementation, merged: Merged): void {
  const entry = tally(impl);
  entry.events += merged.events;
  entry.lost += merged.lost;
  entry.duplicates += merged.duplicates;
  entry.misordered += merged.misordered;
  entry.unexpected += merged.unexpected;
  const problems: string[] = [];
  if (merged.lost) problems.push(`${merged.lost} lost`);
  if (merged.duplicates) problems.push(`${merged.duplicates} duplicated`);
  if (merged.misordered) problems.push(`${merged.misordered} misordered`);
  if (merged.unexpected) problems.push(`${merged.unexpected} unexpected`);
  if (merged.droppedReaders) problems.push(`${merged.droppedReaders} readers dropped by the server`);
  if (merged.timedOut) problems.push('timed out');
  if (Object.keys(merged.errors).length) problems.push(`client errors ${JSON.stringify(merged.errors)}`);
  if (problems.length) throw new RunFailure(`${problems.join(', ')} (of ${merged.events} events to ${merged.readers} readers)`);
}

// ---------------------------------------------------------------------------------------------
// Scenarios

type Metrics = Record<string, number>;

interface MetricSpec {
  key: string;
  label: string;
  unit: string;
  digits: number;
  /** Shown as a multiple of raw node:http. */
  ratio?: boolean;
  /** In the headline table. */
  headline?: string;
}

interface Scenario {
  id: ScenarioId;
  title: string;
  describe(scale: Scale): string;
  metrics: MetricSpec[];
  applies(impl: Implementation): boolean;
  run(impl: Implementation, scale: Scale): Promise<Metrics>;
  /** What its ratios divide by. @default 'raw' */
  baseline?: Implementation;
}

const MiB = 1024 * 1024;
/** Every server on its own: all but the Redis instances of H. */
const all = (impl: Implementation) => !REDIS_SCENARIO_ONLY.includes(impl);
/** Every server but the bare-framework references. */
const contestants = (impl: Implementation) => all(impl) && !FRAMEWORK_REFERENCES.includes(impl);

/** One run of E: `slowClients - slowStalled` readers, plus `stalled` clients that never read. */
function slowClientsRun(impl: Implementation, scale: Scale, stalled: number): Promise<Metrics> {
  return withServer(impl, async (server) => {
    const clientCount = scale.slowClients - scale.slowStalled + stalled;
    await openStreams(server, '/events', clientCount, { slow: stalled, expect: SLOW_EVENTS, latency: true });
    const before = await server.stats(true);
    await server.peer.call('sample-rss', { everyMs: 5 });
    const { published, merged } = await measured(server, async () => {
      const readers = awaitClients('await', 120_000);
      const published = await server.peer.call<{ t0: number }>('publish', { count: SLOW_EVENTS, bytes: SLOW_EVENT_BYTES, intervalMs: slowIntervalMs(scale) }, 120_000);
      return { published, merged: await readers };
    });
    const { peak } = await server.peer.call<{ peak: NodeJS.MemoryUsage }>('stop-sampling');
    if (process.env.BENCH_DEBUG) console.log('    peak', JSON.stringify(peak), 'before', JSON.stringify(before.memory));
    const after = await server.stats();
    check(impl, merged);
    const heap = (memory: NodeJS.MemoryUsage) => memory.heapUsed + memory.external;
    return {
      rssGrowth: (peak.rss - before.memory.rss) / 1e6,
      heapGrowth: (heap(peak) - heap(before.memory)) / 1e6,
      readersP99: percentile(merged.latencies!, 99) / 1000,
      readersWallMs: (merged.lastCompleteAt - published.t0) / 1000,
      slowDropped: clientCount - after.streams,
    };
  });
}

const SCENARIOS: Scenario[] = [
  {
    id: 'A',
    title: 'Fan-out',
    describe: (s) => `${s.fanoutClients} clients; ${FANOUT_EVENTS} events of ${EVENT_BYTES} bytes of data, each published as soon as the previous publish returned. Server CPU (user + sys, from the server process) from the first publish until every client had every event.`,
    metrics: [
      { key: 'cpuPerEvent', label: 'server CPU per delivered event', unit: 'µs', digits: 2, ratio: true, headline: 'fan-out server CPU per delivered event' },
      { key: 'wallMs', label: 'wall time until every client had every event', unit: 'ms', digits: 0, ratio: true },
      { key: 'lost', label: 'lost events', unit: '', digits: 0 },
    ],
    applies: all,
    run: (impl, scale) =>
      withServer(impl, async (server) => {
        await openStreams(server, '/events', scale.fanoutClients, { expect: FANOUT_EVENTS });
        await server.stats(true);
        const { published, merged, stats } = await measured(server, async () => {
          const readers = awaitClients('await', 120_000);
          const published = await server.peer.call<{ t0: number }>('publish', { count: FANOUT_EVENTS, bytes: EVENT_BYTES, intervalMs: 0 }, 120_000);
          const merged = await readers;
          return { published, merged, stats: await server.stats() };
        });
        check(impl, merged);
        return {
          cpuPerEvent: stats.cpuMicros / merged.events,
          wallMs: (merged.lastCompleteAt - published.t0) / 1000,
          lost: merged.lost,
        };
      }),
  },
  {
    id: 'B',
    title: 'Single stream',
    describe: () => `One client; ${SINGLE_EVENTS.toLocaleString('en')} events of ${EVENT_BYTES} bytes of data, each sent when the previous send let go (after a drain when the socket was full). better-sse has no backpressure: it pushes every event at once and Node buffers what the socket cannot take.`,
    metrics: [
      { key: 'cpuPerEvent', label: 'server CPU per event', unit: 'µs', digits: 2, ratio: true, headline: 'single stream CPU per event' },
      { key: 'eventsPerSec', label: 'events per second', unit: '/s', digits: 0, ratio: true },
    ],
    applies: contestants,
    run: (impl) =>
      withServer(impl, async (server) => {
        await clients[0]!.call('open', { url: server.url + '/single', count: 1, slow: 0, expect: SINGLE_EVENTS, latency: false, concurrency: 1 }, 30_000);
        await waitFor('the single stream on the server', async () => (await server.stats()).single, 30_000);
        await server.stats(true);
        const { sent, merged, stats } = await measured(server, async () => {
          const reader = clients[0]!.call<ClientReport>('await', { timeoutMs: 180_000 }, 210_000);
          const sent = await server.peer.call<{ t0: number }>('single', { count: SINGLE_EVENTS, bytes: EVENT_BYTES }, 180_000);
          const merged = merge([await reader]);
          return { sent, merged, stats: await server.stats() };
        });
        check(impl, merged);
        return {
          cpuPerEvent: stats.cpuMicros / SINGLE_EVENTS,
          eventsPerSec: SINGLE_EVENTS / ((merged.lastCompleteAt - sent.t0) / 1e6),
        };
      }),
  },
  {
    id: 'C',
    title: 'Idle memory',
    describe: (s) => `${s.idleConnections} idle connections on the broadcast, after 100 connections opened and closed to warm up. Heap used and RSS after forced full GCs, before and after, divided by the connections.`,
    metrics: [
      { key: 'heapPerConnection', label: 'heap per idle connection', unit: 'KB', digits: 2, ratio: true, headline: 'heap per idle connection' },
      { key: 'rssPerConnection', label: 'RSS per idle connection', unit: 'KB', digits: 2, ratio: true },
    ],
    applies: all,
    run: (impl, scale) =>
      withServer(impl, async (server) => {
        await openStreams(server, '/events', 100);
        await Promise.all(clients.map((client) => client.call('close', {}, 30_000)));
        await waitFor('the warm-up streams to close', async () => (await server.stats()).streams === 0, 30_000);
        const before = await server.stats(true);
        await openStreams(server, '/events', scale.idleConnections);
        const after = await server.stats(true);
        const n = scale.idleConnections;
        return {
          heapPerConnection: (after.memory.heapUsed - before.memory.heapUsed) / n / 1000,
          rssPerConnection: (after.memory.rss - before.memory.rss) / n / 1000,
        };
      }),
  },
  {
    id: 'D',
    title: 'Latency',
    describe: (s) => `${s.latencyClients} clients; one event of ${EVENT_BYTES} bytes of data every ${LATENCY_INTERVAL_MS} ms for ${(LATENCY_EVENTS * LATENCY_INTERVAL_MS) / 1000} s. Delivery latency: receive time in the client minus the send time in the event, over every event of every client.`,
    metrics: [
      { key: 'p50', label: 'p50 latency', unit: 'ms', digits: 2 },
      { key: 'p99', label: 'p99 latency', unit: 'ms', digits: 2, headline: 'p99 latency' },
      { key: 'max', label: 'max latency', unit: 'ms', digits: 2 },
    ],
    applies: contestants,
    run: (impl, scale) =>
      withServer(impl, async (server) => {
        await openStreams(server, '/events', scale.latencyClients, { expect: LATENCY_EVENTS, latency: true });
        await server.stats(true);
        const merged = await measured(server, async () => {
          const readers = awaitClients('await', 60_000);
          await server.peer.call('publish', { count: LATENCY_EVENTS, bytes: EVENT_BYTES, intervalMs: LATENCY_INTERVAL_MS }, 60_000);
          return readers;
        });
        check(impl, merged);
        const latencies = merged.latencies!;
        return { p50: percentile(latencies, 50) / 1000, p99: percentile(latencies, 99) / 1000, max: latencies[latencies.length - 1]! / 1000 };
      }),
  },
  {
    id: 'E',
    title: 'Slow clients',
    describe: (s) => `${s.slowClients} clients, of which ${s.slowStalled} pause their response at once and never read again; ${SLOW_EVENTS} events of ${SLOW_EVENT_BYTES / 1024} KiB, one every ${slowIntervalMs(s)} ms (${((SLOW_EVENTS * SLOW_EVENT_BYTES) / MiB).toFixed(1)} MiB per client: past the ~3.8 MB that the kernel buffers for a stalled loopback socket; about ${(SLOW_RATE_BYTES_PER_SEC / 1e6).toFixed(0)} MB/s to the readers together). Peak server RSS, sampled every 5 ms, minus RSS after a forced GC before the first event (and the JS heap plus external memory at that peak). Each server also runs a control, in a process of its own: the same ${s.slowClients - s.slowStalled} readers and events with no stalled client. Its growth is the constant (V8 sizing its heap to the allocation rate, socket buffers); what the stalled clients cost is the difference, divided by ${s.slowStalled}. The readers' latency and completion time show whether they were slowed.`,
    metrics: [
      { key: 'rssGrowth', label: 'peak RSS growth', unit: 'MB', digits: 1, ratio: true },
      { key: 'controlRssGrowth', label: 'the same without stalled clients', unit: 'MB', digits: 1 },
      { key: 'rssGrowthPerSlow', label: 'peak RSS growth per stalled client', unit: 'KB', digits: 0 },
      { key: 'heapGrowth', label: 'heap + external growth at the peak', unit: 'MB', digits: 1 },
      { key: 'readersP99', label: 'readers p99 latency', unit: 'ms', digits: 2 },
      { key: 'readersWallMs', label: 'readers done after', unit: 'ms', digits: 0 },
      { key: 'slowDropped', label: 'slow clients cut off', unit: '', digits: 0 },
    ],
    applies: contestants,
    run: async (impl, scale) => {
      // The control: the same readers and events, no stalled client, in a server process of its
      // own. What a server's RSS grows by there (V8 sizing its heap to the allocation rate, the
      // sockets' buffers) is the constant; the difference is what the stalled clients cost.
      const stalled = await slowClientsRun(impl, scale, scale.slowStalled);
      if (!scale.slowControl) return stalled;
      const control = await slowClientsRun(impl, scale, 0);
      return {
        ...stalled,
        controlRssGrowth: control.rssGrowth!,
        rssGrowthPerSlow: ((stalled.rssGrowth! - control.rssGrowth!) * 1000) / scale.slowStalled,
      };
    },
  },
  {
    id: 'F',
    title: 'Churn',
    describe: (s) => `${s.churnCycles.toLocaleString('en')} connect-and-disconnect cycles (50 at a time, each on a new TCP connection, disconnecting once the head arrived), after 1,000 cycles to warm up. Heap used after forced GCs, and Node's active handles, before and after.`,
    metrics: [
      { key: 'heapGrowth', label: 'heap growth', unit: 'KB', digits: 0 },
      { key: 'handlesBefore', label: 'handles before', unit: '', digits: 0 },
      { key: 'handlesAfter', label: 'handles after', unit: '', digits: 0 },
      { key: 'streamsAfter', label: 'streams left', unit: '', digits: 0 },
    ],
    applies: contestants,
    run: (impl, scale) =>
      withServer(impl, async (server) => {
        const churn = async (cycles: number) => {
          const results = await Promise.all(
            split(cycles).map((share, i) =>
              clients[i]!.call<{ ok: number; failures: Record<string, number> }>('churn', { url: server.url + '/events', cycles: share, concurrency: 25, timeoutMs: 240_000 }, 300_000),
            ),
          );
          const ok = results.reduce((sum, result) => sum + result.ok, 0);
          if (ok !== cycles) throw new RunFailure(`churn: ${ok} of ${cycles} cycles got their stream: ${results.map((r) => JSON.stringify(r.failures)).join(' ')}`);
          // The server sees each disconnect a moment after the client made it.
          await waitFor('every churned stream to close', async () => (await server.stats()).streams === 0, 30_000);
        };
        await churn(1000);
        const before = await server.stats(true);
        const total = (handles: Record<string, number>) => Object.values(handles).reduce((sum, count) => sum + count, 0);
        await churn(scale.churnCycles);
        // Closed sockets release their handles over the next turns of the event loop.
        let after = await server.stats(true);
        const deadline = Date.now() + 5_000;
        while (total(after.handles) > total(before.handles) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          after = await server.stats(true);
        }
        if (total(after.handles) !== total(before.handles)) {
          console.log(`    handles before ${JSON.stringify(before.handles)}, after ${JSON.stringify(after.handles)}`);
        }
        return {
          heapGrowth: (after.memory.heapUsed - before.memory.heapUsed) / 1000,
          handlesBefore: total(before.handles),
          handlesAfter: total(after.handles),
          streamsAfter: after.streams,
        };
      }),
  },
  {
    id: 'G',
    title: 'Shutdown',
    describe: (s) => `${s.shutdownStreams} open streams; the shutdown call (node:http: the stream group's \`shutdown()\`; Express and Koa: the middleware's \`.sseStreams.shutdown()\`; Fastify: \`app.close()\` with the plugin's \`shutdown\` option), with a final \`bye\` event, retryMs 1000 and jitterMs 1000, then the HTTP server's \`close()\`. Time from the call until \`close()\` completed; every client must see its stream end cleanly with the final event and a retry from 1000 to 2000 ms. Peers have no such call: not run.`,
    metrics: [{ key: 'shutdownMs', label: 'shutdown until server closed', unit: 'ms', digits: 1 }],
    applies: (impl) => SHUTDOWN_CAPABLE.includes(impl),
    run: (impl, scale) =>
      withServer(impl, async (server) => {
        await openStreams(server, '/events', scale.shutdownStreams);
        const ends = awaitClients('await-end', 60_000);
        const { ms } = await server.peer.call<{ ms: number }>('shutdown', {}, 60_000);
        const merged = await ends;
        const n = scale.shutdownStreams;
        const problems: string[] = [];
        if (merged.ended !== n) problems.push(`${n - merged.ended} streams did not end cleanly`);
        if (merged.farewells !== n) problems.push(`${n - merged.farewells} clients missed the final event`);
        if (merged.retries !== n || merged.retryMin < 1000 || merged.retryMax > 2000) {
          problems.push(`retry: ${merged.retries} of ${n} clients got one, from ${merged.retryMin} to ${merged.retryMax} ms`);
        }
        if (merged.timedOut) problems.push('timed out');
        if (problems.length) throw new RunFailure(problems.join(', '));
        return { shutdownMs: ms };
      }),
  },
  {
    id: 'H',
    title: 'Fan-out through Redis',
    describe: () => `Two server instances (processes) of ssekit on node:http, ${REDIS_CLIENTS_PER_INSTANCE} clients on each; ${REDIS_EVENTS} events of ${EVENT_BYTES} bytes of data, one every ${REDIS_INTERVAL_MS} ms. With the Redis backplane (\`@ssekit/redis\` on ioredis), the first instance publishes and both deliver what they read from the Redis stream. With the in-memory channel, the baseline here, each instance publishes the same events to its own channel. Server CPU per delivered event on each instance, from the first publish until every client had every event; delivery latency from the publish call to the client.`,
    metrics: [
      { key: 'cpuPublisher', label: 'CPU per delivered event, publishing instance', unit: 'µs', digits: 2, ratio: true },
      { key: 'cpuOther', label: 'CPU per delivered event, other instance', unit: 'µs', digits: 2, ratio: true },
      { key: 'p50', label: 'p50 latency', unit: 'ms', digits: 2, ratio: true },
      { key: 'p99', label: 'p99 latency', unit: 'ms', digits: 2, ratio: true },
      { key: 'lost', label: 'lost events', unit: '', digits: 0 },
    ],
    applies: (impl) => impl === 'ssekit-node' || REDIS_SCENARIO_ONLY.includes(impl),
    baseline: 'ssekit-node',
    run: (impl) => {
      // A key prefix of its own per run: the two instances share it, and no other run sees it.
      process.env.BENCH_REDIS_PREFIX = `ssekit-bench:${process.pid}:${++redisRuns}:`;
      return withServers(impl, 2, async (servers) => {
        await Promise.all(
          servers.map((server, i) =>
            clients[i]!.call('open', { url: server.url + '/events', count: REDIS_CLIENTS_PER_INSTANCE, slow: 0, expect: REDIS_EVENTS, latency: true, concurrency: 50 }, 120_000),
          ),
        );
        for (const server of servers) {
          await waitFor(`${REDIS_CLIENTS_PER_INSTANCE} streams on each instance`, async () => (await server.stats()).streams === REDIS_CLIENTS_PER_INSTANCE, 30_000);
          await server.stats(true);
          await server.peer.call('mark-cpu');
        }
        const publish = { count: REDIS_EVENTS, bytes: EVENT_BYTES, intervalMs: REDIS_INTERVAL_MS };
        const publishers = impl === 'ssekit-redis' ? servers.slice(0, 1) : servers;
        const merged = await measured(servers[0]!, async () => {
          const readers = awaitClients('await', 120_000);
          await Promise.all(publishers.map((server) => server.peer.call('publish', publish, 120_000)));
          return readers;
        });
        const [first, second] = await Promise.all(servers.map((server) => server.stats()));
        check(impl, merged);
        const delivered = REDIS_CLIENTS_PER_INSTANCE * REDIS_EVENTS;
        const latencies = merged.latencies!;
        return {
          cpuPublisher: first!.cpuMicros / delivered,
          cpuOther: second!.cpuMicros / delivered,
          p50: percentile(latencies, 50) / 1000,
          p99: percentile(latencies, 99) / 1000,
          lost: merged.lost,
        };
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Running

type Results = Map<ScenarioId, Map<Implementation, Metrics[]>>;

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

function format(value: number, digits: number): string {
  if (!Number.isFinite(value)) return '–';
  return value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

async function main(): Promise<void> {
  const options = OPTIONS;
  const scale = options.quick ? QUICK : FULL;
  const scenarios = SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.id));
  const started = Date.now();
  loadAtStart = os.loadavg();
  // A bound on the whole run, whatever hangs.
  const limitMinutes = options.quick ? 10 : 90;
  setTimeout(() => {
    console.error(`bench: still running after ${limitMinutes} minutes; giving up`);
    process.exit(1);
  }, limitMinutes * 60_000).unref();

  console.log(`ssekit bench: ${options.quick ? 'QUICK (correctness smoke test: no figure from it is a result)' : 'full'}; ${options.reps} repetition(s); scenarios ${options.scenarios.join('')}; ${options.impls.join(', ')}; servers on Node ${options.serverNodeVersion}`);
  if (options.quick) {
    const reduced = (Object.keys(FULL) as (keyof Scale)[]).filter((key) => FULL[key] !== QUICK[key]).map((key) => `${key} ${FULL[key]} -> ${QUICK[key]}`);
    console.log(`QUICK MODE: connection counts reduced (${reduced.join(', ')}); event counts and sizes as in the full run; peers skipped unless --impls names them.`);
  }
  if (options.cpuProf) mkdirSync(path.join(BENCH_DIR, 'profiles'), { recursive: true });

  await startClients(2);
  const results: Results = new Map();
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const scenario of scenarios) {
      const order = rotate(options.impls, rep - 1).filter((impl) => scenario.applies(impl));
      for (const impl of order) {
        const runStart = Date.now();
        const label = `[rep ${rep}/${options.reps}] ${scenario.id} ${scenario.title} · ${LABELS[impl]}`;
        profileFile = options.cpuProf ? path.join(BENCH_DIR, 'profiles', `${scenario.id}-${impl}-rep${rep}.cpuprofile`) : undefined;
        const entry = tally(impl);
        entry.runs++;
        try {
          const metrics = await scenario.run(impl, scale);
          let byImpl = results.get(scenario.id);
          if (!byImpl) results.set(scenario.id, (byImpl = new Map()));
          byImpl.set(impl, [...(byImpl.get(impl) ?? []), metrics]);
          const shown = scenario.metrics.map((metric) => `${metric.label} ${format(metrics[metric.key]!, metric.digits)}${metric.unit ? ' ' + metric.unit : ''}`);
          console.log(`${label}: ${shown.join(', ')} (${((Date.now() - runStart) / 1000).toFixed(1)} s)`);
        } catch (error) {
          entry.failed++;
          const message = error instanceof Error ? error.message : String(error);
          failures.push(`${label}: ${message}`);
          if (PEERS.includes(impl)) peerFailures++;
          console.log(`${label}: FAILED: ${message}`);
          // A client that timed out may hold state: start afresh.
          if (!(error instanceof RunFailure) || clients.some((client) => client.exited)) await restartClients();
        }
      }
    }
  }
  for (const client of clients) await stop(client.child, client);
  const elapsed = (Date.now() - started) / 1000;

  const report = render(results, scenarios, options, scale, elapsed);
  console.log('\n' + report.console);
  if (options.out) {
    writeFileSync(options.out, report.markdown);
    console.log(`\nWrote ${path.relative(process.cwd(), options.out) || options.out}`);
    // The READMEs (this package's and the repository's) show the headline of the run that
    // wrote the default RESULTS.md.
    refreshOtherNodes();
    if (path.resolve(options.out) === path.join(BENCH_DIR, 'RESULTS.md') && report.headline) {
      for (const readme of [path.join(BENCH_DIR, 'README.md'), path.join(BENCH_DIR, '..', 'README.md')]) {
        const text = readFileSync(readme, 'utf8');
        const updated = text.replace(/(<!-- headline:start -->\n)[\s\S]*?(<!-- headline:end -->)/, `$1${report.headline}\n$2`);
        if (updated !== text) writeFileSync(readme, updated);
      }
    }
  }

  console.log('\nCorrectness (every event of every reader, over every run):');
  for (const impl of options.impls) {
    const entry = tally(impl);
    console.log(
      `  ${LABELS[impl].padEnd(20)} ${entry.runs} runs, ${entry.failed} failed; ${entry.events.toLocaleString('en')} events checked: ${entry.lost} lost, ${entry.duplicates} duplicated, ${entry.misordered} misordered, ${entry.unexpected} unexpected`,
    );
  }
  if (failures.length) {
    console.log(`\nFAILED RUNS (${failures.length}):`);
    for (const failure of failures) console.log(`  ${failure}`);
  }
  // ssekit's runs and the baseline's decide; a peer that fails (runs out of heap, say) is a
  // finding about that peer, listed above and in RESULTS.md.
  const ours = failures.length - peerFailures;
  const runs = [...tallies.values()].reduce((sum, t) => sum + t.runs, 0);
  const peerNote = peerFailures ? `; the peers failed ${peerFailures} runs, listed above` : '';
  console.log(`\nRESULT: ${ours ? 'FAIL' : 'PASS'} (${runs} runs in ${elapsed.toFixed(0)} s${peerNote})`);
  process.exitCode = ours ? 1 : 0;
}

async function restartClients(): Promise<void> {
  for (const client of clients.splice(0)) {
    client.child.kill('SIGKILL');
  }
  await startClients(2);
}

// ---------------------------------------------------------------------------------------------
// Reporting

let loadAtStart: number[] = [];

/** The commit the packages were built from, and whether they had uncommitted changes. */
function sourceRevision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', '../packages/core', '../packages/express', '../packages/fastify', '../packages/koa') !== '';
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes to the measured packages' : ''}`;
  } catch {
    return 'an unknown commit';
  }
}

function versionOf(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

interface Cell {
  summary: Summary;
  /** The median of the per-repetition ratios to raw node:http, with their extremes. */
  ratio: Summary | undefined;
}

function baselineOf(scenario: ScenarioId): Implementation {
  return SCENARIOS.find((candidate) => candidate.id === scenario)?.baseline ?? 'raw';
}

function cell(results: Results, scenario: ScenarioId, impl: Implementation, key: string): Cell | undefined {
  const runs = results.get(scenario)?.get(impl);
  // A metric that this scale does not measure (E's control in quick mode) has no cell either.
  if (!runs?.length || runs.some((metrics) => metrics[key] === undefined)) return undefined;
  const values = runs.map((metrics) => metrics[key]!);
  const raw = results.get(scenario)?.get(baselineOf(scenario));
  let ratio: Summary | undefined;
  if (raw?.length) {
    // Paired by repetition: runs of one repetition ran close in time, on the same noise.
    const ratios: number[] = [];
    for (let i = 0; i < Math.min(raw.length, runs.length); i++) ratios.push(runs[i]![key]! / raw[i]![key]!);
    ratio = summarize(ratios);
  }
  return { summary: summarize(values), ratio };
}

function render(results: Results, scenarios: Scenario[], options: Options, scale: Scale, elapsed: number) {
  const md: string[] = [];
  const con: string[] = [];
  let headlineMd: string | undefined;
  const cpus = os.cpus();
  const versions = ['better-sse', '@fastify/sse', 'express', 'fastify', 'koa', 'tsx'].map((name) => `${name} ${versionOf(name)}`);
  const ssekitVersion = versionOf('@ssekit/core');
  md.push('# ssekit benchmark results', '');
  md.push(`Generated by \`pnpm bench${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\` on ${new Date().toISOString()}, in ${(elapsed / 60).toFixed(1)} minutes. Regenerate it with the same command; see [README.md](README.md) for what each scenario does and how.`, '');
  md.push('## Machine', '');
  md.push(`- ${os.type()} ${os.release()} (${os.arch()}), ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  md.push(
    options.serverNodeVersion === process.version
      ? `- Node ${process.version}, V8 ${process.versions.v8}`
      : `- Servers on Node ${options.serverNodeVersion} (\`--node\`); the orchestrator and the load clients on Node ${process.version}`,
  );
  md.push(`- ssekit (workspace) ${ssekitVersion}, built from the working tree at ${sourceRevision()}; ${versions.join(', ')}`);
  md.push(`- Load average (1 min) at the start and the end of the run: ${loadAtStart[0]?.toFixed(2) ?? '?'} and ${os.loadavg()[0]!.toFixed(2)}. The machine is shared: other processes' load adds noise, which the interleaving and the medians only partly absorb.`);
  md.push(`- ${options.reps} interleaved repetitions; each figure is the median [min–max] over the repetitions, and each ratio the median [min–max] of the per-repetition ratios to raw node:http (runs of one repetition are paired). A run with any lost, duplicated or misordered event is a failed run and gives no figure.`);
  md.push('');

  // The headline table, as in the issue.
  const headline = scenarios.flatMap((scenario) => scenario.metrics.filter((metric) => metric.headline).map((metric) => ({ scenario, metric })));
  if (headline.length) {
    md.push('<!-- headline:start -->', '## Headline', '');
    const header = ['', ...headline.map(({ scenario, metric }) => `${scenario.id}: ${metric.headline}`)];
    const rows = options.impls.filter(all).map((impl) => [
      LABELS[impl],
      ...headline.map(({ scenario, metric }) => {
        const c = cell(results, scenario.id, impl, metric.key);
        if (!c) return scenario.applies(impl) ? 'failed' : 'n/a';
        if (impl === baselineOf(scenario.id) || !metric.ratio || !c.ratio) return `${format(c.summary.median, metric.digits)} ${metric.unit}`;
        return `${format(c.ratio.median, 2)}× (${format(c.summary.median, metric.digits)} ${metric.unit})`;
      }),
    ]);
    md.push(...table(header, rows), '<!-- headline:end -->', '');
    con.push('Headline (medians; multiples of raw node:http):', ...plain(header, rows), '');
    headlineMd = [`From the run of ${new Date().toISOString().slice(0, 10)} (${options.reps} repetitions, Node ${options.serverNodeVersion}):`, '', ...table(header, rows)].join('\n');
  }

  for (const scenario of scenarios) {
    md.push(`## ${scenario.id}. ${scenario.title}`, '', scenario.describe(scale), '');
    const header = ['', ...scenario.metrics.flatMap((metric) => [`${metric.label}${metric.unit ? ` (${metric.unit})` : ''}`, ...(metric.ratio ? [scenario.baseline ? '× in-memory' : '× raw'] : [])])];
    // G lists the peers too, to say why they have no figure; other tables list who ran.
    const rows = options.impls.filter((impl) => scenario.applies(impl) || (scenario.id === 'G' && contestants(impl))).map((impl) => [
      LABELS[impl],
      ...scenario.metrics.flatMap((metric) => {
        const c = cell(results, scenario.id, impl, metric.key);
        const ran = results.get(scenario.id)?.get(impl)?.length;
        const value = !scenario.applies(impl) ? 'not run: no shutdown API' : !c ? (ran ? '–' : 'failed') : `${format(c.summary.median, metric.digits)} [${format(c.summary.min, metric.digits)}–${format(c.summary.max, metric.digits)}]`;
        if (!metric.ratio) return [value];
        const ratio = !c?.ratio ? '–' : impl === baselineOf(scenario.id) ? '1.00×' : `${format(c.ratio.median, 2)}× [${format(c.ratio.min, 2)}–${format(c.ratio.max, 2)}]`;
        return [value, ratio];
      }),
    ]);
    md.push(...table(header, rows), '');
    con.push(`${scenario.id}. ${scenario.title}`, ...plain(header, rows), '');
  }

  const targets = evaluateTargets(results, options);
  if (targets.length) {
    md.push('<!-- targets:start -->', '## Targets', '', 'Medians, as the issue states each target.', '');
    const rows = targets.map((target) => [target.what, target.measured, target.met === undefined ? 'not measured' : target.met ? 'met' : 'MISSED']);
    md.push(...table(['target', 'measured', ''], rows), '<!-- targets:end -->', '');
    con.push('Targets:', ...plain(['target', 'measured', ''], rows), '');
  }

  // RESULTS.md keeps a place for the runs on other Node releases: see refreshOtherNodes.
  if (options.serverNodeVersion === process.version) md.push(OTHER_NODES_START, OTHER_NODES_END, '');
  md.push('## Correctness', '');
  const rows = options.impls.map((impl) => {
    const t = tally(impl);
    return [LABELS[impl], String(t.runs), String(t.failed), t.events.toLocaleString('en'), String(t.lost), String(t.duplicates), String(t.misordered)];
  });
  md.push(...table(['', 'runs', 'failed', 'events checked', 'lost', 'duplicated', 'misordered'], rows), '');
  // A server's stderr can hold a whole V8 out-of-memory report: its first lines say enough.
  const brief = (failure: string) => {
    const line = failure.replace(/\s+/g, ' ');
    return line.length > 600 ? `${line.slice(0, 600)}…` : line;
  };
  if (failures.length) md.push('Failed runs:', '', ...failures.map((failure) => `- ${brief(failure)}`), '');
  return { markdown: md.join('\n'), console: con.join('\n'), headline: headlineMd };
}

const OTHER_NODES_START = '<!-- other-nodes:start -->';
const OTHER_NODES_END = '<!-- other-nodes:end -->';

/**
 * Rewrites the section of RESULTS.md that shows, beside its own run, the headline and targets of
 * each run on another Node release (`--node`, written to RESULTS-node<major>.md).
 */
function refreshOtherNodes(): void {
  const main = path.join(BENCH_DIR, 'RESULTS.md');
  let text: string;
  try {
    text = readFileSync(main, 'utf8');
  } catch {
    return;
  }
  const section = (markdown: string, name: string) => new RegExp(`<!-- ${name}:start -->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(markdown)?.[1]?.trim();
  const others = readdirSync(BENCH_DIR)
    .filter((file) => /^RESULTS-node\d+\.md$/.test(file))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  const parts: string[] = [];
  for (const file of others) {
    const other = readFileSync(path.join(BENCH_DIR, file), 'utf8');
    const generated = /^Generated by .*$/m.exec(other)?.[0] ?? '';
    const machine = /^- Servers on Node .*$/m.exec(other)?.[0]?.slice(2) ?? file;
    const demote = (markdown: string | undefined) => markdown?.replace(/^## /gm, '#### ') ?? '';
    parts.push(`### ${machine}`, '', `From [${file}](${file}). ${generated}`, '', demote(section(other, 'headline')), '', demote(section(other, 'targets')), '');
  }
  const body = parts.length
    ? ['## On other Node releases', '', 'The same scenarios with the servers on another Node release (`pnpm bench --node <major>`), each from a run of its own; every ratio is to raw node:http on that release, in that run.', '', ...parts]
    : [];
  const block = [OTHER_NODES_START, ...body, OTHER_NODES_END].join('\n');
  const updated = text.includes(OTHER_NODES_START)
    ? text.replace(new RegExp(`${OTHER_NODES_START}[\\s\\S]*?${OTHER_NODES_END}`), block)
    : `${text.trimEnd()}\n\n${block}\n`;
  if (updated !== text) writeFileSync(main, updated);
}

interface Target {
  what: string;
  measured: string;
  met: boolean | undefined;
}

function evaluateTargets(results: Results, options: Options): Target[] {
  const targets: Target[] = [];
  const ssekit = options.impls.filter((impl) => impl.startsWith('ssekit-') && !REDIS_SCENARIO_ONLY.includes(impl));
  const ratioOf = (scenario: ScenarioId, impl: Implementation, key: string) => cell(results, scenario, impl, key)?.ratio?.median;
  const medianOf = (scenario: ScenarioId, impl: Implementation, key: string) => cell(results, scenario, impl, key)?.summary.median;
  const add = (what: string, value: number | undefined, measured: (value: number) => string, met: (value: number) => boolean) =>
    targets.push({ what, measured: value === undefined ? '–' : measured(value), met: value === undefined ? undefined : met(value) });

  if (results.has('A')) {
    for (const impl of ssekit) {
      const bound = impl === 'ssekit-node' ? 1.0 : 1.1;
      add(`A: ${LABELS[impl]} CPU per delivered event ≤ ${bound.toFixed(1)}× raw`, ratioOf('A', impl, 'cpuPerEvent'), (r) => `${r.toFixed(2)}×`, (r) => r <= bound);
    }
  }
  if (results.has('B')) {
    for (const impl of ssekit) add(`B: ${LABELS[impl]} CPU per event ≤ 1.1× raw`, ratioOf('B', impl, 'cpuPerEvent'), (r) => `${r.toFixed(2)}×`, (r) => r <= 1.1);
  }
  if (results.has('C')) {
    for (const impl of ssekit) add(`C: ${LABELS[impl]} heap per idle connection ≤ 1.3× raw`, ratioOf('C', impl, 'heapPerConnection'), (r) => `${r.toFixed(2)}×`, (r) => r <= 1.3);
    // Express and Koa cost memory of their own per request: measured against the same code by
    // hand in each framework, what ssekit adds is comparable with what it adds on node:http.
    for (const [impl, reference] of [['ssekit-express', 'express-bare'], ['ssekit-koa', 'koa-bare']] as const) {
      const ours = medianOf('C', impl, 'heapPerConnection');
      const theirs = medianOf('C', reference, 'heapPerConnection');
      if (ours === undefined || theirs === undefined) continue;
      add(`C: ${LABELS[impl]} heap per idle connection ≤ 1.3× ${LABELS[reference]}`, ours / theirs, (r) => `${r.toFixed(2)}× (${ours.toFixed(2)} KB vs ${theirs.toFixed(2)} KB)`, (r) => r <= 1.3);
    }
  }
  if (results.has('D')) {
    const raw = medianOf('D', 'raw', 'p99');
    for (const impl of ssekit) {
      const p99 = medianOf('D', impl, 'p99');
      add(`D: ${LABELS[impl]} p99 within 1 ms of raw`, p99 === undefined || raw === undefined ? undefined : p99 - raw, (d) => `${p99!.toFixed(2)} ms vs ${raw!.toFixed(2)} ms (${d >= 0 ? '+' : ''}${d.toFixed(2)} ms)`, (d) => d <= 1);
    }
  }
  if (results.has('E')) {
    const bound = (MAX_BUFFERED_BYTES + SLOW_EVENT_BYTES) / 1000;
    for (const impl of ssekit) {
      add(
        `E: ${LABELS[impl]} peak RSS growth per stalled client ≤ maxBufferedBytes + one event = ${bound.toFixed(0)} KB`,
        medianOf('E', impl, 'rssGrowthPerSlow'),
        (v) => `${v.toFixed(0)} KB (constant, without stalled clients: ${medianOf('E', impl, 'controlRssGrowth')?.toFixed(1)} MB)`,
        (v) => v <= bound,
      );
    }
    // Not slowed: the readers got every event (a failed run otherwise) and finished as soon
    // as raw node:http's readers under the same load, within 5%.
    const rawDone = medianOf('E', 'raw', 'readersWallMs');
    const rawP99 = medianOf('E', 'raw', 'readersP99');
    for (const impl of ssekit) {
      const done = medianOf('E', impl, 'readersWallMs');
      const p99 = medianOf('E', impl, 'readersP99');
      add(
        `E: ${LABELS[impl]} readers not slowed (done within 5% of raw's readers)`,
        done === undefined || rawDone === undefined ? undefined : done / rawDone,
        (r) => `done after ${done!.toFixed(0)} ms vs ${rawDone!.toFixed(0)} ms (${r.toFixed(2)}×); p99 ${p99!.toFixed(1)} ms vs ${rawP99!.toFixed(1)} ms`,
        (r) => r <= 1.05,
      );
    }
  }
  if (results.has('F')) {
    for (const impl of ssekit) {
      const runs = results.get('F')?.get(impl);
      if (!runs?.length) continue;
      const growth = median(runs.map((m) => m.heapGrowth!));
      const handlesBack = runs.every((m) => m.handlesAfter === m.handlesBefore && m.streamsAfter === 0);
      targets.push({
        what: `F: ${LABELS[impl]} no heap growth beyond noise (≤ 1 MB), handles back to baseline`,
        measured: `${growth.toFixed(0)} KB; handles ${runs.map((m) => `${m.handlesBefore}→${m.handlesAfter}`).join(', ')}`,
        met: growth <= 1000 && handlesBack,
      });
    }
  }
  return targets;
}

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

function plain(header: string[], rows: string[][]): string[] {
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => '  ' + row.map((text, i) => (i === 0 ? text.padEnd(widths[i]!) : text.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)];
}

await main();
