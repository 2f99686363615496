/**
 * The serializer, against WIRE.md: exact bytes for every message shape, what a real parser
 * (`eventsource-parser`) decodes from them, and a synchronous `SseError` for every field that
 * could forge others. Pure functions: no I/O, no timers.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { formatComment, formatEvent, formatRetry, SseError, type SseErrorCode, type SseMessage } from '@ssekit/core';
import { createSseStreamFromSink, type SseSink } from '@ssekit/core/adapter';

/** What a spec-following client makes of `text`: its events, comments, retries and errors. */
function decode(text: string) {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const errors: string[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (retry) => retries.push(retry),
    onError: (error) => errors.push(error.message),
  });
  parser.feed(text);
  return { events, comments, retries, errors };
}

/** Runs `format` and reports both what it returned and what it threw. */
function attempt(format: () => string): { returned: string | undefined; thrown: unknown } {
  let returned: string | undefined;
  try {
    returned = format();
    return { returned, thrown: undefined };
  } catch (thrown) {
    return { returned, thrown };
  }
}

function expectSseError(format: () => string, code: SseErrorCode): SseError {
  const { returned, thrown } = attempt(format);
  expect(returned).toBeUndefined();
  expect(thrown).toBeInstanceOf(SseError);
  const error = thrown as SseError;
  expect(error.name).toBe('SseError');
  expect(error.code).toBe(code);
  expect(error.message).not.toBe('');
  return error;
}

const normalise = (text: string) => text.replace(/\r\n|\r/g, '\n');

// Messages typed loosely on purpose: the rows probe what the runtime does with any input.
type AnyMessage = SseMessage | string;

describe('formatEvent: exact output', () => {
  const rows: Array<{ name: string; message: AnyMessage; text: string }> = [
    // data
    { name: 'plain data', message: { data: 'hello' }, text: 'data: hello\n\n' },
    { name: 'data with LF', message: { data: 'a\nb' }, text: 'data: a\ndata: b\n\n' },
    { name: 'data with CR', message: { data: 'a\rb' }, text: 'data: a\ndata: b\n\n' },
    { name: 'data with CRLF', message: { data: 'a\r\nb' }, text: 'data: a\ndata: b\n\n' },
    { name: 'data with mixed breaks', message: { data: 'a\r\nb\rc\nd' }, text: 'data: a\ndata: b\ndata: c\ndata: d\n\n' },
    { name: 'data with LF then CR (two breaks)', message: { data: 'a\n\rb' }, text: 'data: a\ndata: \ndata: b\n\n' },
    { name: 'data with a blank line inside', message: { data: 'a\n\nb' }, text: 'data: a\ndata: \ndata: b\n\n' },
    { name: 'data with a trailing LF', message: { data: 'a\n' }, text: 'data: a\ndata: \n\n' },
    { name: 'data with a trailing CRLF', message: { data: 'a\r\n' }, text: 'data: a\ndata: \n\n' },
    { name: 'data with a trailing CR', message: { data: 'a\r' }, text: 'data: a\ndata: \n\n' },
    { name: 'data that is only a line break', message: { data: '\n' }, text: 'data: \ndata: \n\n' },
    { name: 'data with a leading space', message: { data: ' x' }, text: 'data:  x\n\n' },
    { name: 'data with leading and trailing spaces', message: { data: '  x  ' }, text: 'data:   x  \n\n' },
    { name: 'data with a leading space on a later line', message: { data: 'a\n b' }, text: 'data: a\ndata:  b\n\n' },
    { name: 'empty string data', message: { data: '' }, text: 'data: \n\n' },
    {
      name: 'data that looks like fields stays data',
      message: { data: 'x\n\nevent: evil\nid: 666' },
      text: 'data: x\ndata: \ndata: event: evil\ndata: id: 666\n\n',
    },
    // non-string data goes through JSON
    { name: 'object data as JSON', message: { data: { n: 1, s: 'a' } }, text: 'data: {"n":1,"s":"a"}\n\n' },
    { name: 'array data as JSON', message: { data: [1, 'a'] }, text: 'data: [1,"a"]\n\n' },
    { name: 'number data as JSON', message: { data: 0 }, text: 'data: 0\n\n' },
    { name: 'boolean data as JSON', message: { data: false }, text: 'data: false\n\n' },
    { name: 'null data as JSON', message: { data: null }, text: 'data: null\n\n' },
    { name: 'a line break inside JSON is escaped, one line', message: { data: { s: 'a\r\nb' } }, text: 'data: {"s":"a\\r\\nb"}\n\n' },
    // Unicode passes through unchanged
    { name: 'emoji data', message: { data: 'hi 🎉' }, text: 'data: hi 🎉\n\n' },
    { name: 'U+2028 data is not a line break', message: { data: 'a\u2028b' }, text: 'data: a\u2028b\n\n' },
    { name: 'U+0085 data is not a line break', message: { data: 'a\u0085b' }, text: 'data: a\u0085b\n\n' },
    { name: 'NUL in data', message: { data: 'a\0b' }, text: 'data: a\0b\n\n' },
    { name: 'BOM inside data', message: { data: 'a\uFEFFb' }, text: 'data: a\uFEFFb\n\n' },
    { name: 'BOM at the start of data, after the field name', message: { data: '\uFEFFx' }, text: 'data: \uFEFFx\n\n' },
    // event
    { name: 'named event', message: { event: 'tick', data: 'x' }, text: 'event: tick\ndata: x\n\n' },
    { name: 'event "message" is omitted', message: { event: 'message', data: 'x' }, text: 'data: x\n\n' },
    { name: 'event with no data gets an empty data line', message: { event: 'ping' }, text: 'event: ping\ndata: \n\n' },
    { name: 'event "message" with no data', message: { event: 'message' }, text: 'data: \n\n' },
    { name: 'event with a NUL is not a line break', message: { event: 'a\0b', data: 'x' }, text: 'event: a\0b\ndata: x\n\n' },
    // id
    { name: 'string id', message: { id: 'abc', data: 'x' }, text: 'id: abc\ndata: x\n\n' },
    { name: 'number id', message: { id: 42, data: 'x' }, text: 'id: 42\ndata: x\n\n' },
    { name: 'number id 0', message: { id: 0, data: 'x' }, text: 'id: 0\ndata: x\n\n' },
    { name: 'largest safe integer id', message: { id: Number.MAX_SAFE_INTEGER, data: 'x' }, text: 'id: 9007199254740991\ndata: x\n\n' },
    { name: 'empty id clears the last id', message: { id: '', data: 'x' }, text: 'id: \ndata: x\n\n' },
    { name: 'id alone still ends the event', message: { id: '7' }, text: 'id: 7\n\n' },
    { name: 'empty id alone', message: { id: '' }, text: 'id: \n\n' },
    { name: 'id with an inner space', message: { id: 'a b', data: 'x' }, text: 'id: a b\ndata: x\n\n' },
    { name: 'id of 128 characters', message: { id: 'i'.repeat(128), data: 'x' }, text: `id: ${'i'.repeat(128)}\ndata: x\n\n` },
    // comment and retry
    { name: 'comment only: no blank line', message: { comment: 'hi' }, text: ': hi\n' },
    { name: 'empty comment only', message: { comment: '' }, text: ':\n' },
    { name: 'multi-line comment', message: { comment: 'a\nb\r\nc\rd' }, text: ': a\n: b\n: c\n: d\n' },
    { name: 'retry only: no blank line', message: { retry: 1000 }, text: 'retry: 1000\n' },
    { name: 'retry 0', message: { retry: 0 }, text: 'retry: 0\n' },
    { name: 'comment and retry: no blank line', message: { comment: 'bye', retry: 5 }, text: ': bye\nretry: 5\n' },
    { name: 'comment with data', message: { comment: 'c', data: 'd' }, text: ': c\ndata: d\n\n' },
    { name: 'undefined data is no data', message: { comment: 'c', data: undefined }, text: ': c\n' },
    // every field, in the order comment, event, id, retry, data
    {
      name: 'full message',
      message: { data: 'd1\nd2', retry: 3000, id: '9', event: 'update', comment: 'c1\nc2' },
      text: ': c1\n: c2\nevent: update\nid: 9\nretry: 3000\ndata: d1\ndata: d2\n\n',
    },
    // the string shorthand is the data of a default event
    { name: 'string shorthand', message: 'text', text: 'data: text\n\n' },
    { name: 'string shorthand with CRLF', message: 'a\r\nb', text: 'data: a\ndata: b\n\n' },
    { name: 'empty string shorthand', message: '', text: 'data: \n\n' },
  ];

  test.each(rows)('$name', ({ message, text }) => {
    expect(formatEvent(message)).toBe(text);
  });

  test.each(rows)('never writes a CR byte: $name', ({ message }) => {
    expect(formatEvent(message)).not.toContain('\r');
  });
});

describe('formatEvent: what a client decodes', () => {
  const dataRows: Array<{ name: string; data: string }> = [
    { name: 'plain', data: 'hello' },
    { name: 'leading space', data: ' x' },
    { name: 'two leading spaces and trailing ones', data: '  x  ' },
    { name: 'only spaces', data: '   ' },
    { name: 'leading tab', data: '\tx' },
    { name: 'leading colon', data: ': not a comment' },
    { name: 'LF', data: 'a\nb' },
    { name: 'CR', data: 'a\rb' },
    { name: 'CRLF', data: 'a\r\nb' },
    { name: 'mixed breaks', data: 'a\r\nb\rc\nd\n\re' },
    { name: 'trailing LF', data: 'a\n' },
    { name: 'trailing CRLF', data: 'a\r\n' },
    { name: 'leading LF', data: '\na' },
    { name: 'only a line break', data: '\n' },
    { name: 'empty string', data: '' },
    { name: 'fields inside data', data: 'x\n\nevent: evil\nid: 666\nretry: 1' },
    { name: 'emoji', data: '🎉 ok' },
    { name: 'U+2028 and U+2029', data: 'a\u2028b\u2029c' },
    { name: 'U+0085', data: 'a\u0085b' },
    { name: 'NUL', data: 'a\0b' },
    { name: 'BOM inside', data: 'a\uFEFFb' },
    { name: 'BOM first', data: '\uFEFFx' },
  ];

  test.each(dataRows)('data survives: $name', ({ data }) => {
    const { events, errors } = decode(formatEvent({ data }));
    expect(errors).toEqual([]);
    expect(events).toEqual([{ id: undefined, event: undefined, data: normalise(data) }]);
  });

  test.each(dataRows)('string shorthand decodes like { data }: $name', ({ data }) => {
    expect(decode(formatEvent(data))).toEqual(decode(formatEvent({ data })));
  });

  test.each([
    { name: 'object', data: { n: 1, text: 'line\r\nbreak', nested: [null, true] } },
    { name: 'array', data: [1, 'two', { three: 3 }] },
    { name: 'number', data: -1.5 },
    { name: 'null', data: null },
  ])('JSON data round-trips: $name', ({ data }) => {
    const { events } = decode(formatEvent({ data }));
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.data)).toEqual(data);
  });

  test('a named event with an id reaches the client whole', () => {
    const { events, retries, comments } = decode(
      formatEvent({ comment: 'note', event: 'update', id: 'v-1', retry: 2500, data: ' a\r\nb' }),
    );
    expect(events).toEqual([{ event: 'update', id: 'v-1', data: ' a\nb' }]);
    expect(retries).toEqual([2500]);
    expect(comments).toEqual(['note']);
  });

  test('an event with no data still dispatches, with empty data', () => {
    expect(decode(formatEvent({ event: 'ping' })).events).toEqual([{ id: undefined, event: 'ping', data: '' }]);
  });

  test('a comment or retry alone never dispatches, so the next event arrives alone', () => {
    const text = formatEvent({ comment: 'a\nb' }) + formatEvent({ retry: 10 }) + formatEvent({ data: 'next' });
    const { events, comments, retries } = decode(text);
    expect(events).toEqual([{ id: undefined, event: undefined, data: 'next' }]);
    expect(comments).toEqual(['a', 'b']);
    expect(retries).toEqual([10]);
  });
});

describe('formatEvent: serializer', () => {
  test('a custom serialize turns non-string data into text', () => {
    const serialize = jest.fn((data: unknown) => `<${String((data as { n: number }).n)}>`);
    expect(formatEvent({ data: { n: 5 } }, { serialize })).toBe('data: <5>\n\n');
    expect(serialize).toHaveBeenCalledTimes(1);
    expect(serialize).toHaveBeenCalledWith({ n: 5 });
  });

  test('a custom serialize may return line breaks: they are split', () => {
    expect(formatEvent({ data: 1 }, { serialize: () => 'a\r\nb\rc' })).toBe('data: a\ndata: b\ndata: c\n\n');
  });

  test('string data never goes through serialize', () => {
    const serialize = jest.fn(() => 'serialized');
    expect(formatEvent({ data: 'raw' }, { serialize })).toBe('data: raw\n\n');
    expect(formatEvent('raw', { serialize })).toBe('data: raw\n\n');
    expect(serialize).not.toHaveBeenCalled();
  });

  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const boom = new Error('boom');

  test.each([
    { name: 'JSON of a function (undefined)', data: () => 1, serialize: undefined },
    { name: 'JSON of a symbol (undefined)', data: Symbol('s'), serialize: undefined },
    { name: 'custom returning a number', data: {}, serialize: () => 42 },
    { name: 'custom returning null', data: {}, serialize: () => null },
    { name: 'custom returning undefined', data: {}, serialize: () => undefined },
    { name: 'custom returning an object', data: {}, serialize: () => ({ s: 'x' }) },
  ])('a serializer that returns a non-string throws ERR_SSE_INVALID_DATA: $name', ({ data, serialize }) => {
    const options = { serialize: serialize as unknown as (data: unknown) => string };
    expectSseError(() => formatEvent({ data }, serialize ? options : undefined), 'ERR_SSE_INVALID_DATA');
  });

  test.each([
    { name: 'JSON of a BigInt', data: 1n, serialize: undefined, cause: TypeError },
    { name: 'JSON of a circular object', data: circular, serialize: undefined, cause: TypeError },
    {
      name: 'custom serializer that throws',
      data: { ok: true },
      serialize: () => {
        throw boom;
      },
      cause: Error,
    },
  ])('a serializer that throws gives ERR_SSE_INVALID_DATA with the cause: $name', ({ data, serialize, cause }) => {
    const error = expectSseError(() => formatEvent({ data }, serialize ? { serialize } : undefined), 'ERR_SSE_INVALID_DATA');
    expect(error.cause).toBeInstanceOf(cause);
    if (serialize) expect(error.cause).toBe(boom);
  });
});

describe('formatEvent: fields that could forge others throw and return nothing', () => {
  const rows: Array<{ name: string; message: unknown }> = [
    // event
    { name: 'event with LF', message: { event: 'a\nb', data: 'x' } },
    { name: 'event with CR', message: { event: 'a\rb', data: 'x' } },
    { name: 'event with CRLF', message: { event: 'a\r\nb', data: 'x' } },
    { name: 'event forging a data line', message: { event: 'x\ndata: forged', data: 'x' } },
    { name: 'event with a trailing LF', message: { event: 'x\n' } },
    { name: 'empty event', message: { event: '', data: 'x' } },
    { name: 'number event', message: { event: 1, data: 'x' } },
    { name: 'null event', message: { event: null, data: 'x' } },
    { name: 'object event', message: { event: { toString: () => 'x' }, data: 'x' } },
    // id
    { name: 'id with LF', message: { id: 'a\nb', data: 'x' } },
    { name: 'id with CR', message: { id: 'a\rb', data: 'x' } },
    { name: 'id with CRLF', message: { id: 'a\r\nb', data: 'x' } },
    { name: 'id forging an event line', message: { id: '1\nevent: evil', data: 'x' } },
    { name: 'id with NUL', message: { id: 'a\0b', data: 'x' } },
    { name: 'id with a leading space', message: { id: ' a', data: 'x' } },
    { name: 'id with a trailing space', message: { id: 'a ', data: 'x' } },
    { name: 'id that is one space', message: { id: ' ', data: 'x' } },
    { name: 'id with a tab', message: { id: 'a\tb', data: 'x' } },
    { name: 'id with DEL', message: { id: 'a\x7fb', data: 'x' } },
    { name: 'id with é', message: { id: 'café', data: 'x' } },
    { name: 'id with an emoji', message: { id: 'id-🎉', data: 'x' } },
    { name: 'id of 129 characters', message: { id: 'i'.repeat(129), data: 'x' } },
    { name: 'negative number id', message: { id: -1, data: 'x' } },
    { name: 'non-integer number id', message: { id: 1.5, data: 'x' } },
    { name: 'NaN id', message: { id: NaN, data: 'x' } },
    { name: 'Infinity id', message: { id: Infinity, data: 'x' } },
    { name: 'unsafe integer id', message: { id: 2 ** 53, data: 'x' } },
    { name: 'boolean id', message: { id: true, data: 'x' } },
    { name: 'null id', message: { id: null, data: 'x' } },
    { name: 'bigint id', message: { id: 1n, data: 'x' } },
    // retry
    { name: 'retry -1', message: { retry: -1 } },
    { name: 'retry 1.5', message: { retry: 1.5 } },
    { name: 'retry NaN', message: { retry: NaN } },
    { name: 'retry as the string "1000"', message: { retry: '1000' } },
    { name: 'retry Infinity', message: { retry: Infinity } },
    { name: 'retry null', message: { retry: null, data: 'x' } },
    // comment
    { name: 'number comment', message: { comment: 5 } },
    { name: 'null comment', message: { comment: null, data: 'x' } },
    // the message itself
    { name: 'empty message {}', message: {} },
    { name: 'message with only undefined fields', message: { data: undefined, event: undefined, id: undefined } },
    { name: 'null message', message: null },
    { name: 'undefined message', message: undefined },
    { name: 'number message', message: 42 },
    { name: 'boolean message', message: true },
  ];

  test.each(rows)('$name', ({ message }) => {
    expectSseError(() => formatEvent(message as AnyMessage), 'ERR_SSE_INVALID_FIELD');
  });
});

describe('formatComment', () => {
  test.each([
    { name: 'no argument is a bare colon', args: [], text: ':\n' },
    { name: 'empty string', args: [''], text: ':\n' },
    { name: 'one line', args: ['ping'], text: ': ping\n' },
    { name: 'leading space kept', args: [' x'], text: ':  x\n' },
    { name: 'LF splits', args: ['a\nb'], text: ': a\n: b\n' },
    { name: 'CR and CRLF split', args: ['a\rb\r\nc'], text: ': a\n: b\n: c\n' },
    { name: 'empty lines become bare colons', args: ['a\n\nb\n'], text: ': a\n:\n: b\n:\n' },
    { name: 'a forged event stays a comment', args: ['x\n\ndata: forged'], text: ': x\n:\n: data: forged\n' },
  ])('$name', ({ args, text }) => {
    const output = formatComment(...(args as [string?]));
    expect(output).toBe(text);
    expect(output).not.toContain('\r');
    expect(output.endsWith('\n\n')).toBe(false);
    expect(decode(output).events).toEqual([]);
  });

  test.each([
    { name: 'number', text: 5 },
    { name: 'null', text: null },
    { name: 'object', text: { toString: () => 'x' } },
  ])('a non-string comment throws ERR_SSE_INVALID_FIELD: $name', ({ text }) => {
    expectSseError(() => formatComment(text as unknown as string), 'ERR_SSE_INVALID_FIELD');
  });
});

describe('formatRetry', () => {
  test.each([
    { name: 'zero', ms: 0, text: 'retry: 0\n' },
    { name: 'one second', ms: 1000, text: 'retry: 1000\n' },
    { name: 'negative zero writes 0', ms: -0, text: 'retry: 0\n' },
    { name: 'largest safe integer', ms: Number.MAX_SAFE_INTEGER, text: 'retry: 9007199254740991\n' },
  ])('$name', ({ ms, text }) => {
    const output = formatRetry(ms);
    expect(output).toBe(text);
    expect(decode(output)).toEqual({ events: [], comments: [], retries: [Number(text.slice(7, -1))], errors: [] });
  });

  test.each([
    { name: '-1', ms: -1 },
    { name: '1.5', ms: 1.5 },
    { name: 'NaN', ms: NaN },
    { name: 'Infinity', ms: Infinity },
    { name: 'unsafe integer', ms: 2 ** 53 },
    { name: 'the string "1000"', ms: '1000' },
    { name: 'undefined', ms: undefined },
  ])('throws ERR_SSE_INVALID_FIELD: $name', ({ ms }) => {
    expectSseError(() => formatRetry(ms as number), 'ERR_SSE_INVALID_FIELD');
  });
});

describe("stream.send('text') shorthand", () => {
  function recordingSink() {
    const chunks: string[] = [];
    const sink: SseSink = {
      lastEventIdHeader: undefined,
      closedBy: undefined,
      headersSent: false,
      bufferedBytes: 0,
      open(_headers, firstChunk) {
        if (firstChunk !== undefined) chunks.push(firstChunk);
        return true;
      },
      write(chunk) {
        chunks.push(chunk);
        return true;
      },
      reject() {},
      onceDrain() {},
      offDrain() {},
      onClose() {},
      end() {},
      destroy() {},
    };
    return { sink, chunks };
  }

  test.each([
    { name: 'plain', text: 'text' },
    { name: 'CRLF', text: 'a\r\nb' },
    { name: 'leading space', text: ' x' },
    { name: 'empty', text: '' },
  ])('writes exactly formatEvent(text): $name', async ({ text }) => {
    const { sink, chunks } = recordingSink();
    const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
    await expect(stream.send(text)).resolves.toBe(true);
    await expect(stream.send({ data: text })).resolves.toBe(true);
    stream.close();
    expect(chunks).toEqual([formatEvent(text), formatEvent(text)]);
  });

  test('an invalid message throws synchronously and writes nothing', () => {
    const { sink, chunks } = recordingSink();
    const stream = createSseStreamFromSink(sink, { keepAliveMs: 0 });
    let result: Promise<boolean> | undefined;
    expect(() => {
      result = stream.send({ event: 'a\nb', data: 'x' });
    }).toThrow(SseError);
    expect(result).toBeUndefined();
    expect(chunks).toEqual([]);
    expect(stream.opened).toBe(false);
    stream.close();
  });
});
