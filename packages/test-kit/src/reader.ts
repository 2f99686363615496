import http from 'node:http';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One SSE response, read incrementally by a real parser over a real socket. */
export interface SseReader {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** Every dispatched event, in order. */
  readonly events: EventSourceMessage[];
  /** Every comment line's text, in order. */
  readonly comments: string[];
  /** Every `retry` value the parser applied. */
  readonly retries: number[];
  /**
   * The id a browser would send back as Last-Event-ID: the last `id` of a completed block,
   * including an id-only block that dispatched no event.
   */
  readonly lastEventId: () => string | undefined;
  /** The exact bytes received, decoded as UTF-8. */
  readonly text: () => string;
  /** Resolves once `count` events have arrived; rejects after `timeoutMs` in which nothing arrived. */
  waitForEvents(count: number, timeoutMs?: number): Promise<EventSourceMessage[]>;
  /** Resolves once `predicate` holds over what arrived; rejects after `timeoutMs` in which nothing arrived. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves when the server ends or drops the response. */
  readonly ended: Promise<void>;
  /** Stops reading from the socket, so the server's buffers fill up. */
  pause(): void;
  resume(): void;
  /** Drops the connection, as a client that leaves does. */
  close(): void;
  /** Drops the connection with a TCP reset, as a crashed client or a middlebox does. */
  reset(): void;
}

export interface ReadOptions {
  headers?: Record<string, string>;
  /** Resolve on the response head even when it is not an event stream. */
  method?: string;
}

/** Opens `url` with a plain HTTP GET and parses the body as an event stream. */
export function readSse(url: string, options: ReadOptions = {}): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { headers: { accept: 'text/event-stream', ...options.headers }, agent: false });
    request.once('error', reject);
    request.once('response', (response) => {
      request.off('error', reject);
      request.on('error', () => {});
      response.setEncoding('utf8');
      const events: EventSourceMessage[] = [];
      const comments: string[] = [];
      const retries: number[] = [];
      const chunks: string[] = [];
      // The spec commits a block's id at its blank line, whether or not an event dispatches.
      let lastEventId: string | undefined;
      let blockId: string | undefined;
      let partial = '';
      const trackIds = (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line === '') {
            if (blockId !== undefined) lastEventId = blockId;
            blockId = undefined;
          } else if (line.startsWith('id:')) {
            blockId = line.slice(line.startsWith('id: ') ? 4 : 3);
          }
        }
      };
      const watchers = new Set<() => void>();
      const parser = createParser({
        onEvent: (event) => events.push(event),
        onComment: (comment) => comments.push(comment),
        onRetry: (retry) => retries.push(retry),
      });
      response.on('data', (chunk: string) => {
        chunks.push(chunk);
        parser.feed(chunk);
        trackIds(chunk);
        for (const watcher of watchers) watcher();
      });
      let markEnded!: () => void;
      const ended = new Promise<void>((resolveEnded) => (markEnded = resolveEnded));
      const onEnd = () => {
        markEnded();
        for (const watcher of watchers) watcher();
      };
      response.once('end', onEnd);
      response.once('close', onEnd);
      response.once('error', () => {});

      // A loaded machine is slow, not stuck: the wait fails only after timeoutMs in which
      // nothing arrived, and each chunk that does arrive starts the count again.
      const waitFor = (predicate: () => boolean, timeoutMs = 5000) =>
        new Promise<void>((resolveWait, rejectWait) => {
          if (predicate()) return resolveWait();
          const watcher = () => {
            if (!predicate()) return void timer.refresh();
            clearTimeout(timer);
            watchers.delete(watcher);
            resolveWait();
          };
          const timer = setTimeout(() => {
            watchers.delete(watcher);
            const received = chunks.join('');
            const shown =
              received.length > 2000
                ? `${JSON.stringify(received.slice(0, 1000))} … ${JSON.stringify(received.slice(-1000))}`
                : JSON.stringify(received);
            rejectWait(new Error(`nothing new arrived for ${timeoutMs} ms; received so far (${received.length} characters): ${shown}`));
          }, timeoutMs);
          watchers.add(watcher);
        });

      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        events,
        comments,
        retries,
        lastEventId: () => lastEventId,
        text: () => chunks.join(''),
        waitFor,
        waitForEvents: async (count, timeoutMs) => {
          await waitFor(() => events.length >= count, timeoutMs);
          return events.slice(0, count);
        },
        ended,
        pause: () => response.pause(),
        resume: () => response.resume(),
        close: () => request.destroy(),
        reset: () => (request.socket ? request.socket.resetAndDestroy() : request.destroy()),
      });
    });
  });
}
