/**
 * Property-based fuzzing of the serializer, against WIRE.md and docs/wire-format.md.
 *
 * Every field gets random Unicode, with the characters that break SSE mixed in on purpose so that
 * they turn up in most cases rather than by luck: CR, LF, CRLF, NUL, lone high and low surrogates,
 * U+2028, U+2029, U+0085, U+FEFF, edge spaces and every ASCII control character.
 *
 * The oracle for "valid or not" is written here from the documented rules (docs/wire-format.md,
 * sections 3 to 5), not taken from the source, so a message that is rejected when it should not
 * be fails as surely as one that gets through when it should not. What a client makes of the
 * output comes from a real parser, `eventsource-parser`, fed two ways:
 *
 * - The JavaScript string, as is. No bytes are involved, so a lone surrogate survives, and the
 *   decoded fields must equal the input exactly (data with CRLF and CR turned into LF).
 * - The UTF-8 bytes a socket carries: `Buffer.from(text, 'utf8')`, cut into chunks at random byte
 *   offsets (inside multi-byte characters too), decoded by a streaming `TextDecoder` that is
 *   fatal on malformed UTF-8 and keeps any BOM. Node's encoder writes a lone surrogate as U+FFFD
 *   (docs/wire-format.md 1.1), so here the decoded fields must equal the input with each lone
 *   surrogate replaced by U+FFFD, and nothing else changed.
 *
 * Assertions inside properties use `node:assert`: jest's `expect` costs tens of microseconds a
 * call, which over 100,000 cases would be most of the runtime.
 *
 * The seed is `FUZZ_SEED` when set, random otherwise. fast-check prints the seed and the path of
 * any failure; `FUZZ_SEED=<seed> npx jest packages/core/test/fuzz.test.ts` replays it.
 */
import assert from 'node:assert/strict';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { formatComment, formatEvent, formatRetry, isValidEventId, SseError, type SseErrorCode, type SseMessage } from '@ssekit/core';
import { createSseStreamFromSink, readLastEventId } from '@ssekit/core/adapter';
import { createMemorySink } from '@ssekit/test-kit';

// ---------------------------------------------------------------------------------------------
// Run budget: every property's numRuns, summed and checked by the last test.

const RUNS = {
  roundTrip: 30_000,
  lines: 20_000,
  stream: 8_000,
  comments: 15_000,
  retry: 15_000,
  ids: 20_000,
} as const;
type PropertyName = keyof typeof RUNS;
const MIN_TOTAL_RUNS = 100_000;
/** How many times each property's predicate actually ran (shrinking included). */
const executed: Record<PropertyName, number> = { roundTrip: 0, lines: 0, stream: 0, comments: 0, retry: 0, ids: 0 };
/** How the round-trip cases split between accepted and rejected messages. */
const outcomes = { accepted: 0, rejected: 0 };

const seed = readSeed(process.env.FUZZ_SEED);

function readSeed(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) throw new Error(`FUZZ_SEED must be an integer, not ${JSON.stringify(value)}.`);
  return parsed;
}

/** The properties that ran their whole budget and passed. */
const passed = new Set<PropertyName>();

/** Runs one property with its budget and the seed, and records that it passed. */
function check<Ts>(name: PropertyName, property: fc.IProperty<Ts>): void {
  fc.assert(property, seed === undefined ? { numRuns: RUNS[name] } : { numRuns: RUNS[name], seed });
  passed.add(name);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const ASCII_CONTROLS = [...Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)), '\x7f'];

/** The characters and fragments that break naive SSE writers or clients. */
const NASTY = [
  '\r',
  '\n',
  '\r\n',
  '\n\r',
  '\r\r',
  '\n\n',
  '\r\n\r\n',
  '\0',
  '\uD800',
  '\uDBFF',
  '\uD83D', // lone high surrogates (U+D83D starts most emoji)
  '\uDC00',
  '\uDFFF',
  '\uDE00', // lone low surrogates
  '\u2028',
  '\u2029',
  '\u0085',
  '\uFEFF',
  '\u00A0',
  '\u3000',
  ' ',
  '  ',
  '\t',
  ':',
  ': ',
  'data:',
  'data: ',
  'event: ',
  'id: ',
  'retry: ',
  'message',
  ...ASCII_CONTROLS,
];

const oneOf = (unit: 'grapheme' | 'grapheme-ascii' | 'binary' | 'binary-ascii') => fc.string({ unit, minLength: 1, maxLength: 1 });

/** One unit of text: a nasty character about half the time, any Unicode otherwise. */
const nastyUnit = fc.oneof(
  { arbitrary: fc.constantFrom(...NASTY), weight: 5 },
  { arbitrary: oneOf('grapheme'), weight: 2 },
  { arbitrary: oneOf('binary'), weight: 2 },
  { arbitrary: oneOf('binary-ascii'), weight: 1 },
  { arbitrary: oneOf('grapheme-ascii'), weight: 1 },
);

const EDGES = ['', '', ' ', '  ', '\uFEFF', '\r', '\n', '\r\n', '\0', '\uD800', '\uDC00', '\u2028', '\u0085', '\t'];

/** Any string, with nasty characters frequent, and often at either edge. */
const text = (maxLength = 24) =>
  fc.oneof(
    { arbitrary: fc.string({ unit: nastyUnit, maxLength }), weight: 5 },
    {
      arbitrary: fc
        .tuple(fc.constantFrom(...EDGES), fc.string({ unit: nastyUnit, maxLength }), fc.constantFrom(...EDGES))
        .map(([head, body, tail]) => head + body + tail),
      weight: 3,
    },
    { arbitrary: fc.string({ unit: 'grapheme', maxLength }), weight: 1 },
    { arbitrary: fc.string({ unit: 'binary', maxLength }), weight: 1 },
  );

/** A string without CR or LF: what a valid event name or comment line looks like, nasty otherwise. */
const singleLine = (maxLength = 24) => text(maxLength).map((value) => value.replace(/[\r\n]/g, ''));

const printableAscii = fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code));

/** Strings that are mostly valid ids, around every edge of the policy (length 128, edge spaces). */
const idLike = fc.oneof(
  fc.string({ unit: printableAscii, maxLength: 20 }),
  fc.string({ unit: printableAscii, minLength: 124, maxLength: 132 }),
  fc
    .tuple(
      fc.constantFrom('', ' ', '\t', '\0', '\x7f', '\u00e9', '\uFEFF'),
      fc.string({ unit: printableAscii, maxLength: 10 }),
      fc.constantFrom('', ' ', '\t', '\n', '\x1f', '\uD800'),
    )
    .map(([head, body, tail]) => head + body + tail),
  // A valid-looking id with one bad character inside, where only a full check finds it.
  fc
    .tuple(
      fc.string({ unit: printableAscii, minLength: 1, maxLength: 10 }),
      fc.constantFrom(...NASTY, '\u00e9', '\u0100', '\uFFFF', '\u{1F389}'),
      fc.string({ unit: printableAscii, minLength: 1, maxLength: 10 }),
    )
    .map(([head, bad, tail]) => head + bad + tail),
  fc.constantFrom('', ' ', 'a', ' a', 'a ', 'a b', 'i'.repeat(128), 'i'.repeat(129), ` ${'i'.repeat(127)}`),
);

/** Any id string at all. */
const anyIdString = fc.oneof({ arbitrary: idLike, weight: 3 }, { arbitrary: text(), weight: 2 });

/** Values that are not strings, for fields that must be strings. */
const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }),
  fc.constantFrom({}, [], ['x'], { toString: () => 'x' }, new String('x'), Symbol('s')),
);

/** Numbers at every edge of "non-negative safe integer", and values that are not numbers at all. */
const anyRetry = fc.oneof(
  { arbitrary: fc.nat(), weight: 3 },
  { arbitrary: fc.maxSafeNat(), weight: 2 },
  { arbitrary: fc.maxSafeInteger(), weight: 2 },
  { arbitrary: fc.double(), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      0,
      -0,
      1,
      -1,
      0.5,
      1.5,
      1e21,
      -1e21,
      Number.MIN_VALUE,
      Number.EPSILON,
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER + 1,
      2 ** 53,
      2 ** 53 + 2,
      Number.MAX_VALUE,
      NaN,
      Infinity,
      -Infinity,
    ),
    weight: 2,
  },
  { arbitrary: fc.constantFrom('1000', '0', ' 1', '1e3', '', '0x10'), weight: 1 },
  { arbitrary: text(8), weight: 1 },
  { arbitrary: notAString, weight: 1 },
);

const anyId = fc.oneof(
  { arbitrary: anyIdString, weight: 6 },
  { arbitrary: fc.maxSafeNat(), weight: 1 },
  { arbitrary: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double(), fc.constantFrom(-0, 2 ** 53, NaN, -1, 0.5)), weight: 1 },
  { arbitrary: notAString, weight: 1 },
);

const anyEvent = fc.oneof(
  { arbitrary: text(), weight: 4 },
  { arbitrary: singleLine(), weight: 3 },
  { arbitrary: fc.constantFrom('message', 'tick', ' message', 'message ', '', ' ', '\uFEFF', '\0'), weight: 2 },
  { arbitrary: notAString, weight: 1 },
);

const circular: Record<string, unknown> = {};
circular.self = circular;

/** Data: strings most of the time, any JSON, any JS value, and values JSON cannot serialize. */
const anyData = fc.oneof(
  { arbitrary: text(40), weight: 8 },
  { arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: nastyUnit }), weight: 3 },
  {
    arbitrary: fc.anything({
      maxDepth: 2,
      maxKeys: 3,
      withBigInt: true,
      withBoxedValues: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      stringUnit: nastyUnit,
    }),
    weight: 2,
  },
  {
    arbitrary: fc.constantFrom<unknown>(() => 1, Symbol('s'), circular, 1n, { toJSON: () => undefined }, { toJSON: () => '\r\n' }),
    weight: 1,
  },
);

/** What the `serialize` option does, described as data so that counterexamples print readably. */
type SerializerSpec = undefined | { returns: unknown } | { throws: true };

const anySerializer: fc.Arbitrary<SerializerSpec> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 6 },
  { arbitrary: text(30).map((value) => ({ returns: value })), weight: 2 },
  { arbitrary: notAString.map((value) => ({ returns: value })), weight: 1 },
  { arbitrary: fc.constant({ throws: true as const }), weight: 1 },
);

function serializerOf(spec: SerializerSpec): ((data: unknown) => string) | undefined {
  if (spec === undefined) return undefined;
  if ('throws' in spec) {
    return () => {
      throw new Error('serializer failure');
    };
  }
  return () => spec.returns as string;
}

type Fields = { comment?: unknown; event?: unknown; id?: unknown; retry?: unknown; data?: unknown };

/** A message with any field set to anything: mostly invalid. */
const wildMessage: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.record(
      {
        comment: fc.oneof({ arbitrary: text(), weight: 5 }, { arbitrary: notAString, weight: 1 }),
        event: anyEvent,
        id: anyId,
        retry: anyRetry,
        data: anyData,
      },
      { requiredKeys: [] },
    ),
    weight: 8,
  },
  { arbitrary: text(40), weight: 1 },
  { arbitrary: fc.constantFrom<unknown>(null, undefined, 42, true, [], {}, Symbol('m'), { data: undefined }), weight: 1 },
);

/** A message built from fields that are mostly valid, so that most cases reach the parser. */
const tameMessage: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.record(
      {
        comment: text(),
        event: fc.oneof(singleLine(), fc.constant('message')),
        id: fc.oneof({ arbitrary: idLike, weight: 3 }, { arbitrary: fc.maxSafeNat(), weight: 1 }),
        retry: fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constant(-0)),
        data: fc.oneof({ arbitrary: text(40), weight: 4 }, { arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: nastyUnit }), weight: 1 }),
      },
      { requiredKeys: [] },
    ),
    weight: 6,
  },
  { arbitrary: text(40), weight: 1 },
);

const anyMessage = fc.oneof({ arbitrary: tameMessage, weight: 3 }, { arbitrary: wildMessage, weight: 2 });

// ---------------------------------------------------------------------------------------------
// The oracle: what the documented rules say a message must give.

const LINE_BREAK = /\r\n|\r|\n/;
/** The codes formatEvent may throw (docs/wire-format.md section 5); the others belong to streams and channels. */
const FORMAT_ERROR_CODES: readonly SseErrorCode[] = ['ERR_SSE_INVALID_FIELD', 'ERR_SSE_INVALID_DATA'];

/** docs/wire-format.md 4.1 to 4.3, spelled out without a regular expression. */
function idPolicyAllows(id: string): boolean {
  if (id.length > 128) return false;
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return !id.startsWith(' ') && !id.endsWith(' ');
}

const isNonNegativeSafeInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 2 ** 53 - 1;

interface Decoded {
  events: EventSourceMessage[];
  comments: string[];
  retries: number[];
  errors: string[];
}

type Expected = { rejected: SseErrorCode[] } | { rejected: undefined; decoded: Decoded; endsBlock: boolean };

/**
 * What a message must give, from the rules alone: the error codes it may be rejected with, or what
 * a client decodes from it. When both a field and the data are invalid the order of the checks
 * is not specified, so either code is accepted.
 */
function expectedOf(message: unknown, serializer: SerializerSpec): Expected {
  if (typeof message === 'string') return expectedOf({ data: message }, serializer);
  if (message === null || typeof message !== 'object') return { rejected: ['ERR_SSE_INVALID_FIELD'] };
  const { comment, event, id, retry, data } = message as Fields;
  const fieldOk =
    (comment === undefined || typeof comment === 'string') &&
    (event === undefined || (typeof event === 'string' && event !== '' && !/[\r\n]/.test(event))) &&
    (id === undefined || (typeof id === 'string' ? idPolicyAllows(id) : isNonNegativeSafeInteger(id))) &&
    (retry === undefined || isNonNegativeSafeInteger(retry));
  let dataText: string | undefined;
  let dataOk = true;
  if (data !== undefined) {
    if (typeof data === 'string') dataText = data;
    else {
      try {
        const serialized: unknown = (serializerOf(serializer) ?? JSON.stringify)(data);
        if (typeof serialized === 'string') dataText = serialized;
        else dataOk = false;
      } catch {
        dataOk = false;
      }
    }
  }
  if (!fieldOk) return { rejected: dataOk ? ['ERR_SSE_INVALID_FIELD'] : ['ERR_SSE_INVALID_FIELD', 'ERR_SSE_INVALID_DATA'] };
  if (!dataOk) return { rejected: ['ERR_SSE_INVALID_DATA'] };
  const empty = comment === undefined && event === undefined && id === undefined && retry === undefined && data === undefined;
  if (empty) return { rejected: ['ERR_SSE_INVALID_FIELD'] };
  // docs 3.7: data, event or id end the block with a blank line. A client fires an event only
  // when the block has a data line, though (WHATWG: an empty data buffer dispatches nothing), so
  // an id on its own is committed as the last event id but fires no event; and docs 3.3.3 gives
  // every event an empty data line when it has no data.
  const endsBlock = data !== undefined || event !== undefined || id !== undefined;
  const fires = data !== undefined || event !== undefined;
  return {
    rejected: undefined,
    endsBlock,
    decoded: {
      events: fires
        ? [
            {
              id: id === undefined ? undefined : (id as string | number).toString(), // valid by now: a string or a safe integer
              event: event === undefined || event === 'message' ? undefined : event,
              data: (dataText ?? '').replace(/\r\n|\r/g, '\n'),
            },
          ]
        : [],
      comments: comment === undefined ? [] : comment.split(LINE_BREAK),
      // A retry of -0 is written as `0` and read back as 0: the same number of milliseconds.
      retries: retry === undefined ? [] : [retry + 0],
      errors: [],
    },
  };
}

/** Each lone surrogate replaced by U+FFFD, as a UTF-8 encoder writes it; pairs left alone. */
const wellFormed = (value: string) => value.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

function wellFormedDecoded(decoded: Decoded): Decoded {
  return {
    events: decoded.events.map((event) => ({
      id: event.id === undefined ? undefined : wellFormed(event.id),
      event: event.event === undefined ? undefined : wellFormed(event.event),
      data: wellFormed(event.data),
    })),
    comments: decoded.comments.map(wellFormed),
    retries: decoded.retries,
    errors: decoded.errors,
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

function newDecoder() {
  const decoded: Decoded = { events: [], comments: [], retries: [], errors: [] };
  const parser = createParser({
    onEvent: (event) => decoded.events.push(event),
    onComment: (comment) => decoded.comments.push(comment),
    onRetry: (retry) => decoded.retries.push(retry),
    onError: (error) => decoded.errors.push(error.message),
  });
  return { decoded, parser };
}

/** What a client makes of the JavaScript string itself. */
function decodeText(output: string): Decoded {
  const { decoded, parser } = newDecoder();
  parser.feed(output);
  return decoded;
}

/** What a client makes of the UTF-8 bytes, arriving in chunks cut at `cuts` (byte offsets). */
function decodeBytes(output: string, cuts: number[]): Decoded {
  const bytes = Buffer.from(output, 'utf8');
  const offsets = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const { decoded, parser } = newDecoder();
  let from = 0;
  for (const to of [...offsets, bytes.length]) {
    const piece = utf8.decode(bytes.subarray(from, to), { stream: true });
    if (piece !== '') parser.feed(piece);
    from = to;
  }
  const rest = utf8.decode();
  if (rest !== '') parser.feed(rest);
  return decoded;
}

type Attempt = { threw: false; output: string; thrown?: undefined } | { threw: true; output?: undefined; thrown: unknown };

/** Runs `format`, returning its text or the error it threw. */
function attempt(format: () => string): Attempt {
  try {
    return { threw: false, output: format() };
  } catch (thrown) {
    return { threw: true, thrown };
  }
}

/** The text of an attempt that had to succeed; the error itself, rethrown, when it did not. */
function outputOf(result: Attempt): string {
  if (result.threw) throw result.thrown;
  return result.output;
}

function expectSseError(thrown: unknown, codes: readonly SseErrorCode[]): void {
  assert.ok(thrown instanceof SseError, `expected an SseError, got ${String(thrown)}`);
  assert.ok(codes.includes(thrown.code), `expected ${codes.join(' or ')}, got ${thrown.code}: ${thrown.message}`);
  assert.notEqual(thrown.message, '');
}

const byteCuts = fc.array(fc.nat(), { maxLength: 4 });

/** A stream over an in-memory sink, with heartbeats off so that nothing but sends writes. */
function memoryStream(retryMs?: number) {
  const sink = createMemorySink();
  const stream = createSseStreamFromSink(sink, retryMs === undefined ? { keepAliveMs: 0 } : { keepAliveMs: 0, retryMs });
  return { sink, stream };
}

// ---------------------------------------------------------------------------------------------
// Properties

describe('fuzz: formatEvent', () => {
  test(`1. any message is rejected with an SseError or decodes back to exactly itself (${RUNS.roundTrip} runs)`, () => {
    check(
      'roundTrip',
      fc.property(anyMessage, anySerializer, byteCuts, (message, serializer, cuts) => {
        executed.roundTrip++;
        const expected = expectedOf(message, serializer);
        const serialize = serializerOf(serializer);
        const result = attempt(() => formatEvent(message as SseMessage, serialize ? { serialize } : undefined));
        if (expected.rejected) {
          outcomes.rejected++;
          assert.equal(result.output, undefined);
          expectSseError(result.thrown, expected.rejected);
          return;
        }
        outcomes.accepted++;
        const output = outputOf(result);
        // The string itself: lone surrogates are JavaScript characters like any other.
        assert.deepStrictEqual(decodeText(output), expected.decoded);
        // The bytes on the wire: lone surrogates arrive as U+FFFD, and nothing else changes.
        assert.deepStrictEqual(decodeBytes(output, cuts), wellFormedDecoded(expected.decoded));
      }),
    );
  });

  test(`2. the output has no CR, no line that starts with U+FEFF, and only well-formed lines in order (${RUNS.lines} runs)`, () => {
    // comment lines, event, id, retry, data lines, then one blank line when the message dispatches
    const ORDER = /^c*e?i?r?d*b?$/;
    check(
      'lines',
      fc.property(anyMessage, anySerializer, (message, serializer) => {
        executed.lines++;
        const serialize = serializerOf(serializer);
        const result = attempt(() => formatEvent(message as SseMessage, serialize ? { serialize } : undefined));
        if (result.threw) {
          expectSseError(result.thrown, FORMAT_ERROR_CODES);
          return;
        }
        const output = result.output;
        const expected = expectedOf(message, serializer);
        assert.equal(expected.rejected, undefined);
        assert.ok(!output.includes('\r'), JSON.stringify(output));
        assert.ok(output.endsWith('\n'), JSON.stringify(output));
        const lines = output.slice(0, -1).split('\n');
        let shape = '';
        for (const line of lines) {
          assert.ok(!line.startsWith('\uFEFF'), `a line starts with U+FEFF: ${JSON.stringify(output)}`);
          if (line === '') shape += 'b';
          else if (line === ':' || line.startsWith(': ')) shape += 'c';
          else if (line.startsWith('event: ')) shape += 'e';
          else if (line.startsWith('id: ')) shape += 'i';
          else if (line.startsWith('retry: ')) shape += 'r';
          else if (line.startsWith('data: ')) shape += 'd';
          else throw new Error(`Not a field line: ${JSON.stringify(line)} in ${JSON.stringify(output)}`);
        }
        assert.match(shape, ORDER, `fields out of order: ${JSON.stringify(output)}`);
        // Exactly one blank line, the last one, when and only when the message has data, event or id.
        assert.equal(shape.endsWith('b'), !expected.rejected && expected.endsBlock, `blank line: ${JSON.stringify(output)}`);
      }),
    );
  });
});

describe('fuzz: stream.send', () => {
  test(`3. each send is exactly one write and at most one event; a rejected send writes nothing (${RUNS.stream} runs)`, () => {
    check(
      'stream',
      fc.property(
        fc.array(anyMessage, { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat({ max: 100_000 }), { nil: undefined }),
        (messages, retryMs) => {
          executed.stream++;
          const { sink, stream } = memoryStream(retryMs);
          const events: EventSourceMessage[] = [];
          const send = (message: unknown) => stream.send(message as SseMessage);
          for (const message of messages) {
            const chunksBefore = sink.chunks.length;
            const eventsBefore = sink.events.length;
            const wasOpen = stream.opened;
            const expected = expectedOf(message, undefined);
            const result = attempt(() => {
              void send(message);
              return '';
            });
            if (expected.rejected) {
              expectSseError(result.thrown, expected.rejected);
              assert.equal(sink.chunks.length, chunksBefore);
              assert.equal(sink.events.length, eventsBefore);
              assert.equal(stream.opened, wasOpen);
              assert.equal(stream.closed, false);
              continue;
            }
            outputOf(result);
            assert.equal(sink.chunks.length, chunksBefore + 1);
            const prefix = !wasOpen && retryMs !== undefined ? `retry: ${retryMs}\n` : '';
            assert.equal(sink.chunks[chunksBefore], prefix + formatEvent(message as SseMessage));
            assert.equal(sink.events.length, eventsBefore + expected.decoded.events.length);
            events.push(...expected.decoded.events);
            assert.deepStrictEqual(sink.events, events);
          }
          // The stream is still usable, and nothing of an earlier message bleeds into the next.
          const chunksBefore = sink.chunks.length;
          void send({ data: 'after' });
          assert.equal(sink.chunks.length, chunksBefore + 1);
          events.push({ id: undefined, event: undefined, data: 'after' });
          assert.deepStrictEqual(sink.events, events);
          stream.close();
        },
      ),
    );
  });
});

describe('fuzz: comments', () => {
  test(`4. any string comment gives only comment lines, one per line of the input (${RUNS.comments} runs)`, () => {
    check(
      'comments',
      fc.property(fc.oneof({ arbitrary: text(60), weight: 9 }, { arbitrary: notAString, weight: 1 }), byteCuts, (comment, cuts) => {
        executed.comments++;
        if (typeof comment !== 'string') {
          expectSseError(attempt(() => formatComment(comment as string)).thrown, ['ERR_SSE_INVALID_FIELD']);
          expectSseError(attempt(() => formatEvent({ comment } as SseMessage)).thrown, ['ERR_SSE_INVALID_FIELD']);
          return;
        }
        const output = formatComment(comment);
        assert.equal(formatEvent({ comment }), output);
        assert.ok(!output.includes('\r'), JSON.stringify(output));
        const lines = output.slice(0, -1).split('\n');
        assert.ok(output.endsWith('\n'), JSON.stringify(output));
        for (const line of lines) assert.ok(line === ':' || line.startsWith(': '), `not a comment line: ${JSON.stringify(output)}`);
        const expected: Decoded = { events: [], comments: comment.split(LINE_BREAK), retries: [], errors: [] };
        assert.deepStrictEqual(decodeText(output), expected);
        assert.deepStrictEqual(decodeBytes(output, cuts), wellFormedDecoded(expected));
        // Through a stream: one write, and the event after it arrives alone.
        const { sink, stream } = memoryStream();
        void stream.comment(comment);
        void stream.send('after');
        assert.deepStrictEqual(sink.chunks, [output, 'data: after\n\n']);
        assert.deepStrictEqual(sink.events, [{ id: undefined, event: undefined, data: 'after' }]);
        stream.close();
      }),
    );
  });
});

describe('fuzz: retry', () => {
  test(`5. any retry value is rejected, or is a non-negative safe integer that a client reads back (${RUNS.retry} runs)`, () => {
    check(
      'retry',
      fc.property(anyRetry, (retry) => {
        executed.retry++;
        const alone = attempt(() => formatRetry(retry as number));
        const inMessage = attempt(() => formatEvent({ retry } as SseMessage));
        const withData = attempt(() => formatEvent({ retry, data: 'x' } as SseMessage));
        if (!isNonNegativeSafeInteger(retry)) {
          for (const result of [alone, inMessage, withData]) {
            assert.equal(result.output, undefined);
            expectSseError(result.thrown, ['ERR_SSE_INVALID_FIELD']);
          }
          return;
        }
        const [aloneText, inMessageText, withDataText] = [alone, inMessage, withData].map(outputOf) as [string, string, string];
        assert.match(aloneText, /^retry: (0|[1-9][0-9]*)\n$/);
        assert.equal(inMessageText, aloneText);
        assert.equal(withDataText, `${aloneText}data: x\n\n`);
        const decoded = decodeText(aloneText);
        assert.deepStrictEqual(decoded, { events: [], comments: [], retries: [retry + 0], errors: [] });
        // `===`, so -0 and 0 are the same delay; anything else must come back exactly.
        assert.ok(decoded.retries[0] === retry);
        assert.deepStrictEqual(decodeText(withDataText), {
          events: [{ id: undefined, event: undefined, data: 'x' }],
          comments: [],
          retries: [retry + 0],
          errors: [],
        });
      }),
    );
  });
});

describe('fuzz: ids', () => {
  test(`6. isValidEventId, formatEvent and readLastEventId agree on every string (${RUNS.ids} runs)`, () => {
    check(
      'ids',
      fc.property(anyIdString, (id) => {
        executed.ids++;
        const valid = isValidEventId(id);
        assert.equal(valid, idPolicyAllows(id));
        const result = attempt(() => formatEvent({ id, data: 'x' }));
        if (!valid) {
          assert.equal(result.output, undefined);
          expectSseError(result.thrown, ['ERR_SSE_INVALID_FIELD']);
        } else {
          const output = outputOf(result);
          assert.equal(output, `id: ${id}\ndata: x\n\n`);
          assert.deepStrictEqual(decodeText(output).events, [{ id, event: undefined, data: 'x' }]);
        }
        assert.equal(readLastEventId(id), valid && id !== '' ? id : undefined);
        // A header that arrives as an array is never an id.
        assert.equal(readLastEventId([id]), undefined);
      }),
    );
  });
});

test(`the fuzz runs at least ${MIN_TOTAL_RUNS} generated cases`, () => {
  const declared = Object.values(RUNS).reduce((sum, runs) => sum + runs, 0);
  const ran = Object.values(executed).reduce((sum, runs) => sum + runs, 0);
  console.log(
    `fuzz: ${declared} cases declared, ${ran} predicate runs, seed ${seed ?? 'random'}; ` +
      `round trip: ${outcomes.accepted} accepted, ${outcomes.rejected} rejected`,
    executed,
  );
  expect(declared).toBeGreaterThanOrEqual(MIN_TOTAL_RUNS);
  // Every property that passed ran its whole budget. (One that failed reports itself; one that
  // did not run was filtered out with -t.)
  for (const name of passed) expect(executed[name]).toBeGreaterThanOrEqual(RUNS[name]);
});
