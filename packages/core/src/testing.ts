/**
 * The contract every backplane keeps, as a test suite you run on yours: `runBackplaneContract`
 * checks each promise of {@link Backplane} against your engine, with a channel on top for the
 * promises a client sees. It runs under any test runner with global `describe` and `test`
 * (Jest, Vitest with globals, Mocha) and asserts with `node:assert`.
 */
import assert from 'node:assert/strict';
import type { Backplane, BackplaneEntry, BackplaneListener, BackplaneSubscription } from './backplane.js';
import { createChannel } from './channel.js';
import { SseError, type SseErrorCode } from './errors.js';
import type { SseSink, SseSinkCloseListener } from './sink.js';
import { createSseStreamFromSink } from './stream.js';

/** How {@link runBackplaneContract} reaches the backplane under test. */
export interface BackplaneContractSetup {
  /**
   * A new backplane on the engine under test, as one more instance of an application would make
   * it: backplanes from separate calls share one engine and see each other's channels. With
   * `maxLen`, each channel keeps exactly that many entries (trim exactly, for this test).
   */
  create(options: { maxLen?: number }): Backplane | Promise<Backplane>;
  /**
   * Stops and starts the engine, keeping its data, for the outage promises: a publish while it
   * is down rejects at once, and live delivery resumes within 5 s of its start, nothing lost.
   * Leave it out only for a backplane with no engine outside the process.
   */
  engine?: { stop(): Promise<void>; start(): Promise<void> };
  /** Runs after each test, once its backplanes are closed: drop what the test made. */
  cleanup?(): void | Promise<void>;
  /** Time limit of each test, in ms. @default 30000 */
  timeoutMs?: number;
}

type Suite = (name: string, body: () => void) => void;
type Test = (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
type Hook = (body: () => Promise<void>, timeoutMs?: number) => void;

/** A publish delivers within this long, on a loaded machine too. */
const DELIVERY_MS = 10_000;
/** A publish while the engine is down must reject within this long. */
const REJECT_MS = 1000;
/** Live delivery resumes within this long of the engine's start. */
const RESUME_MS = 5000;

/**
 * Defines a suite (`describe(name, …)`) that checks every promise of the backplane interface
 * against `setup.create()`: ordered, exactly-once delivery to every subscriber after its start,
 * replay after any id, not found for unknown, trimmed and too-old ids, the origin, `close()`,
 * and, with `setup.engine`, rejection while the engine is down and recovery after. A new
 * backplane is done when it passes.
 *
 * @example
 * ```ts
 * import { runBackplaneContract } from '@ssekit/core/testing';
 * runBackplaneContract('my backplane', { create: ({ maxLen }) => createMyBackplane({ url, maxLen }) });
 * ```
 */
export function runBackplaneContract(name: string, setup: BackplaneContractSetup): void {
  const { describe, test, afterEach } = globalThis as unknown as { describe: Suite; test: Test; afterEach: Hook };
  if (typeof describe !== 'function' || typeof test !== 'function' || typeof afterEach !== 'function') {
    throw new TypeError('runBackplaneContract needs a test runner with global describe, test and afterEach.');
  }
  const timeoutMs = setup.timeoutMs ?? 30_000;
  const made: Backplane[] = [];
  const cleanups: Array<() => unknown> = [];
  let serial = 0;
  /** A channel name no other test, run or process uses. */
  const channelName = () => `contract-${process.pid}-${Date.now().toString(36)}-${++serial}`;
  const backplane = async (options: { maxLen?: number } = {}) => {
    const created = await setup.create(options);
    made.push(created);
    return created;
  };
  const it = (title: string, body: () => Promise<void>) => test(title, body, timeoutMs);

  describe(`${name}: the backplane contract`, () => {
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      for (const one of made.splice(0)) await one.close();
      await setup.cleanup?.();
    }, timeoutMs);

    /** Subscribes and records what arrives. */
    const listen = async (on: Backplane, channel: string) => {
      const recorder = new Recorder();
      const subscription = await on.subscribe(channel, recorder);
      cleanups.push(() => subscription.unsubscribe());
      return Object.assign(recorder, { subscription });
    };

    it('publish resolves to the id that subscribers and replay see', async () => {
      const bus = await backplane();
      const channel = channelName();
      const seen = await listen(bus, channel);
      const ids = [];
      for (let n = 0; n < 5; n++) ids.push(await bus.publish(channel, message(n)));
      assert.equal(new Set(ids).size, 5, 'each publish gets an id of its own');
      await seen.until(5);
      assert.deepEqual(seen.ids(), ids);
      assertIncreasing(seen.entries);
      assert.equal(seen.gaps, 0);
    });

    it('every subscriber, on every instance, gets every entry once, in one order, under racing publishers', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const channel = channelName();
      const listeners = [await listen(a, channel), await listen(a, channel), await listen(b, channel)];
      const published = await Promise.all(Array.from({ length: 60 }, (_, n) => (n % 2 ? a : b).publish(channel, message(n))));
      for (const listener of listeners) await listener.until(60);
      await pause(100); // nothing more arrives: no entry is delivered twice
      const order = listeners[0]!.ids();
      for (const listener of listeners) {
        assert.deepEqual(listener.ids(), order, 'one order for every subscriber');
        assertIncreasing(listener.entries);
        assert.equal(listener.gaps, 0);
      }
      assert.deepEqual([...order].sort(), [...published].sort(), 'exactly the published ids');
    });

    it('entries keep their event name, data and raw flag', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const channel = channelName();
      const seen = await listen(b, channel);
      const sent = [
        { id: undefined, event: 'price', data: '{"symbol":"ACME","value":42}', raw: false, value: { symbol: 'ACME', value: 42 } },
        { id: undefined, event: undefined, data: 'plain text\nsecond line', raw: true, value: 'plain text\nsecond line' },
        { id: undefined, event: 'ping', data: undefined, raw: false, value: undefined },
        { id: undefined, event: 'unicode', data: '"\u00e9\u{1F600}\u2028"', raw: false, value: '\u00e9\u{1F600}\u2028' },
        { id: undefined, event: undefined, data: '', raw: true, value: '' },
      ];
      const ids = [];
      for (const entry of sent) ids.push(await a.publish(channel, entry));
      await seen.until(sent.length);
      const replay = await b.replay(channel, ids[0]!, 100);
      assert.ok(replay.found, 'replay after the first id');
      for (const entries of [seen.entries, [undefined, ...replay.entries]]) {
        sent.forEach((entry, n) => {
          const received = entries[n];
          if (!received) return;
          const { event, data, raw } = received;
          assert.deepEqual({ event, data, raw }, { event: entry.event, data: entry.data, raw: entry.raw });
        });
      }
    });

    it('a subscription starts after the newest entry, and delivers nothing before it', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const channel = channelName();
      const empty = await listen(b, channel);
      assert.equal(empty.subscription.start, undefined, 'an empty log starts at the origin');
      const ids = [];
      for (let n = 0; n < 3; n++) ids.push(await a.publish(channel, message(n)));
      await empty.until(3);
      const late = await listen(b, channel);
      assert.equal(late.subscription.start?.id, ids[2], 'start is the newest entry');
      assert.equal(String(late.subscription.start?.position), String(empty.entries[2]!.position));
      const next = await a.publish(channel, message(3));
      await late.until(1);
      await pause(100);
      assert.deepEqual(late.ids(), [next]);
      const replay = await b.replay(channel, late.subscription.start!.id, 100);
      assert.ok(replay.found, 'replay resumes from start');
      assert.deepEqual(
        replay.entries.map((entry) => entry.id),
        [next],
      );
    });

    it('replay returns every entry after any id, in order, with its position', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const channel = channelName();
      const seen = await listen(a, channel);
      const ids = [];
      for (let n = 0; n < 8; n++) ids.push(await a.publish(channel, message(n)));
      await seen.until(8);
      for (let n = 0; n < ids.length; n++) {
        const replay = await b.replay(channel, ids[n]!, 100);
        assert.ok(replay.found, `replay after entry ${n}`);
        assert.equal(String(replay.position), String(seen.entries[n]!.position));
        assert.deepEqual(
          replay.entries.map((entry) => entry.id),
          ids.slice(n + 1),
        );
        assertIncreasing(replay.entries);
      }
      const exact = await b.replay(channel, ids[5]!, 2);
      assert.ok(exact.found, 'exactly `limit` entries behind is found');
      assert.equal(exact.entries.length, 2);
    });

    it('replay answers not found for unknown, malformed, trimmed and too-old ids, with the newest entry', async () => {
      const bus = await backplane({ maxLen: 5 });
      const channel = channelName();
      const ids = [];
      for (let n = 0; n < 12; n++) ids.push(await bus.publish(channel, message(n)));
      const newest = ids.at(-1);
      for (const afterId of [ids[0]!, ids[6]!, 'not-an-id', '', '99999999999999999999', `${ids[3]}0`]) {
        const replay = await bus.replay(channel, afterId, 100);
        assert.equal(replay.found, false, `${JSON.stringify(afterId)} is not found`);
        if (!replay.found) assert.equal(replay.latest?.id, newest);
      }
      const kept = await bus.replay(channel, ids[7]!, 100);
      assert.ok(kept.found, 'the oldest kept entry is still a resume point');
      assert.deepEqual(
        kept.entries.map((entry) => entry.id),
        ids.slice(8),
      );
      const tooFar = await bus.replay(channel, ids[7]!, 3);
      assert.equal(tooFar.found, false, 'more than `limit` behind is not found');
      const none = await bus.replay(channelName(), ids[8]!, 100);
      assert.equal(none.found, false, 'an id of another channel is not found');
      if (!none.found) assert.equal(none.latest, undefined, 'an empty log has no newest entry');
    });

    it('replay after the origin returns the whole log until it is trimmed', async () => {
      const bus = await backplane({ maxLen: 3 });
      const { originId } = bus;
      if (originId === undefined) return; // the backplane has none: channels give new clients no mark
      const channel = channelName();
      const empty = await bus.replay(channel, originId, 100);
      assert.ok(empty.found && empty.entries.length === 0, 'an empty log replays from the origin');
      const ids = [await bus.publish(channel, message(0)), await bus.publish(channel, message(1))];
      const whole = await bus.replay(channel, originId, 100);
      assert.ok(whole.found, 'nothing trimmed yet');
      assert.deepEqual(
        whole.entries.map((entry) => entry.id),
        ids,
      );
      for (let n = 2; n < 6; n++) ids.push(await bus.publish(channel, message(n)));
      const trimmed = await bus.replay(channel, originId, 100);
      assert.equal(trimmed.found, false, 'the first entries fell out');
    });

    it('unsubscribe stops delivery to that listener only', async () => {
      const bus = await backplane();
      const channel = channelName();
      const [stays, leaves] = [await listen(bus, channel), await listen(bus, channel)];
      await bus.publish(channel, message(0));
      await Promise.all([stays.until(1), leaves.until(1)]);
      leaves.subscription.unsubscribe();
      await bus.publish(channel, message(1));
      await stays.until(2);
      await pause(100);
      assert.equal(leaves.entries.length, 1);
    });

    it('a channel gives a client that connects before its first delivery a resume point without a gap', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const name = channelName();
      const before = await a.publish(name, message(0));
      const channel = createChannel({ name, backplane: b });
      cleanups.push(() => channel.close());
      const first = recordingStream(); // subscribes before the channel's backplane has started
      channel.subscribe(first.stream);
      await until(() => first.ids.length >= 1, 'the first client gets its resume point');
      first.stream.close(); // the client drops, with whatever it got so far
      const missed = await a.publish(name, message(1));
      const again = recordingStream(first.ids.at(-1));
      channel.subscribe(again.stream);
      await until(() => again.events.some((event) => event.id === missed), 'the missed event is replayed');
      const got = [...first.events, ...again.events];
      assert.deepEqual(
        got.filter((event) => event.event === 'reset'),
        [],
        'no reset: nothing was lost',
      );
      // The resume point is the newest entry, or the origin, before which `before` arrives too.
      assert.deepEqual(
        got.map((event) => event.id),
        first.ids[0] === before ? [missed] : [before, missed],
        'every event after the resume point, once',
      );
    });

    it('close() ends delivery and rejects what comes after it; a second close() is harmless', async () => {
      const [a, b] = [await backplane(), await backplane()];
      const channel = channelName();
      const seen = await listen(b, channel);
      await a.publish(channel, message(0));
      await seen.until(1);
      await b.close();
      await b.close();
      await a.publish(channel, message(1));
      await pause(200);
      assert.equal(seen.entries.length, 1, 'a closed backplane delivers nothing');
      await assert.rejects(b.publish(channel, message(2)), coded('ERR_SSE_CLOSED'));
      await assert.rejects((async () => b.subscribe(channel, new Recorder()))(), coded('ERR_SSE_CLOSED'));
    });

    if (setup.engine) {
      const engine = setup.engine;
      it('while the engine is down a publish rejects at once; after it, live delivery resumes with nothing lost', async () => {
        const [a, b] = [await backplane(), await backplane()];
        const channel = channelName();
        const seen = await listen(a, channel);
        const ids = [await b.publish(channel, message(0))];
        await seen.until(1);
        await engine.stop();
        let restarted = false;
        cleanups.push(async () => {
          if (!restarted) await engine.start();
        });
        // A publish sent in the instant of a crash looks like a slow engine to any client; once
        // the connections have closed, the backplane knows, and must not wait.
        await pause(200);
        for (const bus of [a, b]) {
          const started = performance.now();
          await assert.rejects(bus.publish(channel, message(-1)), coded('ERR_SSE_BACKPLANE_UNAVAILABLE'));
          const waited = performance.now() - started;
          assert.ok(waited < REJECT_MS, `a publish while the engine is down rejects at once, not after ${Math.round(waited)} ms`);
        }
        await engine.start();
        restarted = true;
        const back = performance.now();
        // A fresh instance publishes as soon as the engine is back: before `a` may have noticed.
        const c = await backplane();
        ids.push(await retry(() => c.publish(channel, message(1)), RESUME_MS));
        ids.push(await retry(() => b.publish(channel, message(2)), RESUME_MS));
        await seen.until(3, RESUME_MS);
        const resumed = performance.now() - back;
        assert.ok(resumed < RESUME_MS, `delivery resumed ${Math.round(resumed)} ms after the engine came back`);
        ids.push(await a.publish(channel, message(3)));
        await seen.until(4);
        await pause(100);
        assert.deepEqual(seen.ids(), ids, 'every entry once, in order, across the outage');
        assert.equal(seen.gaps, 0, 'the engine kept its data: no gap');
      });
    }
  });
}

/** A listener that records what it receives. */
class Recorder implements BackplaneListener {
  readonly entries: BackplaneEntry[] = [];
  gaps = 0;
  subscription?: BackplaneSubscription;
  entry(entry: BackplaneEntry): void {
    this.entries.push(entry);
  }
  gap(): void {
    this.gaps++;
  }
  ids(): string[] {
    return this.entries.map((entry) => entry.id);
  }
  until(count: number, timeoutMs = DELIVERY_MS): Promise<void> {
    return until(() => this.entries.length >= count, `${count} entries (have ${this.entries.length})`, timeoutMs);
  }
}

/** Matches an SseError with `code`, as assert.rejects takes it. */
function coded(code: SseErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof SseError, `an SseError, not ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

function message(n: number) {
  return { id: undefined, event: 'n', data: String(n), raw: false, value: n };
}

function assertIncreasing(entries: readonly BackplaneEntry[]): void {
  for (let n = 1; n < entries.length; n++) {
    assert.ok(BigInt(entries[n - 1]!.position) < BigInt(entries[n]!.position), 'positions increase in delivery order');
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(predicate: () => boolean, what: string, timeoutMs = DELIVERY_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new assert.AssertionError({ message: `timed out after ${timeoutMs} ms waiting for ${what}` });
    await pause(5);
  }
}

/** Tries `attempt` until it resolves, for at most `timeoutMs`. */
async function retry<T>(attempt: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await pause(50);
    }
  }
}

/**
 * A stream whose client records the ids and events it parses: enough of the wire for the
 * channel's promises, which need a real stream but no socket.
 */
function recordingStream(lastEventId?: string) {
  const ids: string[] = [];
  const events: Array<{ event: string; id: string }> = [];
  let closedBy: 'server' | 'client' | undefined;
  let opened = false;
  const closeListeners: SseSinkCloseListener[] = [];
  const parse = (chunk: string) => {
    for (const block of chunk.split('\n\n')) {
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).replace(/^ /, ''));
      }
      const id = fields.get('id');
      if (id !== undefined) ids.push(id);
      if (fields.has('data')) events.push({ event: fields.get('event') ?? 'message', id: id ?? '' });
    }
  };
  const sink: SseSink = {
    lastEventIdHeader: lastEventId,
    get closedBy() {
      return closedBy;
    },
    bufferedBytes: 0,
    get headersSent() {
      return opened;
    },
    reject() {
      throw new Error('the channel refused a stream');
    },
    open(_head, firstChunk) {
      opened = true;
      return firstChunk === undefined ? true : sink.write(firstChunk);
    },
    write(chunk) {
      if (closedBy) return false;
      parse(chunk);
      return true;
    },
    onceDrain: (listener) => queueMicrotask(listener),
    offDrain() {},
    onClose: (listener) => void closeListeners.push(listener),
    end: () => close('server'),
    destroy: () => close('client'),
  };
  const close = (by: 'server' | 'client') => {
    if (closedBy) return;
    closedBy = by;
    for (const listener of closeListeners.splice(0)) listener.sinkClosed(by === 'client');
  };
  const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 }, undefined);
  return { stream, ids, events };
}
