/**
 * A Cloudflare Worker's whole use of ssekit, type-checked with no Node types at all (see
 * tsconfig.json here): a channel, a group with a limit keyed by the Fetch Request, a response.
 */
import { createChannel, createSseResponse, createStreamGroup } from '@ssekit/web';

const prices = createChannel<{ price: { value: number } }>();
const streams = createStreamGroup({ limit: { max: 3, key: (request: Request) => request.headers.get('cf-connecting-ip') ?? '' } });

export default {
  fetch(request: Request): Response {
    if (!request.headers.get('authorization')) return new Response('who are you?', { status: 401 });
    return createSseResponse(request, (stream) => prices.subscribe(stream), { group: streams, keepAliveMs: 15_000 });
  },
};
