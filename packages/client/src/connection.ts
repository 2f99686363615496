import { createParser } from 'eventsource-parser';
import { SseClientError } from './errors.js';
import type { Hub } from './hub.js';
import type { EventSourceOptions, PerConnect } from './types.js';

const DEFAULT_MIN_MS = 1000;
const DEFAULT_MAX_MS = 30_000;
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
const DEFAULT_MAX_EVENT_LENGTH = 16 * 1024 * 1024;
const EVENT_STREAM = /^text\/event-stream\b/i;

const resolve = <T>(value: PerConnect<T>): T | Promise<T> => (typeof value === 'function' ? (value as () => T | Promise<T>)() : value);

/** Milliseconds to wait from a `Retry-After` header: delta seconds, or an HTTP date. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const ms = /^\d+$/.test(header) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.max(0, ms) : undefined;
}

/** How the default policy treats a response that did not open the stream. */
function httpError(response: Response): SseClientError & { retryAfterMs?: number } {
  const { status } = response;
  const retryable = status === 429 || status >= 500;
  const error: SseClientError & { retryAfterMs?: number } = new SseClientError('ERR_SSE_CLIENT_HTTP', `HTTP ${status}`, {
    status,
    retryable,
  });
  // Honoured on any status that is retried: RFC 9110 defines it for 503 and 429 only, yet a 502
  // or 500 that sends it knows best when to come back too.
  error.retryAfterMs = retryAfterMs(response.headers.get('retry-after'));
  return error;
}

/**
 * Reads the stream at `url` into `hub`, and reconnects as the WHATWG processing model says,
 * with backoff: until the hub ends. Returns a function that stops it without ending the hub
 * (a tab that hands its connection over).
 */
export function connect(url: string, options: EventSourceOptions<any>, hub: Hub): () => void {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const minMs = options.retry?.minMs ?? DEFAULT_MIN_MS;
  const maxMs = options.retry?.maxMs ?? DEFAULT_MAX_MS;
  const jitter = options.retry?.jitter ?? true;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  let baseMs = minMs;
  let failures = 0;
  let stopped = false;
  let attempt: AbortController | undefined;
  let backoff: ReturnType<typeof setTimeout> | undefined;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let eventTooLarge = false;
  /** The `retry:` of the current response, or 0 when it sent none (or 0: the same wait, none). */
  let retryField = 0;
  // A function, not a check inline: the hub's state changes across every await below.
  const done = () => stopped || hub.state === 'closed';

  const parser = createParser({
    // As the spec tracks it: a block's id is committed at its blank line, event or not.
    onId: (id) => void (hub.lastEventId = id),
    onRetry: (ms) => void (baseMs = retryField = ms),
    onEvent: (message) => hub.emit(message.event ?? 'message', message.data, message.id),
    onError: (error) => void (eventTooLarge ||= error.type === 'max-buffer-size-exceeded'),
    maxBufferSize: options.maxEventLength ?? DEFAULT_MAX_EVENT_LENGTH,
  });

  // No byte for idleTimeoutMs after the request or after the last chunk: the connection is
  // dead (a half-open TCP connection never says so), though its stream would wait forever.
  const touch = (controller: AbortController) => {
    if (!idleTimeoutMs) return;
    clearTimeout(idle);
    idle = setTimeout(
      () => controller.abort(new SseClientError('ERR_SSE_CLIENT_IDLE', `Idle for ${idleTimeoutMs} ms`, { retryable: true })),
      idleTimeoutMs,
    );
  };

  const stop = () => {
    stopped = true;
    clearTimeout(backoff);
    clearTimeout(idle);
    attempt?.abort();
  };

  const fail = (error: SseClientError & { retryAfterMs?: number }) => {
    const verdict = options.onError?.(error);
    if (verdict === false || (verdict !== true && !error.retryable)) return hub.end(error);
    reconnect(error.retryAfterMs);
  };

  /** `serverMs`: the wait the server asked for; `exact` when it spread its clients itself. */
  const reconnect = (serverMs?: number, exact?: boolean) => {
    if (done()) return;
    hub.setState('connecting');
    // Full jitter: each client waits anywhere up to the current bound, so that clients cut at
    // once come back spread out instead of as one storm.
    const bound = Math.min(maxMs, baseMs * 2 ** failures++); // past 2 ** 1023 it is Infinity: still maxMs
    const wait = jitter ? Math.random() * bound : bound;
    backoff = setTimeout(open, serverMs === undefined ? wait : serverMs + (jitter && !exact ? Math.random() * baseMs : 0));
  };

  const read = async (body: ReadableStream<Uint8Array>, controller: AbortController) => {
    // No releaseLock: the attempt's abort ends the body, and the reader with it.
    const reader = body.getReader();
    const decoder = new TextDecoder();
    parser.reset();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      touch(controller);
      parser.feed(decoder.decode(value, { stream: true }));
      if (eventTooLarge) throw new SseClientError('ERR_SSE_CLIENT_EVENT_TOO_LARGE', 'An event over maxEventLength');
    }
  };

  async function open(): Promise<void> {
    if (done()) return;
    const controller = (attempt = new AbortController());
    touch(controller);
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', ...(await resolve(options.headers ?? {})) };
      if (hub.lastEventId) headers['last-event-id'] = hub.lastEventId;
      const body = await resolve(options.body ?? null);
      const response = await fetchImpl(url, {
        method: options.method, // fetch's default is GET
        headers,
        body,
        credentials: options.credentials,
        cache: 'no-store',
        signal: controller.signal,
      });
      // The spec: 204 tells the client to stop.
      if (response.status === 204) return hub.end();
      if (response.status !== 200) throw httpError(response);
      if (!EVENT_STREAM.test(response.headers.get('content-type') ?? '') || !response.body) {
        throw new SseClientError('ERR_SSE_CLIENT_CONTENT_TYPE', 'Not text/event-stream', { status: 200 });
      }
      failures = retryField = 0;
      hub.setState('open');
      options.onOpen?.(response);
      await read(response.body, controller);
      // The server ended the stream: not an error; the spec reconnects. A 200 with Retry-After
      // is a server at its admission cap that deferred us (ssekit's admission does): it gave
      // each client its own time, jitter included, most exactly in `retry:`.
      const deferredMs = retryAfterMs(response.headers.get('retry-after'));
      reconnect(deferredMs && (retryField || deferredMs), true);
    } catch (error) {
      if (done()) return;
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : error;
      fail(
        reason instanceof SseClientError
          ? reason
          : new SseClientError('ERR_SSE_CLIENT_NETWORK', 'The connection failed.', { retryable: true, cause: error }),
      );
    } finally {
      clearTimeout(idle);
      controller.abort();
    }
  }

  hub.onEnd(stop);
  void open();
  return stop;
}
