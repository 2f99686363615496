export { createRedisBackplane, type RedisBackplaneOptions } from './backplane.js';
export { RedisBackplaneError } from './error.js';
export type { IoRedisClient, NodeRedisClient, RedisClient } from './client.js';
