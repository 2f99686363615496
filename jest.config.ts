/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

// Tests run against each package's source; a separate test proves the built ESM and CJS.
const swc = (syntax: 'typescript' | 'ecmascript') =>
  ['@swc/jest', { jsc: { parser: { syntax }, target: 'es2022' }, module: { type: 'commonjs' }, sourceMaps: 'inline' }] as [
    string,
    Record<string, unknown>,
  ];

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/test', '<rootDir>/demo'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': swc('typescript'),
    '^.+\\.m?js$': swc('ecmascript'),
  },
  // These ship as ESM only (the real SSE clients, and light-my-request's cookie parser);
  // every other dependency stays untransformed.
  transformIgnorePatterns: ['/node_modules/(?!\\.pnpm/|eventsource/|eventsource-parser/|cookie/|postgres/)'],
  moduleNameMapper: {
    // Sources import siblings as `./x.js`, as ESM requires; jest resolves the `.ts` behind them.
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@ssekit/(core|client|express|fastify|koa|metrics|redis|postgres|nats|test-kit|web)$': '<rootDir>/packages/$1/src/index.ts',
    '^@ssekit/core/(adapter|node|testing)$': '<rootDir>/packages/core/src/$1.ts',
  },
  // Generous: the suite runs on a shared 2-core machine, once per Node.js major.
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/test/results-reporter.cjs'],
};

export default config;
