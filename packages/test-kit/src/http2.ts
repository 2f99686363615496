import http2 from 'node:http2';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One SSE response read over h2c (HTTP/2 without TLS), as a proxy or a gRPC-era client would. */
export interface Http2SseReader {
  readonly headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  readonly events: EventSourceMessage[];
  waitForEvents(count: number, timeoutMs?: number): Promise<void>;
  /** Cancels the HTTP/2 stream and closes the session. */
  close(): void;
}

export function readSseOverHttp2(origin: string, path: string): Promise<Http2SseReader> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.once('error', reject);
    const request = session.request({ ':path': path, accept: 'text/event-stream' });
    request.setEncoding('utf8');
    const events: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    const watchers = new Set<() => void>();
    request.on('data', (chunk: string) => {
      parser.feed(chunk);
      for (const watcher of watchers) watcher();
    });
    request.once('error', reject);
    request.once('response', (headers) => {
      resolve({
        headers,
        events,
        waitForEvents: (count, timeoutMs = 5000) =>
          new Promise<void>((resolveWait, rejectWait) => {
            const watcher = () => {
              if (events.length < count) return;
              clearTimeout(timer);
              watchers.delete(watcher);
              resolveWait();
            };
            const timer = setTimeout(() => {
              watchers.delete(watcher);
              rejectWait(new Error(`timed out waiting for ${count} events over HTTP/2`));
            }, timeoutMs);
            watchers.add(watcher);
            watcher();
          }),
        close: () => {
          request.close(http2.constants.NGHTTP2_CANCEL);
          session.close();
        },
      });
    });
  });
}
