/**
 * ssekit on node:http with its channel on a Redis backplane (`@ssekit/redis`, on ioredis): the
 * instances that share `BENCH_BACKPLANE_NAMESPACE` share one feed. Scenario H runs two of them.
 */
import http from 'node:http';
import Redis from 'ioredis';
import { createChannel } from '@ssekit/core';
import { createSseStream } from '@ssekit/core/node';
import { createRedisBackplane } from '@ssekit/redis';
import { listen, notFound, type BenchServer, type Payloads } from './common.js';

export async function start(): Promise<BenchServer> {
  const namespace = process.env.BENCH_BACKPLANE_NAMESPACE;
  if (!namespace) throw new Error('ssekit-redis: BENCH_BACKPLANE_NAMESPACE is not set');
  const prefix = `${namespace}:`;
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const backplane = createRedisBackplane({ client: redis, prefix });
  const channel = createChannel<Payloads>({ backplane });
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res));
    else notFound(res);
  });
  return {
    port: await listen(server),
    streams: () => channel.size,
    publish: (data) => channel.publish({ data }),
    hasSingle: () => false,
    sendSingle: () => {
      throw new Error('ssekit-redis serves no single stream');
    },
    async dispose() {
      await channel.close();
      await backplane.close();
      await redis.del(`${prefix}events`);
      await redis.quit();
    },
  };
}
