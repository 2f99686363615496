/**
 * Runs the demo until Ctrl-C or SIGTERM.
 *
 *   pnpm demo                          Express on http://localhost:3000
 *   pnpm demo --framework koa          or FRAMEWORK=koa pnpm demo
 *   PORT=8080 HOST=0.0.0.0 pnpm demo
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3001 pnpm demo   instances on one Redis share one feed
 *   METRICS=off pnpm demo              no /metrics
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FRAMEWORKS, isFramework, startDemo, type Framework } from './demo.js';

function readFramework(args: readonly string[]): Framework {
  const flagAt = args.indexOf('--framework');
  const value =
    (flagAt >= 0 ? args[flagAt + 1] : args.find((arg) => arg.startsWith('--framework='))?.split('=')[1]) ??
    process.env.FRAMEWORK ??
    'express';
  if (!isFramework(value)) exitWith(`unknown framework "${value}": use one of ${FRAMEWORKS.join(', ')}.`);
  return value;
}

function readPort(value = '3000'): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) exitWith(`PORT must be a number from 0 to 65535, not "${value}".`);
  return port;
}

function exitWith(message: string): never {
  console.error(`ssekit demo: ${message}`);
  process.exit(1);
}

const demo = await startDemo({
  framework: readFramework(process.argv.slice(2)),
  port: readPort(process.env.PORT),
  host: process.env.HOST || 'localhost',
  redisUrl: process.env.REDIS_URL || undefined,
  redisPrefix: process.env.REDIS_PREFIX || undefined,
  metrics: process.env.METRICS !== 'off',
  // The built client, as a bundler would ship it to the page.
  clientDist: path.dirname(fileURLToPath(import.meta.resolve('@ssekit/client'))),
}).catch((error: unknown) => exitWith(error instanceof Error ? error.message : String(error)));

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `once`: a second Ctrl-C gets Node's default handling, which ends a shutdown that hangs.
  process.once(signal, () => {
    console.log(`\n${signal}: closing every stream and the server`);
    // Once closed, nothing is left in the event loop, so Node exits with code 0 by itself.
    demo.close().catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
  });
}

console.log(`ssekit demo (${demo.framework}) listening on ${demo.url}`);
if (demo.metricsUrl) console.log(`SSE metrics for Prometheus at ${demo.metricsUrl}`);
if (demo.redisUrl) console.log(`sharing the feed through Redis at ${demo.redisUrl}`);
