/**
 * The Node sink on the wire, read as raw bytes from a TCP socket: on HTTP/1.1 it frames each
 * chunk itself and writes it to the connection in one call, so the framing must be exactly
 * Node's, keep-alive must survive it, and a response whose `write` someone wrapped must still
 * go through that wrapper.
 */
import http from 'node:http';
import net from 'node:net';
import { type SseStream } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { serveHttp } from '@ssekit/test-kit';

/** Sends `request` on a new connection and collects what comes back until `done` says so. */
function exchange(port: number, requests: string[], done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; received so far:\n${received}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      received += data;
      if (done(received)) finish();
    });
    socket.on('end', finish);
    socket.on('error', reject);
    for (const request of requests) socket.write(request);
  });
}

const CRLF = '\r\n';

/** The body of a chunked response, undone by hand: each chunk's size must be its byte length. */
function unchunk(body: string): { chunks: string[]; complete: boolean } {
  const chunks: string[] = [];
  let rest = body;
  for (;;) {
    const line = rest.indexOf(CRLF);
    if (line < 0) return { chunks, complete: false };
    const size = parseInt(rest.slice(0, line), 16);
    if (size === 0) return { chunks, complete: rest.slice(line, line + 4) === CRLF + CRLF };
    const chunk = rest.slice(line + 2, line + 2 + size);
    expect(rest.slice(line + 2 + size, line + 4 + size)).toBe(CRLF);
    chunks.push(Buffer.from(chunk, 'latin1').toString('utf8'));
    rest = rest.slice(line + 4 + size);
  }
}

function serveStream(handle: (stream: SseStream, res: http.ServerResponse) => void) {
  return serveHttp((req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/next') return void res.end('next answered');
    handle(createSseStream(req, res, { keepAliveMs: 0 }), res);
  });
}

const GET = (path: string, version = '1.1') => `GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`;

test("HTTP/1.1: a turn's events are one chunk sized in bytes, the stream ends with the last chunk, and the connection serves the next request", async () => {
  const events = ['plain', 'naïve — ☃ 𝄞 multi-byte', 'x'.repeat(20_000)];
  const served = await serveStream((stream) => {
    stream.open();
    // Two events in one turn, the third in a later one.
    void stream.send({ data: events[0] });
    void stream.send({ data: events[1] });
    setTimeout(() => void stream.send({ data: events[2] }), 10);
    // A later turn still, so the end does not ride in the same write as the events.
    setTimeout(() => stream.close(), 30);
  });
  try {
    const text = await exchange(Number(new URL(served.url).port), [GET('/events'), GET('/next')], (received) =>
      received.endsWith('next answered'),
    );
    const [first, second] = text.split(/(?=HTTP\/1\.1 200)/);
    expect(first).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(first).toMatch(/\r\ntransfer-encoding: chunked\r\n/i);
    const { chunks, complete } = unchunk(first!.slice(first!.indexOf(CRLF + CRLF) + 4));
    expect(complete).toBe(true);
    const wire = events.map((data) => `data: ${data}\n\n`);
    expect(chunks).toEqual([wire[0]! + wire[1]!, wire[2]]);
    // The same connection went on to the next request, which is only possible if the framing
    // left the client exactly at the end of the first response.
    expect(second).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*next answered$/);
  } finally {
    await served.close();
  }
});

test('HTTP/1.0: no chunked framing, the events as they are, and the end closes the connection', async () => {
  const served = await serveStream((stream) => {
    stream.open();
    void stream.send({ id: 1, data: 'one' });
    void stream.send({ data: 'two' });
    setTimeout(() => stream.close(), 20);
  });
  try {
    const text = await exchange(Number(new URL(served.url).port), [GET('/events', '1.0')], () => false);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).not.toMatch(/transfer-encoding/i);
    expect(text.slice(text.indexOf(CRLF + CRLF) + 4)).toBe('id: 1\ndata: one\n\ndata: two\n\n');
  } finally {
    await served.close();
  }
});

test('a response whose write() middleware wrapped gets every event through the wrapper', async () => {
  const seen: string[] = [];
  const served = await serveStream((stream, res) => {
    const write = res.write;
    // What compression middleware does: replace write on the response itself.
    res.write = function (this: http.ServerResponse, chunk: unknown, ...rest: unknown[]) {
      seen.push(String(chunk));
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof res.write;
    stream.open();
    void stream.send('one');
    void stream.send('two');
    setTimeout(() => stream.close(), 20);
  });
  try {
    const text = await exchange(Number(new URL(served.url).port), [GET('/events')], (received) => received.endsWith('0\r\n\r\n'));
    expect(unchunk(text.slice(text.indexOf(CRLF + CRLF) + 4)).chunks.join('')).toBe('data: one\n\ndata: two\n\n');
    expect(seen.join('')).toBe('data: one\n\ndata: two\n\n');
  } finally {
    await served.close();
  }
});

test.each(['open()', 'the first send'])(
  "HTTP/1.1 with Node's own write, opened by %s: a turn's events are one write to the socket, on this Node release too",
  async (opener) => {
    // The direct path stands on Node internals that it checks at run time, falling back to
    // res.write (four socket writes per event) when they differ. A Node release that changed
    // them would pass every other test, only slower: this one names it. (Node 24 lost the direct
    // path this way for every stream that opened with an event.)
    const perTurn: number[] = [];
    const served = await serveStream((stream, res) => {
      const socket = res.socket!;
      let writes = 0;
      const write = socket.write;
      socket.write = function (this: typeof socket, ...args: unknown[]) {
        writes++;
        return (write as (...a: unknown[]) => boolean).apply(this, args);
      };
      if (opener === 'open()') stream.open();
      const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));
      void (async () => {
        for (const turn of [['one'], ['two', 'three', 'four'], ['x'.repeat(100_000)]]) {
          const before = writes;
          for (const data of turn) void stream.send({ data });
          await nextTurn();
          perTurn.push(writes - before);
        }
        stream.close();
      })();
    });
    try {
      const text = await exchange(Number(new URL(served.url).port), [GET('/events')], (received) => received.endsWith('0\r\n\r\n'));
      expect(unchunk(text.slice(text.indexOf(CRLF + CRLF) + 4)).chunks).toHaveLength(3);
      // Opened by a send, the first turn also carries the head: one write for each.
      expect(perTurn).toEqual(opener === 'open()' ? [1, 1, 1] : [2, 1, 1]);
    } finally {
      await served.close();
    }
  },
);

test("a request paired with another request's response is refused before anything is written, and the response stays the handler's", async () => {
  let refusal: unknown;
  const served = await serveHttp((req, res) => {
    const stranger = new http.IncomingMessage(req.socket);
    try {
      createSseStream(stranger, res);
    } catch (error) {
      refusal = error;
    }
    res.end('answered');
  });
  try {
    const response = await fetch(`${served.url}/events`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBeNull();
    expect(await response.text()).toBe('answered');
    expect(refusal).toMatchObject({ name: 'SseError', code: 'ERR_SSE_INVALID_OPTION' });
  } finally {
    await served.close();
  }
});
