/**
 * One scripted run on one adapter, with real clients on real ports, and what it did, counted
 * from the clients' side wherever a client can see it: the truth every way of recording ssekit's
 * measures (`createSseMetrics`, the prom-client recipe) is compared with, number by number.
 *
 * 1. A channel keeps 3 events of 5 published. A live subscriber gets its id-only mark, a resume
 *    after id 3 replays 4 and 5, a resume after id 1 gets a reset; 4 more events reach all three.
 *    Check `open`.
 * 2. The live client leaves, the server closes the resumed one, a slow client is cut for
 *    overflow, a stream of a second app reaches its lifetime, and backplanes report errors and a
 *    reconnect. Check `closed`.
 * 3. The recording stops; an event, a stream and a backplane error follow. Check `stopped`.
 */
import { Buffer } from 'node:buffer';
import diagnostics_channel from 'node:diagnostics_channel';
import { createChannel, SSE_DIAGNOSTICS, type SseCloseReason, type SseStream } from '@ssekit/core';
import { reportBackplaneEvent } from '@ssekit/core/adapter';
import { delay, eventually, readSse, type SseReader } from '@ssekit/test-kit';
import { startTarget, type AdapterTarget } from '../../../test/targets.js';
import { recordRun } from './meter.js';

/** What the run did up to a check. */
export interface Truth {
  /** Streams open. */
  readonly open: number;
  /** Event blocks written, by every stream, open or closed. */
  readonly events: number;
  /** Body bytes written, by every stream, open or closed. */
  readonly bytes: number;
  /** Lifetimes, in seconds, of the streams closed, by reason, in the order they closed. */
  readonly closes: Partial<Record<SseCloseReason, number[]>>;
  readonly overflows: number;
  /** Replays, all with cause `resume`: their durations in seconds, and the events they wrote. */
  readonly replays: { readonly durations: number[]; readonly events: number };
  readonly resets: number;
  readonly backplaneErrors: Record<string, number>;
  readonly backplaneReconnects: Record<string, number>;
}

export type Stage = 'open' | 'closed' | 'stopped';

/**
 * Runs the script on `target`, calling `check` at each stage with what the run did so far, and
 * `stop` (which must stop the recording) before the last stage. Closes everything it opened.
 */
export async function runScenario(
  target: AdapterTarget,
  check: (stage: Stage, truth: Truth) => Promise<void>,
  stop: () => void,
): Promise<void> {
  // Channels that other suites in this process still listen to are not this run's to check.
  const listenedBefore = Object.values(SSE_DIAGNOSTICS).filter((name) => diagnostics_channel.hasSubscribers(name));
  const run = recordRun();
  const readers: SseReader[] = [];
  const read = async (url: string, lastEventId?: string) => {
    const reader = await readSse(url, lastEventId === undefined ? {} : { headers: { 'last-event-id': lastEventId } });
    readers.push(reader);
    return reader;
  };
  const bytesOf = (reader: SseReader) => Buffer.byteLength(reader.text());
  const feed = createChannel({ name: 'feed', history: { maxEvents: 3 } });
  const ids: string[] = [];
  for (let n = 1; n <= 5; n++) ids.push(await feed.publish({ event: 'n', data: { n } }));
  // Each request's URL, for the route to pick the slow-client script by its query.
  const urls: URL[] = [];
  let flooded = 0;
  let clientPaused!: () => void;
  const paused = new Promise<void>((resolve) => (clientPaused = resolve));
  const flood = async (stream: SseStream) => {
    await stream.send('start');
    flooded++;
    await paused;
    const chunk = 'z'.repeat(16 * 1024);
    for (let i = 0; i < 20_000 && !stream.closed; i++) {
      void stream.send(chunk);
      if (!stream.closed) flooded++;
      if (i % 50 === 49) await delay(5);
    }
  };
  const app = await startTarget(
    target,
    (stream) => (urls.shift()!.searchParams.get('mode') === 'flood' ? flood(stream) : feed.subscribe(stream)),
    { options: { keepAliveMs: 0, maxBufferedBytes: 64 * 1024 }, authorize: (url) => urls.push(url) > 0 },
  );
  // A second app, whose streams end at their lifetime.
  const short = await startTarget(target, (stream) => stream.send({ data: 'short-lived' }), {
    options: { keepAliveMs: 0, maxLifetimeMs: 150, lifetimeJitterMs: 0 },
  }).catch(async (error: unknown) => {
    await app.close();
    throw error;
  });

  try {
    const live = await read(`${app.url}/events`);
    await live.waitFor(() => live.lastEventId() !== undefined); // its id-only mark: an event, never dispatched
    const resumed = await read(`${app.url}/events`, ids[2]); // 3 to 5 are kept: replays 4 and 5
    await resumed.waitForEvents(2);
    const lost = await read(`${app.url}/events`, ids[0]); // 1 is gone: a reset
    await lost.waitForEvents(1);
    if (lost.events[0]!.event !== 'reset') throw new Error(`expected a reset, got ${JSON.stringify(lost.events[0])}`);
    for (let n = 6; n <= 9; n++) await feed.publish({ event: 'n', data: { n } });
    await live.waitForEvents(4);
    await resumed.waitForEvents(6);
    await lost.waitForEvents(5);
    await eventually(() => run.replays.length === 1, 5000, 'the replay');
    const replays = { durations: [run.replays[0]!.durationMs / 1000], events: 2 };
    // Every byte the server wrote has arrived: no heartbeat (keepAliveMs 0), nothing after the events.
    await check('open', {
      open: 3,
      events: 1 + 4 + (2 + 4) + (1 + 4),
      bytes: bytesOf(live) + bytesOf(resumed) + bytesOf(lost),
      closes: {},
      overflows: 0,
      replays,
      resets: 1,
      backplaneErrors: {},
      backplaneReconnects: {},
    });

    live.close();
    await eventually(() => run.closes.length === 1, 5000, 'the client to leave');
    app.streams[1]!.close();
    await resumed.ended;
    const slow = await read(`${app.url}/events?mode=flood`);
    await slow.waitForEvents(1);
    slow.pause();
    clientPaused();
    await eventually(() => run.closes.length === 3, 20_000, 'the slow client to be cut');
    const slowStream = app.streams[3]!;
    const brief = await read(`${short.url}/events`);
    await brief.ended;
    await eventually(() => run.closes.length === 4, 5000, 'the lifetime close');
    const reasons = run.closes.map((close) => close.reason);
    if (reasons.join() !== 'client,server,overflow,lifetime') throw new Error(`unexpected closes: ${reasons.join()}`);
    // The stream's own count is the route's: each send that went out before the cut.
    if (slowStream.eventsSent !== flooded) throw new Error(`the slow stream sent ${slowStream.eventsSent} events, not ${flooded}`);
    // The lifetime's farewell is a retry line: bytes, not an event.
    if (brief.retries.join() !== '1000') throw new Error(`expected the farewell retry, got ${brief.retries.join()}`);
    reportBackplaneEvent('error', 'redis', new Error('down'));
    reportBackplaneEvent('error', 'redis', new Error('still down'));
    reportBackplaneEvent('reconnect', 'redis');
    reportBackplaneEvent('error', 'nats', new Error('down'));
    const closed: Truth = {
      open: 1,
      events: 16 + flooded + 1,
      // What the clients received; the slow client was dropped with bytes unread, so the server's count.
      bytes: bytesOf(live) + bytesOf(resumed) + bytesOf(lost) + slowStream.bytesSent! + bytesOf(brief),
      closes: Object.fromEntries(run.closes.map((close) => [close.reason, [close.lifetimeMs / 1000]])),
      overflows: 1,
      replays,
      resets: 1,
      backplaneErrors: { redis: 2, nats: 1 },
      backplaneReconnects: { redis: 1 },
    };
    await check('closed', closed);

    stop();
    run.stop();
    for (const name of Object.values(SSE_DIAGNOSTICS)) {
      if (diagnostics_channel.hasSubscribers(name) && !listenedBefore.includes(name)) throw new Error(`${name} still has a subscriber`);
    }
    await feed.publish({ event: 'n', data: { n: 10 } });
    await lost.waitForEvents(6);
    const after = await read(`${short.url}/events`);
    await after.ended;
    reportBackplaneEvent('error', 'redis', new Error('again'));
    await check('stopped', closed);
  } finally {
    run.stop();
    for (const reader of readers) reader.close();
    await feed.close();
    await app.close();
    await short.close();
  }
}
