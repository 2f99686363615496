import { connect } from './connection.js';
import { SseClientError } from './errors.js';
import { createHub } from './hub.js';
import type { ClientEventMap, EventSourceOptions, TypedEventSource } from './types.js';

export { SseClientError, type SseClientErrorCode } from './errors.js';
export type {
  BuiltInEvents,
  ClientEvent,
  ClientEventMap,
  EventName,
  EventSourceOptions,
  EventsOf,
  PerConnect,
  SourceState,
  TypedEventSource,
} from './types.js';

const isCount = (value: unknown, least = 0): boolean => value === undefined || (Number.isSafeInteger(value) && (value as number) >= least);

// Kept short: every byte here is in every page that uses the client. TypeScript checks the
// types; this checks what it cannot, the ranges.
function check({ retry = {}, idleTimeoutMs, maxEventLength, share }: EventSourceOptions<any>): void {
  const bad = !(isCount(retry.minMs) && isCount(retry.maxMs) && (retry.minMs ?? 0) <= (retry.maxMs ?? Infinity))
    ? 'retry'
    : !isCount(idleTimeoutMs)
      ? 'idleTimeoutMs'
      : !isCount(maxEventLength, 1)
        ? 'maxEventLength'
        : share !== undefined && (share !== 'tabs' || !globalThis.navigator?.locks)
          ? 'share'
          : undefined;
  if (bad) throw new SseClientError('ERR_SSE_CLIENT_OPTION', `Invalid option: ${bad}`);
}

/**
 * Opens an event stream with `fetch` and keeps it open: typed events, auth headers on every
 * reconnect, resume with `Last-Event-ID`, backoff with jitter, a watchdog for dead connections.
 * Connects at once.
 *
 * @example
 * ```ts
 * import { createEventSource } from '@ssekit/client';
 * import type { Events } from './events'; // the map the server's createChannel<Events>() takes
 *
 * const source = createEventSource<Events>('/prices', {
 *   headers: async () => ({ authorization: `Bearer ${await token()}` }),
 * });
 * source.on('price', (data) => render(data.symbol, data.value));
 * source.on('reset', () => refetchEverything());
 * ```
 * @throws {SseClientError} `ERR_SSE_CLIENT_OPTION` on an invalid option.
 */
export function createEventSource<TEvents extends ClientEventMap = ClientEventMap>(
  url: string | URL,
  options: EventSourceOptions<TEvents> = {},
): TypedEventSource<TEvents> {
  check(options);
  const href = String(url);
  const { source, hub } = createHub<TEvents>(href, options);
  const { signal } = options;
  if (signal) {
    const abort = () => source.close();
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    hub.onEnd(() => signal.removeEventListener('abort', abort));
  }
  if (options.share === 'tabs') {
    // Loaded only by a source that shares: the code stays out of every other bundle.
    void import('./tabs.js').then(({ shareAcrossTabs }) => {
      if (hub.state !== 'closed') shareAcrossTabs(new URL(href, globalThis.location?.href).href, options, hub);
    });
  } else {
    connect(href, options, hub);
  }
  return source;
}
