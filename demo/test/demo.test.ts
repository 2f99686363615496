/**
 * The demo on every framework, on real ports with real clients: the page, the live feed, replay
 * after a reconnect, and a clean exit of the real process on SIGINT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { EventSource } from 'eventsource';
import Redis from 'ioredis';
import { eventually, readSse, type SseReader } from '@ssekit/test-kit';
import { createEventSource, type SseClientError } from '@ssekit/client';
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
