/**
 * ssekit on node:http with its channel on a Redis backplane (`@ssekit/redis`, on ioredis): the
 * instances that share `BENCH_BACKPLANE_NAMESPACE` share one feed. Scenario H runs two of them;
 * scenario J kills one and starts another while a third publishes.
 */
import Redis from 'ioredis';
import type { SseStreamGroup } from '@ssekit/core';
import { createRedisBackplane } from '@ssekit/redis';
import { backplaneNamespace, serveBackplaneChannel } from './backplane-server.js';
import type { BenchServer } from './common.js';

export function start(): Promise<BenchServer> {
  return serveRedisChannel('ssekit-redis');
}

/** The server of `impl`, with its streams in `group` (a plain one by default). */
export async function serveRedisChannel(impl: string, group?: SseStreamGroup): Promise<BenchServer> {
  const prefix = `${backplaneNamespace(impl)}:`;
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const release = async () => {
    await redis.del(`${prefix}events`);
    await redis.quit();
  };
  return serveBackplaneChannel(impl, createRedisBackplane({ client: redis, prefix }), release, group);
}
