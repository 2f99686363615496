/**
 * Scenario J's second variant: ssekit-redis with admission control on its stream group, sized by
 * the scenario through `BENCH_ADMISSION_OPENS_PER_SECOND` and `BENCH_ADMISSION_CONCURRENT_REPLAYS`
 * (see scenarios/j-reconnect-storm.ts for why those values).
 */
import { createStreamGroup } from '@ssekit/core';
import type { BenchServer } from './common.js';
import { serveRedisChannel } from './ssekit-redis.js';

export function start(): Promise<BenchServer> {
  const opensPerSecond = Number(process.env.BENCH_ADMISSION_OPENS_PER_SECOND);
  const concurrentReplays = Number(process.env.BENCH_ADMISSION_CONCURRENT_REPLAYS);
  if (!(opensPerSecond > 0) || !(concurrentReplays > 0)) {
    throw new Error('ssekit-redis-admission: BENCH_ADMISSION_OPENS_PER_SECOND and BENCH_ADMISSION_CONCURRENT_REPLAYS must be set');
  }
  const group = createStreamGroup({ admission: { opensPerSecond, concurrentReplays } });
  return serveRedisChannel('ssekit-redis-admission', group);
}
