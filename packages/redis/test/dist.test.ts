/**
 * The built package, as users load it: a plain `node` from the repository root resolves
 * `@ssekit/redis` through node_modules and its `exports` into dist, in ESM and in CommonJS.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import path from 'node:path';
import { testBuiltBackplane } from '@ssekit/test-kit';

testBuiltBackplane({
  directory: path.resolve(__dirname, '..'),
  name: '@ssekit/redis',
  factory: 'createRedisBackplane',
  misuse: '{ client: {} }',
  error: 'RedisBackplaneError',
});
