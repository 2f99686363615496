/**
 * @ssekit/client types events from the same map a server's channel takes: a listener's data has
 * its event's type, an unknown name is an error, and iteration yields a union to narrow.
 */
import { createChannel } from '@ssekit/core';
import { createEventSource, SseClientError, type ClientEvent, type TypedEventSource } from '@ssekit/client';
import type { Equal, Expect } from './assert.js';

type Events = { price: { symbol: string; value: number }; message: string };

// The server and the client share one map.
const prices = createChannel<Events>();
void prices.publish({ event: 'price', data: { symbol: 'ACME', value: 1 } });

const source = createEventSource<Events>('/prices', {
  headers: async () => ({ authorization: `Bearer ${await Promise.resolve('token')}` }),
  onError: (error) => {
    type _error = Expect<Equal<typeof error, SseClientError>>;
    return error.status === 401 ? false : undefined;
  },
});
type _source = Expect<Equal<typeof source, TypedEventSource<Events>>>;

source.on('price', (data, event) => {
  type _data = Expect<Equal<typeof data, { symbol: string; value: number }>>;
  type _type = Expect<Equal<typeof event.type, 'price'>>;
  type _id = Expect<Equal<typeof event.id, string | undefined>>;
});
source.on('message', (data) => {
  type _data = Expect<Equal<typeof data, string>>;
});
// Every ssekit channel may send reset.
source.on('reset', (data) => {
  type _data = Expect<Equal<typeof data, { lastEventId: string }>>;
});
// @ts-expect-error nope is not an event of Events
source.on('nope', () => {});
// @ts-expect-error value is a number
source.on('price', (data: { symbol: string; value: string }) => void data);

export async function iterate(): Promise<void> {
  for await (const event of source) {
    if (event.type === 'price') {
      type _narrowed = Expect<Equal<typeof event.data, { symbol: string; value: number }>>;
    }
    type _union = Expect<Equal<typeof event, ClientEvent<Events>>>;
  }
}

// Without a map, data is unknown.
const untyped = createEventSource('/events');
untyped.on('anything', (data) => {
  type _data = Expect<Equal<typeof data, unknown>>;
});
