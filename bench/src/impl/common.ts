import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Channel, SseStream } from '@ssekit/core';
import type { EventData } from '../payload.js';

/** What the bench's server process needs from every implementation. */
export interface BenchServer {
  readonly port: number;
  /** Streams in the broadcast now. */
  streams(): number;
  /** Sends one event to every stream in the broadcast. */
  publish(data: EventData): void | Promise<unknown>;
  /** Whether the stream of `/single` is open. */
  hasSingle(): boolean;
  /** Sends one event on the stream of `/single`; resolves when the implementation says go on. */
  sendSingle(data: EventData): void | Promise<unknown>;
  /** Scenario G: ends every stream, then closes the HTTP server. Only ssekit has it. */
  shutdown?(): Promise<void>;
  /** Releases what the server holds outside its process (Redis keys), before it exits. */
  dispose?(): Promise<void>;
}

/** The event map of the ssekit servers: unnamed events carrying {@link EventData}. */
export type Payloads = { message: EventData };

/** What scenario G asks of every ssekit server: a farewell, and a jittered retry. */
export const SHUTDOWN_OPTIONS = {
  message: { event: 'bye', data: 'shutting down' },
  retryMs: 1000,
  jitterMs: 1000,
} as const;

/**
 * The ssekit servers' heartbeat period: `BENCH_KEEP_ALIVE_MS` when set (scenarios I and K set it
 * short, so that a heartbeat round fits in a run), else the library's default. Spread into the
 * options of `createSseStream`, `sse()` and the Fastify plugin.
 */
export function keepAliveOption(): { keepAliveMs?: number } {
  const value = process.env.BENCH_KEEP_ALIVE_MS;
  if (value === undefined || value === '') return {};
  const keepAliveMs = Number(value);
  if (!Number.isInteger(keepAliveMs) || keepAliveMs < 0) throw new Error(`BENCH_KEEP_ALIVE_MS must be an integer ≥ 0, not ${value}`);
  return { keepAliveMs };
}

/** The baseline's headers: those of an SSE library. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
};

/** The baseline's bytes for one event: exactly what an SSE library writes for it. */
export function rawEvent(data: EventData): string {
  return 'id: ' + data.seq + '\ndata: ' + JSON.stringify(data) + '\n\n';
}

/**
 * Listens on 127.0.0.1, on a port the system picks; or on `BENCH_PORT`, which scenario J sets so
 * that the server it starts after a crash comes back where its clients left it.
 */
export async function listen(server: http.Server): Promise<number> {
  server.listen({ host: '127.0.0.1', port: Number(process.env.BENCH_PORT ?? 0), backlog: 1024 });
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

export function notFound(res: http.ServerResponse): void {
  res.writeHead(404).end();
}

/**
 * The baseline's way to serve events, by hand: the head with `writeHead`, a set of responses,
 * each event formatted once and written to each. The raw server uses it on node:http, and the
 * bare-framework servers inside a route of their framework.
 */
export function createHandWrittenBroadcast() {
  const clients = new Set<http.ServerResponse>();
  let single: http.ServerResponse | undefined;
  return {
    /** Starts the event stream on `res`: the broadcast's, or the single stream of scenario B. */
    attach(res: http.ServerResponse, isSingle: boolean): void {
      res.writeHead(200, SSE_HEADERS);
      res.flushHeaders();
      if (isSingle) single = res;
      else {
        clients.add(res);
        res.once('close', () => clients.delete(res));
      }
    },
    streams: () => clients.size,
    publish(data: EventData): void {
      const text = rawEvent(data);
      for (const res of clients) res.write(text);
    },
    hasSingle: () => single !== undefined,
    sendSingle(data: EventData): void | Promise<unknown> {
      if (single!.write(rawEvent(data))) return;
      return new Promise((resolve) => single!.once('drain', resolve));
    },
  };
}

/**
 * What every ssekit server does the same way: the broadcast is a channel, B's stream is the one
 * that `single()` returns once `/single` was requested, and G calls `shutdown`.
 */
export function channelServer(
  port: number,
  channel: Channel<Payloads>,
  single: () => SseStream<Payloads> | undefined,
  shutdown: () => Promise<void>,
): BenchServer {
  return {
    port,
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => single() !== undefined,
    sendSingle: (data) => single()!.send({ id: data.seq, data }),
    shutdown,
  };
}
