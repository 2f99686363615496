/**
 * The public backplane contract (`@ssekit/core/testing`) on Redis, once per client library, on
 * a redis-server of the suite's own with append-only persistence, which the contract stops and
 * starts again.
 */
import { runBackplaneContract } from '@ssekit/core/testing';
import { createRedisBackplane } from '../src/index.js';
import { connect, FLAVOURS, startPrivateRedis, uniquePrefix, type PrivateRedis, type TestClient } from './redis.js';

let redis: PrivateRedis;
beforeAll(async () => {
  redis = await startPrivateRedis();
});
afterAll(() => redis?.close());

for (const flavour of FLAVOURS) {
  const clients: TestClient[] = [];
  const prefix = uniquePrefix(`contract-${flavour}`);
  runBackplaneContract(`Redis (${flavour})`, {
    async create({ maxLen }) {
      const client = await connect(flavour, redis.url);
      clients.push(client);
      return createRedisBackplane({ client: client.client, prefix, maxLen, trimExactly: true, blockMs: 1000, onError() {} });
    },
    engine: { stop: () => redis.stop(), start: () => redis.start() },
    async cleanup() {
      for (const client of clients.splice(0)) await client.close();
    },
  });
}
