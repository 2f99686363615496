/**
 * The servers under test. Each serves the same two routes in its own natural, documented way:
 *
 * - `GET /events` opens an event stream and joins the broadcast (a channel, or a set of
 *   responses for the baseline): scenarios A, A2, C, D, E, F, G and H;
 * - `GET /single` opens the one stream of scenario B, which sends events one after another,
 *   waiting for the socket whenever the implementation lets it.
 *
 * Every implementation sends each event as `id: <seq>` and `data: <JSON>`; the peers add what
 * they always add (better-sse an `event: message` line), nothing more. Each lives in its own
 * module, so that a server process loads only its own framework.
 */
import type { BenchServer } from './impl/common.js';

export type { BenchServer } from './impl/common.js';

export const IMPLEMENTATIONS = [
  'raw',
  'ssekit-node',
  'ssekit-express',
  'ssekit-fastify',
  'ssekit-koa',
  'better-sse',
  'fastify-sse',
  'express-bare',
  'koa-bare',
  'ssekit-redis',
  'ssekit-postgres',
  'ssekit-nats',
  'ssekit-redis-admission',
  'ssekit-web',
  'hono-sse',
  'ssekit-node-observed',
  'ssekit-node-baseline',
] as const;
export type Implementation = (typeof IMPLEMENTATIONS)[number];

/** How the tables name each implementation. */
export const LABELS: Record<Implementation, string> = {
  raw: 'raw node:http',
  'ssekit-node': 'ssekit on node:http',
  'ssekit-express': 'ssekit on Express',
  'ssekit-fastify': 'ssekit on Fastify',
  'ssekit-koa': 'ssekit on Koa',
  'better-sse': 'better-sse',
  'fastify-sse': '@fastify/sse',
  'express-bare': 'Express by hand',
  'koa-bare': 'Koa by hand',
  'ssekit-redis': 'ssekit on node:http, Redis backplane',
  'ssekit-postgres': 'ssekit on node:http, PostgreSQL backplane',
  'ssekit-nats': 'ssekit on node:http, NATS backplane',
  'ssekit-redis-admission': 'ssekit on node:http, Redis backplane, with admission',
  'ssekit-web': 'ssekit on Hono (@ssekit/web)',
  'hono-sse': "Hono's streamSSE",
  'ssekit-node-observed': 'ssekit on node:http, every diagnostics channel listened to',
  'ssekit-node-baseline': 'ssekit on node:http, core at BENCH_BASELINE_CORE',
};

/**
 * References, not contestants: the baseline's code inside Express and Koa, which shows what
 * the framework itself costs. They run where that cost is the question (A, A2 and C).
 */
export const FRAMEWORK_REFERENCES: readonly Implementation[] = ['express-bare', 'koa-bare'];

/**
 * Controls that run only when named with `--impls`: ssekit-node with every diagnostics channel
 * listened to, and ssekit-node on an earlier build of core (scripts/baseline-core.mjs). They
 * measure what a change of core costs, beside the ssekit-node of this build.
 */
export const OPT_IN: readonly Implementation[] = ['ssekit-node-observed', 'ssekit-node-baseline'];

/** Scenario H only: two instances sharing one feed through a backplane, against the in-memory channel. */
export const BACKPLANES: readonly Implementation[] = ['ssekit-redis', 'ssekit-postgres', 'ssekit-nats'];

/**
 * Scenario J only: the Redis backplane server with admission control on its stream group, the
 * storm's second variant beside `ssekit-redis` without it.
 */
export const ADMISSION: readonly Implementation[] = ['ssekit-redis-admission'];

/** The servers that only their own scenario runs (H's backplanes, J's admission), never A to G. */
export const DEDICATED: readonly Implementation[] = [...BACKPLANES, ...ADMISSION];

/** The other libraries: their failed runs are findings about them, not a failed benchmark. */
export const PEERS: readonly Implementation[] = ['better-sse', 'fastify-sse', 'hono-sse'];

/**
 * The Fetch API servers, both on Hono's node server: @ssekit/web and Hono's own helper. They run
 * A to D, where their target is each other; their stream is a web ReadableStream that the node
 * server pumps, so they are no contestant for the Node adapters' targets.
 */
export const FETCH_API: readonly Implementation[] = ['ssekit-web', 'hono-sse'];

/** Only ssekit has a call that ends every open stream: scenario G runs on these. */
export const SHUTDOWN_CAPABLE: readonly Implementation[] = ['ssekit-node', 'ssekit-express', 'ssekit-fastify', 'ssekit-koa'];

export function isImplementation(value: string): value is Implementation {
  return (IMPLEMENTATIONS as readonly string[]).includes(value);
}

export async function startServer(implementation: Implementation): Promise<BenchServer> {
  const module = (await import(`./impl/${implementation}.js`)) as { start(): Promise<BenchServer> };
  return module.start();
}
