/**
 * ssekit on node:http with its channel on a Redis backplane (`@ssekit/redis`, on ioredis): the
 * instances that share `BENCH_BACKPLANE_NAMESPACE` share one feed. Scenario H runs two of them.
 */
import Redis from 'ioredis';
import { createRedisBackplane } from '@ssekit/redis';
import { backplaneNamespace, serveBackplaneChannel } from './backplane-server.js';
import type { BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const prefix = `${backplaneNamespace('ssekit-redis')}:`;
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  return serveBackplaneChannel('ssekit-redis', createRedisBackplane({ client: redis, prefix }), async () => {
    await redis.del(`${prefix}events`);
    await redis.quit();
  });
}
