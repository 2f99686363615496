/**
 * Typed event maps: `send` checks each event name against its payload, and the string
 * shorthand exists only when the `message` event carries a string.
 */
import type { SseDefaultData, SseMessage, SseStream } from '@ssekit/core';
import type { SseShorthand } from '@ssekit/core/adapter';
import type { Equal, Expect } from './assert.js';

type Events = { tick: { n: number }; message: string };
declare const stream: SseStream<Events>;

// Named events take exactly their payload.
void stream.send({ event: 'tick', data: { n: 1 } });
void stream.send({ event: 'tick', data: { n: 1 }, id: 7, retry: 1000, comment: 'c' });
// `data` may be left out: the event goes out with empty data.
void stream.send({ event: 'tick' });
// @ts-expect-error tick carries { n: number }, not a string
void stream.send({ event: 'tick', data: 'x' });
// @ts-expect-error tick carries { n: number }: n must be a number
void stream.send({ event: 'tick', data: { n: '1' } });
// @ts-expect-error nope is not an event of the map
void stream.send({ event: 'nope', data: 1 });

// The default event, with or without its name.
void stream.send('hi');
void stream.send({ data: 'hi' });
void stream.send({ event: 'message', data: 'hi' });
// @ts-expect-error message carries a string
void stream.send({ data: 1 });
// @ts-expect-error message carries a string
void stream.send({ event: 'message', data: { n: 1 } });
// @ts-expect-error send needs a message
void stream.send();

// The stream's other members keep their types.
type _sendReturns = Expect<Equal<ReturnType<typeof stream.send>, Promise<boolean>>>;
type _lastEventId = Expect<Equal<typeof stream.lastEventId, string | undefined>>;
type _shorthandOn = Expect<Equal<SseShorthand<Events>, string>>;
type _defaultData = Expect<Equal<SseDefaultData<Events>, string>>;
void stream.pipe([{ event: 'tick', data: { n: 2 } }, 'also a message']);
// @ts-expect-error a piped source is checked like send
void stream.pipe([{ event: 'tick', data: 'x' }]);

// A map without `message`: no shorthand and no unnamed data.
type NoMessage = { tick: { n: number } };
declare const strict: SseStream<NoMessage>;
void strict.send({ event: 'tick', data: { n: 1 } });
// @ts-expect-error there is no string `message` event, so no shorthand
void strict.send('hi');
// @ts-expect-error there is no `message` event to carry unnamed data
void strict.send({ data: 'hi' });
type _shorthandOff = Expect<Equal<SseShorthand<NoMessage>, never>>;

// A `message` event that is not a string: unnamed data is typed, the shorthand is gone.
type NumberMessage = { message: number };
declare const numbers: SseStream<NumberMessage>;
void numbers.send({ data: 1 });
// @ts-expect-error message carries a number, so no string shorthand
void numbers.send('1');

// The default stream accepts anything.
declare const loose: SseStream;
void loose.send('hi');
void loose.send({ data: { any: ['thing'] } });
void loose.send({ event: 'whatever', data: 1, id: 'a' });
void loose.send({ comment: 'only a comment' });
// @ts-expect-error id is a string or a number
void loose.send({ data: 1, id: true });
// @ts-expect-error retry is a number
void loose.send({ data: 1, retry: '1000' });
// @ts-expect-error event names are strings
void loose.send({ event: 1, data: 1 });
type _defaultIsMap = Expect<Equal<SseStream, SseStream<Record<string, unknown>>>>;

// SseMessage on its own follows the same map.
const ok: SseMessage<Events> = { event: 'tick', data: { n: 3 } };
// @ts-expect-error tick carries { n: number }
const wrong: SseMessage<Events> = { event: 'tick', data: 3 };
void ok;
void wrong;
