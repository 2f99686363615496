/**
 * The demo on every framework, on real ports with real clients: the page, the live feed, replay
 * after a reconnect, the SSE metrics at /metrics against a scripted run, and a clean exit of the
 * real process on SIGINT.
 */
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import path from 'node:path';
import { EventSource } from 'eventsource';
import Redis from 'ioredis';
import { eventually, readSse, type SseReader } from '@ssekit/test-kit';
import { createEventSource, type SseClientError } from '@ssekit/client';
import { SSE_DIAGNOSTICS, type SseChannelReplayMessage, type SseStreamCloseMessage } from '@ssekit/core';
import { FRAMEWORKS, startDemo, type Demo } from '../src/demo.js';

// The built client, which the /client page loads (`pnpm test` builds first).
const CLIENT_DIST = path.resolve(__dirname, '..', '..', 'packages', 'client', 'dist');
const FAST = { host: '127.0.0.1', port: 0, tickMs: 20, noticeMs: 50, replayLimit: 50, reconnectMs: 50, clientDist: CLIENT_DIST };

const idsOf = (events: ReadonlyArray<{ id?: string | undefined }>) => events.map((event) => Number(event.id));
const range = (first: number, count: number) => Array.from({ length: count }, (_, index) => first + index);

describe.each(FRAMEWORKS)('demo on %s', (framework) => {
  let demo: Demo;
  const readers: SseReader[] = [];
  const read = async (lastEventId?: string) => {
    const reader = await readSse(`${demo.url}/events`, lastEventId === undefined ? {} : { headers: { 'last-event-id': lastEventId } });
    readers.push(reader);
    return reader;
  };

  beforeEach(async () => {
    demo = await startDemo({ framework, ...FAST });
  });
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    await demo.close();
  });

  test('GET / serves the page, which connects an EventSource to /events', async () => {
    const response = await fetch(`${demo.url}/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toContain("new EventSource('/events')");
    expect(html).toContain('drop connection');
  });

  test('a real EventSource receives ticks with increasing ids', async () => {
    const source = new EventSource(`${demo.url}/events`);
    try {
      const ticks = await new Promise<MessageEvent[]>((resolve, reject) => {
        const received: MessageEvent[] = [];
        const timer = setTimeout(() => reject(new Error('timed out waiting for 3 ticks')), 5000);
        source.addEventListener('tick', (event) => {
          received.push(event);
          if (received.length < 3) return;
          clearTimeout(timer);
          resolve(received);
        });
      });
      const ids = ticks.map((event) => Number(event.lastEventId));
      expect(ids[1]).toBeGreaterThan(ids[0]!);
      expect(ids[2]).toBeGreaterThan(ids[1]!);
      const counts = ticks.map((event) => (JSON.parse(event.data) as { count: number }).count);
      expect(counts[1]).toBe(counts[0]! + 1);
    } finally {
      source.close();
    }
  });

  test('a reconnect with Last-Event-ID replays exactly what came after it, then goes live', async () => {
    const first = await read();
    const [seen] = await first.waitForEvents(4);
    first.close();
    const lastId = Number(seen!.id);

    // The first connection saw three events after this id, so the replay is never empty; the
    // events after the replay arrive live.
    const resumed = await read(String(lastId));
    const events = await resumed.waitForEvents(10);
    expect(idsOf(events)).toEqual(range(lastId + 1, 10));
    expect(events.map((event) => event.event)).toContain('tick');
  });

  test('an unknown Last-Event-ID gets a reset, then the feed goes on from the newest id', async () => {
    const resumed = await read('999999');
    const [reset, next] = await resumed.waitForEvents(2);
    expect(reset!.event).toBe('reset');
    expect(JSON.parse(reset!.data)).toEqual({ lastEventId: '999999' });
    expect(Number(next!.id)).toBe(Number(reset!.id) + 1);
  });

  test('an id older than the replay buffer gets a reset', async () => {
    const watcher = await read();
    await watcher.waitFor(() => watcher.events.some((event) => Number(event.id) > FAST.replayLimit + 1));
    const resumed = await read('1');
    const [reset] = await resumed.waitForEvents(1);
    expect(reset!.event).toBe('reset');
  });

  test('GET /client serves the @ssekit/client page, and /client/index.js the built client it imports', async () => {
    const page = await fetch(`${demo.url}/client`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain("import { createEventSource } from '/client/index.js'");
    expect(html).toContain("'/secure-events'");
    const module = await fetch(`${demo.url}/client/index.js`);
    expect(module.status).toBe(200);
    expect(module.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await module.text()).toContain('createEventSource');
    expect((await fetch(`${demo.url}/client/..%2Fpackage.json`)).status).toBe(404);
  });

  test('/secure-events answers 401 without a good token, and streams to @ssekit/client with a fresh token on every connect', async () => {
    expect((await fetch(`${demo.url}/secure-events`)).status).toBe(401);
    expect((await fetch(`${demo.url}/secure-events`, { headers: { authorization: 'Bearer made-up' } })).status).toBe(401);
    const issued: string[] = [];
    const source = createEventSource<{ tick: { count: number } }>(`${demo.url}/secure-events`, {
      headers: async () => {
        const { token } = (await (await fetch(`${demo.url}/token`, { method: 'POST' })).json()) as { token: string };
        issued.push(token);
        return { authorization: `Bearer ${token}` };
      },
      retry: { minMs: 10, maxMs: 50 },
    });
    try {
      const counts: number[] = [];
      source.on('tick', (data) => counts.push(data.count));
      await eventually(() => counts.length >= 3, 5000, 'ticks with the first token');
      await fetch(`${demo.url}/drop`, { method: 'POST' });
      const before = counts.length;
      await eventually(() => counts.length >= before + 3, 5000, 'ticks after the reconnect');
      expect(issued.length).toBeGreaterThanOrEqual(2);
      expect(new Set(issued).size).toBe(issued.length);
      expect(counts).toEqual(range(counts[0]!, counts.length));
    } finally {
      source.close();
    }
    // Without a token the client gets 401, which it takes as fatal.
    const refused = createEventSource(`${demo.url}/secure-events`);
    const outcome = await (async () => {
      try {
        for await (const _ of refused) void _;
      } catch (error) {
        return error as SseClientError;
      }
    })();
    expect(outcome).toMatchObject({ code: 'ERR_SSE_CLIENT_HTTP', status: 401 });
  });

  test('POST /drop closes every stream, and an EventSource resumes with no gap and no repeat', async () => {
    const source = new EventSource(`${demo.url}/events`);
    try {
      const ids: number[] = [];
      let opens = 0;
      source.addEventListener('open', () => opens++);
      const onEvent = (event: MessageEvent) => ids.push(Number(event.lastEventId));
      source.addEventListener('tick', onEvent);
      source.addEventListener('notice', onEvent);
      source.addEventListener('reset', () => ids.push(Number.NaN));

      await eventually(() => ids.length >= 3, 5000, 'the first events');
      const response = await fetch(`${demo.url}/drop`, { method: 'POST' });
      expect(await response.json()).toEqual({ dropped: 1 });
      await eventually(() => opens === 2, 5000, 'the EventSource to reconnect');
      const idsAtReconnect = ids.length;
      await eventually(() => ids.length >= idsAtReconnect + 5, 5000, 'events after the reconnect');

      expect(ids).toEqual(range(ids[0]!, ids.length));
    } finally {
      source.close();
    }
  });
});

/** `name{a="1",b="2"}`, its labels sorted, for a sample of the Prometheus text format. */
function sampleKey(name: string, labels: Record<string, string>): string {
  const sorted = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return `${name}{${sorted.map(([label, value]) => `${label}="${value}"`).join(',')}}`;
}

/** Every `ssekit_*` sample of a scrape, by its key, without the scope labels (checked here to be @ssekit/metrics'). */
function parseScrape(text: string): Record<string, number> {
  const samples: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^(ssekit_\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, label, value]) => [label!, value!]));
    expect(labels).toMatchObject({ otel_scope_name: '@ssekit/metrics' });
    delete labels.otel_scope_name;
    delete labels.otel_scope_version;
    samples[sampleKey(match[1]!, labels)] = Number(match[3]);
  }
  return samples;
}

/** The samples of a histogram that recorded `values`, in order, as the exporter writes them. */
function histogramSamples(name: string, labels: Record<string, string>, values: number[], bounds: number[]): Record<string, number> {
  const samples: Record<string, number> = {
    [sampleKey(`${name}_count`, labels)]: values.length,
    [sampleKey(`${name}_sum`, labels)]: values.reduce((sum, value) => sum + value, 0),
  };
  for (const bound of [...bounds, Infinity]) {
    const le = bound === Infinity ? '+Inf' : String(bound);
    samples[sampleKey(`${name}_bucket`, { ...labels, le })] = values.filter((value) => value <= bound).length;
  }
  return samples;
}

/** Event blocks in what a client received: blocks with a field other than `retry` (comments are not events). */
const eventBlocks = (text: string) =>
  text
    .split('\n\n')
    .slice(0, -1)
    .filter((block) => block.split('\n').some((line) => /^(id|data|event)(:|$)/.test(line))).length;

const LIFETIME_BOUNDS = [0.1, 1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800];
const REPLAY_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

describe.each(FRAMEWORKS)('the SSE metrics of the demo on %s', (framework) => {
  let demo: Demo | undefined;
  const readers: SseReader[] = [];
  const closes: SseStreamCloseMessage[] = [];
  const replays: SseChannelReplayMessage[] = [];
  const onClose = (message: unknown) => void closes.push(message as SseStreamCloseMessage);
  const onReplay = (message: unknown) => void replays.push(message as SseChannelReplayMessage);
  beforeEach(() => {
    closes.length = replays.length = 0;
    diagnostics_channel.subscribe(SSE_DIAGNOSTICS.streamClose, onClose);
    diagnostics_channel.subscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
  });
  afterEach(async () => {
    diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.streamClose, onClose);
    diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
    for (const reader of readers.splice(0)) reader.close();
    await demo?.close();
    demo = undefined;
  });

  test('GET /metrics, after clients connect, events are published, a client resumes, one gets a reset and one leaves, has every number of the run', async () => {
    // Six ticks, then the feed goes quiet: every number of the run can be known.
    demo = await startDemo({ framework, ...FAST, ticks: 6, noticeMs: 3_600_000 });
    const url = `${demo.url}/events`;
    const read = async (headers: Record<string, string> = {}) => {
      const reader = await readSse(url, { headers });
      readers.push(reader);
      return reader;
    };
    const countOf = (event: { data: string }) => (JSON.parse(event.data) as { count?: number }).count;
    const first = await read();
    const second = await read();
    for (const reader of [first, second]) await reader.waitFor(() => reader.events.some((event) => countOf(event) === 6));
    // A request refused before its stream opens is no stream.
    expect((await fetch(`${demo.url}/secure-events`)).status).toBe(401);
    first.close();
    await eventually(() => closes.length === 1, 5000, 'the first client to leave');
    const third = first.events.find((event) => countOf(event) === 3)!;
    const resumed = await read({ 'last-event-id': third.id! });
    await resumed.waitForEvents(3); // ticks 4 to 6, replayed
    expect(resumed.events.map(countOf)).toEqual([4, 5, 6]);
    const lost = await read({ 'last-event-id': '999999' });
    await lost.waitForEvents(1);
    expect(lost.events[0]!.event).toBe('reset');
    await eventually(() => replays.length === 1, 5000, 'the replay');

    const response = await fetch(`${demo.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    expect(text).toContain('# TYPE ssekit_streams_open gauge');
    expect(text).toContain('# TYPE ssekit_events_sent_total counter');

    const clients = [first, second, resumed, lost];
    const route: Record<string, string> = framework === 'koa' ? {} : { http_route: '/events' };
    const client = { ...route, ssekit_close_reason: 'client' };
    const resume = { ...route, ssekit_replay_cause: 'resume' };
    expect(parseScrape(text)).toEqual({
      [sampleKey('ssekit_streams_open', route)]: 3,
      [sampleKey('ssekit_streams_closed_total', client)]: 1,
      ...histogramSamples('ssekit_stream_lifetime', client, [closes[0]!.lifetimeMs / 1000], LIFETIME_BOUNDS),
      [sampleKey('ssekit_events_sent_total', route)]: clients.reduce((sum, reader) => sum + eventBlocks(reader.text()), 0),
      [sampleKey('ssekit_bytes_sent_total', route)]: clients.reduce((sum, reader) => sum + Buffer.byteLength(reader.text()), 0),
      [sampleKey('ssekit_replays_total', resume)]: 1,
      [sampleKey('ssekit_replay_events_total', resume)]: 3,
      ...histogramSamples('ssekit_replay_duration', resume, [replays[0]!.durationMs / 1000], REPLAY_BOUNDS),
      [sampleKey('ssekit_resets_total', route)]: 1,
    });
    // The counts on the wire: the first client's mark and ticks, the replay, the reset.
    expect(closes[0]).toMatchObject({ reason: 'client', events: eventBlocks(first.text()), bytes: Buffer.byteLength(first.text()) });
  });

  test('with metrics: false there is no /metrics', async () => {
    demo = await startDemo({ framework, ...FAST, metrics: false });
    expect(demo.metricsUrl).toBeUndefined();
    expect((await fetch(`${demo.url}/metrics`)).status).toBe(404);
  });
});

describe('the demo process', () => {
  const demoRoot = path.resolve(__dirname, '..');
  let child: ChildProcess | undefined;
  let reader: SseReader | undefined;
  afterEach(() => {
    reader?.close();
    reader = undefined;
    if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  test.each([
    { how: 'FRAMEWORK=koa', framework: 'koa', args: [], env: { FRAMEWORK: 'koa' } },
    { how: '--framework fastify', framework: 'fastify', args: ['--framework', 'fastify'], env: {} },
  ])(
    'started with $how, prints its URL and exits 0 on SIGINT with a stream open',
    async ({ framework, args, env }) => {
      child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
        cwd: demoRoot,
        // REDIS_URL is the Redis tests' own (CI sets it): this demo keeps its feed in memory.
        env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', REDIS_URL: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child!.once('exit', (code, signal) => resolve({ code, signal })),
      );
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));

      await eventually(() => /listening on http:\/\/\S+/.test(output), 15_000, 'the URL to be printed');
      expect(output).toContain(`ssekit demo (${framework}) listening on http://127.0.0.1:`);
      const url = /listening on (http:\/\/\S+)/.exec(output)![1]!;
      reader = await readSse(`${url}/events`);
      expect(reader.status).toBe(200);

      child.kill('SIGINT');
      const exit = await Promise.race([exited, timeout(15_000, `exit after SIGINT; output: ${output}`)]);
      expect(exit).toEqual({ code: 0, signal: null });
      await reader.ended;
    },
    60_000,
  );
});

describe('two demo processes with REDIS_URL', () => {
  const demoRoot = path.resolve(__dirname, '..');
  const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  const prefix = `ssekit-test:demo:${randomUUID().slice(0, 8)}:`;
  const children: ChildProcess[] = [];
  const readers: SseReader[] = [];
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    await redis.connect().catch(() => {});
    const keys = redis.status === 'ready' ? await redis.keys(`${prefix}*`) : [];
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const startProcess = async (framework: string) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: demoRoot,
      env: { ...process.env, FRAMEWORK: framework, PORT: '0', HOST: '127.0.0.1', REDIS_URL: redisUrl, REDIS_PREFIX: prefix },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await eventually(() => /sharing the feed through Redis/.test(output) || child.exitCode !== null, 15_000, 'the URL to be printed').catch(
      (error) => {
        throw new Error(`${(error as Error).message}; output: ${output}`);
      },
    );
    // Without Redis the demo exits with "cannot reach Redis": a failure, never a skip.
    expect(output).toContain(`sharing the feed through Redis at ${redisUrl}`);
    return { child, url: /listening on (http:\/\/\S+)/.exec(output)![1]!, exited, output: () => output };
  };

  test('a client on instance B receives the ticks instance A publishes, and resumes on A from B\u2019s id', async () => {
    const [a, b] = await Promise.all([startProcess('express'), startProcess('koa')]);
    const fromA = `express, pid ${a.child.pid}`;
    const onB = await readSse(`${b.url}/events`);
    readers.push(onB);
    const tickFrom = (reader: SseReader, from: string) =>
      reader.events.find((event) => event.event === 'tick' && JSON.parse(event.data).from === from);
    // One feed: B's client sees A's ticks and B's own, in one order of ids.
    await onB.waitFor(() => tickFrom(onB, fromA) !== undefined && tickFrom(onB, `koa, pid ${b.child.pid}`) !== undefined, 10_000);
    const ids = onB.events.map((event) => event.id!);
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);

    // The id from B resumes on A: replay comes from Redis, not from either process.
    const first = onB.events[0]!;
    const onA = await readSse(`${a.url}/events`, { headers: { 'last-event-id': first.id! } });
    readers.push(onA);
    await onA.waitForEvents(ids.length - 1, 5000);
    expect(onA.events.slice(0, ids.length - 1).map((event) => event.id)).toEqual(ids.slice(1));

    for (const { child } of [a, b]) child.kill('SIGINT');
    for (const { exited, output } of [a, b]) {
      expect(await Promise.race([exited, timeout(15_000, `exit after SIGINT; output: ${output()}`)])).toEqual({ code: 0, signal: null });
    }
  }, 60_000);
});

function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());
}
