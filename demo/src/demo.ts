import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { createRedisBackplane } from '@ssekit/redis';
import { createExpressDemo } from './express.js';
import { createFastifyDemo } from './fastify.js';
import { createFeed, type Feed, type FeedOptions } from './feed.js';
import { createKoaDemo } from './koa.js';
import { createPrometheusMetrics, type PrometheusMetrics } from './metrics.js';
import { createClientFiles, createTokens, type Secure } from './secure.js';

/** The frameworks the demo runs on. */
export const FRAMEWORKS = ['express', 'fastify', 'koa'] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** Options of {@link startDemo}, on top of the feed's own. */
export interface DemoOptions extends FeedOptions {
  /** @default 'express' */
  framework?: Framework;
  /**
   * The port to listen on; 0 picks a free one.
   * @default 3000
   */
  port?: number;
  /**
   * The host to listen on.
   * @default 'localhost'
   */
  host?: string;
  /**
   * A Redis to share the feed through, such as `redis://127.0.0.1:6379`: every demo started
   * with the same one serves the same feed, and a page resumes on any of them.
   * @default undefined (the feed lives in this process)
   */
  redisUrl?: string;
  /**
   * The key prefix in that Redis.
   * @default 'ssekit-demo:'
   */
  redisPrefix?: string;
  /**
   * What this instance calls itself in the `from` of the events it publishes to a shared feed.
   * @default '<framework>, pid <pid>'
   */
  instance?: string;
  /** The directory of the built `@ssekit/client` (its dist), which the client page loads. */
  clientDist: string;
  /**
   * Serves `GET /metrics`: the SSE metrics of `@ssekit/metrics` in the Prometheus text format.
   * @default true
   */
  metrics?: boolean;
}

/** A running demo. */
export interface Demo {
  readonly framework: Framework;
  /** Where the page is, such as `http://localhost:3000`. */
  readonly url: string;
  /** The Redis the feed is shared through, if any. */
  readonly redisUrl: string | undefined;
  /** Where the SSE metrics are served in the Prometheus text format, unless turned off. */
  readonly metricsUrl: string | undefined;
  /** Closes every open stream, then the server. Safe to call more than once. */
  close(): Promise<void>;
}

interface Listening {
  readonly port: number;
  close(): Promise<void>;
}

/** Whether `value` names a framework the demo runs on. */
export function isFramework(value: unknown): value is Framework {
  return FRAMEWORKS.includes(value as Framework);
}

/**
 * Starts the demo app: the page at `/`, the live feed at `/events`, and `POST /drop`, which
 * closes every open stream so that clients reconnect and resume; the `@ssekit/client` page at
 * `/client`, which reads `/secure-events` with a bearer token from `POST /token`; and the SSE
 * metrics at `/metrics`, in the Prometheus text format.
 *
 * @example
 * ```ts
 * const demo = await startDemo({ framework: 'koa', host: '127.0.0.1', port: 0, clientDist });
 * console.log(demo.url);
 * await demo.close();
 * ```
 */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const {
    framework = 'express',
    port = 3000,
    host = 'localhost',
    redisUrl,
    redisPrefix = 'ssekit-demo:',
    instance,
    clientDist,
    metrics: serveMetrics = true,
    ...feedOptions
  } = options;
  if (!isFramework(framework)) {
    throw new TypeError(`framework must be one of ${FRAMEWORKS.join(', ')}, not ${String(framework)}.`);
  }
  const redis = redisUrl ? await connectRedis(redisUrl) : undefined;
  const backplane = redis && createRedisBackplane({ client: redis, prefix: redisPrefix, maxLen: feedOptions.replayLimit ?? 100 });
  const releaseRedis = async () => {
    await backplane?.close();
    redis?.disconnect();
  };
  // Before the feed, so that the metrics see every stream from the first.
  const metrics = serveMetrics ? createPrometheusMetrics() : undefined;
  const feed = createFeed({ ...feedOptions, backplane, instance: instance ?? `${framework}, pid ${process.pid}` });
  const release = async () => {
    await releaseRedis();
    await metrics?.close();
  };
  let server: Listening;
  try {
    const secure = { tokens: createTokens(), clientFiles: createClientFiles(clientDist) };
    server = await listen(framework, { feed, secure, metrics }, port, host);
  } catch (error) {
    await feed.close();
    await release();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${server.port}`;
  return {
    framework,
    url,
    redisUrl,
    metricsUrl: metrics && `${url}/metrics`,
    close() {
      // Streams first: an open stream never ends by itself, so the server would wait forever.
      closing ??= Promise.all([feed.close(), server.close()]).then(release);
      return closing;
    },
  };
}

/** Connects to Redis, or says clearly that it could not. */
async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {}); // it reconnects by itself; publishes meanwhile are skipped
  try {
    await redis.connect();
    return redis;
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${url} (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
  }
}

/** What every framework's routes serve. */
export interface DemoParts {
  readonly feed: Feed;
  readonly secure: Secure;
  /** Behind `GET /metrics`, when the demo serves it. */
  readonly metrics: PrometheusMetrics | undefined;
}

async function listen(framework: Framework, parts: DemoParts, port: number, host: string): Promise<Listening> {
  if (framework === 'fastify') {
    const app = createFastifyDemo(parts);
    try {
      await app.listen({ port, host });
    } catch (error) {
      await app.close();
      throw error;
    }
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  }
  const server = http.createServer(framework === 'express' ? createExpressDemo(parts) : createKoaDemo(parts).callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // The streams have ended already; a request in flight would still leave a keep-alive
    // socket that close() waits on until it times out.
    server.closeAllConnections();
  });
}
