/**
 * Type tests, checked by tsc and never run: both client libraries fit `client` as they come,
 * whatever their protocol or modules, and anything else does not.
 */
import Redis from 'ioredis';
import { createClient } from 'redis';
import type { Backplane } from '@ssekit/core';
import { createRedisBackplane, RedisBackplaneError, type RedisClient } from '@ssekit/redis';

const fromIoRedis: Backplane = createRedisBackplane({ client: new Redis({ lazyConnect: true }) });
createRedisBackplane({ client: new Redis({ protocol: 2, lazyConnect: true }), prefix: 'app:', maxLen: 100, trimExactly: true });
createRedisBackplane({ client: createClient() });
createRedisBackplane({ client: createClient({ RESP: 2 }), blockMs: 1000, readCount: 100, commandTimeoutMs: 2000, onError: () => {} });
const asUnion: RedisClient = createClient({ RESP: 3 });
createRedisBackplane({ client: asUnion });
void fromIoRedis;

// @ts-expect-error a client is required
createRedisBackplane({});
// @ts-expect-error not a Redis client
createRedisBackplane({ client: { get: () => 'x' } });
// @ts-expect-error a string is not a client
createRedisBackplane({ client: 'redis://127.0.0.1:6379' });

const error = new RedisBackplaneError('x', { sent: false });
const code: 'ERR_SSE_BACKPLANE_UNAVAILABLE' = error.code;
const sent: boolean = error.sent;
void code;
void sent;
