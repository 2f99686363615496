/**
 * Events from 1 KiB up to the default maxEventBytes (1 MiB), back to back, on every target:
 * to a client that reads as fast as it can, and to one that keeps pausing, so that sends meet a
 * full socket and wait for its drain. Every byte is checked, and every `send` must resolve true
 * for an event that was written and false only once the stream has closed.
 *
 * Written after Node 24 froze streams here: an event larger than a socket's high-water mark
 * left `send` waiting for a drain that Node had already emitted.
 */
import http from 'node:http';
import http2 from 'node:http2';
import { createParser } from 'eventsource-parser';
import { SseError, type SseStream } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { TARGETS, eventually, readSse, serveHttp, startApp, type SseReader, type TestApp, type TestRoute } from '@ssekit/test-kit';

const KiB = 1024;
const SIZES = [1 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1024 * KiB];
/** The default maxEventBytes: an event of exactly this many bytes must pass. */
const MAX_EVENT_BYTES = 1024 * KiB;

/**
 * The data of an event that is exactly `bytes` long on the wire (`data: ` + data + `\n\n`),
 * different for every index, with multi-byte characters at both ends and across the middle, so
 * that a chunk sized in characters instead of bytes, or a misplaced byte, shows.
 */
function payload(bytes: number, index: number): string {
  const head = `é#${index}:`;
  const tail = '☃𝄞';
  const fill = bytes - 8 - Buffer.byteLength(head) - Buffer.byteLength(tail);
  const half = Math.floor(fill / 2) - 2; // room for one 'ü' (2 bytes) in the middle
  const pattern = `${index.toString(36)}abcdefghijklmnopqrstuvwxyz0123456789`;
  const ascii = (length: number) => pattern.repeat(Math.ceil(length / pattern.length)).slice(0, length);
  const data = head + ascii(half) + 'ü' + ascii(fill - half - 2) + tail;
  expect(Buffer.byteLength(`data: ${data}\n\n`)).toBe(bytes);
  return data;
}

/**
 * One round: up and back down again, so the big events come both after small ones and after
 * each other. Every round's data differs from every other's.
 */
const roundCache = new Map<number, string[]>();
function round(n: number): string[] {
  let data = roundCache.get(n);
  if (!data) roundCache.set(n, (data = [...SIZES, ...[...SIZES].reverse()].map((bytes, i) => payload(bytes, n * 10 + i))));
  return data;
}

interface Outcome {
  /** What each send resolved to, in order. */
  results: boolean[];
  /** How many sends were still waiting 5 ms after they were made: waits for a drain. */
  waited: number;
  /** Rounds sent. */
  rounds: number;
}

const newOutcome = (): Outcome => ({ results: [], waited: 0, rounds: 0 });

/**
 * A route that sends rounds back to back, each send awaited, then closes the stream: one round,
 * or with `untilWaited`, rounds until a send has had to wait for a drain and then one more, so
 * that a whole round meets a socket that has been full. A reader that is slow from the start
 * still needs several megabytes before that: on loopback the kernel's socket buffers grow to
 * about 4 MB and take everything smaller.
 */
function sendRounds(outcome: Outcome, { untilWaited = false } = {}): TestRoute {
  return async ({ stream }) => {
    const maxRounds = untilWaited ? 8 : 1;
    for (let n = 0; n < maxRounds; n++) {
      const waitedBefore = outcome.waited;
      for (const data of round(n)) {
        const sent = stream.send(data);
        if ((await Promise.race([sent, new Promise((resolve) => setTimeout(resolve, 5, 'waiting'))])) === 'waiting') outcome.waited++;
        outcome.results.push(await sent);
      }
      outcome.rounds++;
      if (waitedBefore > 0) break;
    }
    stream.close();
  };
}

/** The data of every event sent, in order. */
const sentData = (outcome: Outcome) => Array.from({ length: outcome.rounds }, (_, n) => round(n)).flat();

/**
 * Reads until the end as a slow client does: nothing at all until a send on the server waits
 * for a drain, then 20 ms stops after every megabyte or so.
 */
async function readPausing(reader: SseReader, outcome: Outcome): Promise<void> {
  reader.pause();
  await eventually(() => outcome.waited > 0, 20_000, 'a send to wait for a drain');
  reader.resume();
  const ended = reader.ended.then(() => 'ended' as const);
  for (let pausedAt = 0; ;) {
    // The predicate runs as each chunk arrives, so the stop comes right behind it.
    const next = reader.waitFor(() => reader.text().length - pausedAt >= 1024 * KiB, 10_000);
    if ((await Promise.race([next, ended])) === 'ended') return;
    pausedAt = reader.text().length;
    reader.pause();
    await new Promise((resolve) => setTimeout(resolve, 20));
    reader.resume();
  }
}

/** Where two texts first differ, if they do: toBe on megabytes of text would print them all. */
function firstDifference(actual: string, expected: string): string | undefined {
  if (actual === expected) return undefined;
  let i = 0;
  while (actual[i] === expected[i]) i++;
  return `at ${i} of ${expected.length}: ${JSON.stringify(actual.slice(i, i + 40))} instead of ${JSON.stringify(expected.slice(i, i + 40))}`;
}

function expectEveryByte(text: string, events: Array<{ data: string }>, outcome: Outcome): void {
  const data = sentData(outcome);
  expect(firstDifference(text, data.map((item) => `data: ${item}\n\n`).join(''))).toBeUndefined();
  expect(events.length).toBe(data.length);
  expect(events.every((event, i) => event.data === data[i])).toBe(true);
  expect(outcome.results).toEqual(data.map(() => true));
}

describe.each(TARGETS)('large events on %s', (target) => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  test('1 KiB to 1 MiB, back to back, to a client that reads at full speed: every byte arrives, every send resolves true', async () => {
    const outcome = newOutcome();
    app = await startApp(target, sendRounds(outcome));
    const reader = await readSse(`${app.url}/events`);
    await reader.ended;
    expectEveryByte(reader.text(), reader.events, outcome);
  });

  test('the same to a client that stops and starts: sends wait for drain, and still every byte arrives', async () => {
    const outcome = newOutcome();
    app = await startApp(target, sendRounds(outcome, { untilWaited: true }));
    const reader = await readSse(`${app.url}/events`);
    await readPausing(reader, outcome);
    expectEveryByte(reader.text(), reader.events, outcome);
    expect(outcome.waited).toBeGreaterThan(0);
  });

  test('a send waiting on a full socket resolves false only once the client has left, and the stream is closed by then', async () => {
    let pending: Promise<boolean> | undefined;
    let stream: SseStream | undefined;
    app = await startApp(target, async (context) => {
      stream = context.stream;
      await stream.send('start');
      // Until one send is still waiting 100 ms later: the kernel's buffers are full by then.
      for (let i = 0; i < 50 && !pending; i++) {
        const sent = stream.send(payload(MAX_EVENT_BYTES, i));
        const waiting = new Promise((resolve) => setTimeout(resolve, 100, 'waiting'));
        if ((await Promise.race([sent, waiting])) === 'waiting') pending = sent;
        else expect(await sent).toBe(true);
      }
    });
    const reader = await readSse(`${app.url}/events`);
    reader.pause();
    await eventually(() => pending !== undefined, 20_000, 'a send to wait on the full socket');
    let closedWhenSettled: boolean | undefined;
    const settled = pending!.then((result) => ((closedWhenSettled = stream!.closed), result));
    reader.close();
    await expect(settled).resolves.toBe(false);
    expect(closedWhenSettled).toBe(true);
    expect(stream!.closeReason).toBe('client');
  });
});

test('one byte over maxEventBytes throws ERR_SSE_EVENT_TOO_LARGE, and exactly maxEventBytes goes out', async () => {
  let outcome: unknown;
  const served = await serveHttp((req, res) => {
    const stream = createSseStream(req, res, { keepAliveMs: 0 });
    try {
      void stream.send(payload(MAX_EVENT_BYTES, 0) + 'x');
    } catch (error) {
      outcome = error instanceof SseError ? error.code : error;
    }
    void stream.send(payload(MAX_EVENT_BYTES, 1)).then(() => stream.close());
  });
  try {
    const reader = await readSse(`${served.url}/events`);
    await reader.ended;
    expect(outcome).toBe('ERR_SSE_EVENT_TOO_LARGE');
    expect(reader.events.map((event) => event.data)).toEqual([payload(MAX_EVENT_BYTES, 1)]);
  } finally {
    await served.close();
  }
});

/**
 * The two other ways a Node response is written: through a `write` that middleware wrapped (as
 * compression does), which takes `res.write` instead of the direct socket path, and through
 * HTTP/2's compatibility layer.
 */
describe('large events through res.write', () => {
  test.each(['full speed', 'stop and start'])('a wrapped write, to a client reading at %s', async (mode) => {
    const outcome = newOutcome();
    const route = sendRounds(outcome, { untilWaited: mode !== 'full speed' });
    const served = await serveHttp((req, res) => {
      const write = res.write;
      res.write = function (this: http.ServerResponse, ...args: unknown[]) {
        return (write as (...a: unknown[]) => boolean).apply(this, args);
      } as typeof res.write;
      void route({ stream: createSseStream(req, res, { keepAliveMs: 0 }), request: req, reject: () => {} });
    });
    try {
      const reader = await readSse(`${served.url}/events`);
      await (mode === 'full speed' ? reader.ended : readPausing(reader, outcome));
      expectEveryByte(reader.text(), reader.events, outcome);
      if (mode !== 'full speed') expect(outcome.waited).toBeGreaterThan(0);
    } finally {
      await served.close();
    }
  });

  test('HTTP/2, to a client that stops and starts', async () => {
    const outcome = newOutcome();
    const route = sendRounds(outcome, { untilWaited: true });
    const server = http2.createServer((req, res) => {
      void route({
        stream: createSseStream(req, res, { keepAliveMs: 0 }),
        request: req as unknown as http.IncomingMessage,
        reject: () => {},
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const request = session.request({ ':path': '/events' });
      request.setEncoding('utf8');
      let text = '';
      let pausedAt = 0;
      request.on('data', (chunk: string) => {
        text += chunk;
        if (text.length - pausedAt >= 256 * KiB) {
          pausedAt = text.length;
          request.pause();
          setTimeout(() => request.resume(), 20);
        }
      });
      await new Promise<void>((resolve, reject) => {
        request.on('end', resolve);
        request.on('error', reject);
      });
      const events: Array<{ data: string }> = [];
      createParser({ onEvent: (event) => events.push(event) }).feed(text);
      expectEveryByte(text, events, outcome);
      expect(outcome.waited).toBeGreaterThan(0);
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
