/**
 * The published packages as a user gets them: each is packed with `pnpm pack` (which turns
 * `workspace:` ranges into versions), publint and arethetypeswrong check the tarballs, and a
 * fresh project outside the workspace installs them from the tarballs, with the frameworks from
 * the npm registry, then imports them from ESM and CommonJS and type-checks code against them
 * under `moduleResolution` node16 (from .mts and .cts files) and bundler.
 * `pnpm test` builds first; run `pnpm build` yourself before running this file alone.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const PUBLISHED = ['client', 'core', 'express', 'fastify', 'koa', 'metrics', 'nats', 'postgres', 'redis', 'web'] as const;
/** What the consumer project installs besides the tarballs: the peers, and types to check against. */
const FROM_REGISTRY = [
  'express@^5',
  'koa@^3',
  'fastify@^5',
  'ioredis@^6',
  'pg@^8',
  '@types/pg@^8',
  '@nats-io/jetstream@^3',
  '@nats-io/nats-core@^3',
  '@nats-io/transport-node@^3',
  '@opentelemetry/api@^1.9',
  '@types/express@^5',
  '@types/koa@^3',
  '@types/node@^20',
  'typescript@~5.9',
];

jest.setTimeout(300_000);

interface Run {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], cwd: string, timeoutMs = 240_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/** pnpm as the test was started with it (`pnpm test`), or through npx as .ci/run gets it. */
function pnpm(args: string[], cwd: string): Promise<Run> {
  const execPath = process.env.npm_execpath ?? '';
  if (/pnpm/.test(execPath)) return run(process.execPath, [execPath, ...args], cwd);
  return run('npx', ['--yes', 'pnpm@10', ...args], cwd);
}

let dir: string;
const tarballs: Record<string, string> = {};
let installed: Run;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ssekit-consumer-'));
  const packs = path.join(dir, 'packs');
  mkdirSync(packs);
  for (const name of PUBLISHED) {
    const packed = await pnpm(['pack', '--pack-destination', packs], path.join(ROOT, 'packages', name));
    if (packed.code !== 0) throw new Error(`pnpm pack failed for @ssekit/${name}:\n${packed.output}`);
  }
  for (const file of readdirSync(packs)) tarballs[/^ssekit-(\w+)-/.exec(file)![1]!] = path.join(packs, file);
  const app = path.join(dir, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
  installed = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', ...PUBLISHED.map((name) => tarballs[name]!), ...FROM_REGISTRY],
    app,
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const app = () => path.join(dir, 'app');

test('every published package packs', () => {
  expect(Object.keys(tarballs).sort()).toEqual([...PUBLISHED].sort());
});

describe.each(PUBLISHED)('@ssekit/%s', (name) => {
  test('publint finds nothing, strict', async () => {
    const result = await run(path.join(ROOT, 'node_modules', '.bin', 'publint'), ['--strict', tarballs[name]!], ROOT);
    expect(result.output).toContain('All good!');
    expect(result.code).toBe(0);
  });

  // Every resolution, node10 included: a TypeScript project still on `moduleResolution: node`
  // finds @ssekit/core/adapter through typesVersions.
  test('arethetypeswrong finds no problem under any resolution', async () => {
    const result = await run(path.join(ROOT, 'node_modules', '.bin', 'attw'), [tarballs[name]!, '--format', 'json'], ROOT);
    const report = JSON.parse(result.output.slice(result.output.indexOf('{'))) as { analysis?: { problems?: unknown[] } };
    expect(report.analysis?.problems).toEqual([]);
    expect(result.code).toBe(0);
  });
});

describe('a fresh project that installs the tarballs', () => {
  test('npm installs them, with the frameworks from the registry', () => {
    expect(installed.output).not.toMatch(/ERR!/);
    expect(installed.code).toBe(0);
  });

  const probe = (load: (id: string) => string) => `
const core = ${load('@ssekit/core')};
const adapter = ${load('@ssekit/core/adapter')};
const express = ${load('@ssekit/express')};
const fastify = ${load('@ssekit/fastify')};
const koa = ${load('@ssekit/koa')};
const redis = ${load('@ssekit/redis')};
const postgres = ${load('@ssekit/postgres')};
const nats = ${load('@ssekit/nats')};
const testing = ${load('@ssekit/core/testing')};
const client = ${load('@ssekit/client')};
const web = ${load('@ssekit/web')};
const metrics = ${load('@ssekit/metrics')};
const sseMetrics = metrics.createSseMetrics();
sseMetrics.close();
console.log(JSON.stringify({
  event: core.formatEvent({ event: 'tick', data: { n: 1 } }),
  adapter: typeof adapter.createSseStreamFromSink,
  express: typeof express.sse,
  fastify: typeof fastify.default,
  koa: typeof koa.sse,
  redis: typeof redis.createRedisBackplane,
  postgres: typeof postgres.createPostgresBackplane,
  nats: typeof nats.createNatsBackplane,
  testing: typeof testing.runBackplaneContract,
  client: typeof client.createEventSource,
  web: typeof web.createSseResponse,
  metrics: metrics.SSE_METRICS.streamsOpen,
  webChannel: web.createChannel === core.createChannel,
  oneSseError: express.SseError === core.SseError && koa.SseError === core.SseError && fastify.SseError === core.SseError,
}));
`;
  const expected = {
    event: 'event: tick\ndata: {"n":1}\n\n',
    adapter: 'function',
    express: 'function',
    fastify: 'function',
    koa: 'function',
    redis: 'function',
    postgres: 'function',
    nats: 'function',
    testing: 'function',
    client: 'function',
    web: 'function',
    metrics: 'ssekit.streams.open',
    webChannel: true,
    oneSseError: true,
  };

  test('import() loads every package, one copy of core among them', async () => {
    const result = await run(process.execPath, ['--input-type=module', '-e', probe((id) => `await import('${id}')`)], app());
    expect(result.code).toBe(0);
    expect(JSON.parse(result.output)).toEqual(expected);
  });

  test('require() loads every package, one copy of core among them', async () => {
    const result = await run(process.execPath, ['-e', `(async () => {${probe((id) => `require('${id}')`)}})()`], app());
    expect(result.code).toBe(0);
    expect(JSON.parse(result.output)).toEqual(expected);
  });

  const CONSUMER = `
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { Redis } from 'ioredis';
import { createChannel, SseError, type SseStream } from '@ssekit/core';
import { createSseStreamFromSink, type SseSink } from '@ssekit/core/adapter';
import { sse } from '@ssekit/express';
import ssePlugin from '@ssekit/fastify';
import { sse as koaSse } from '@ssekit/koa';
import { createRedisBackplane } from '@ssekit/redis';
import { createPostgresBackplane } from '@ssekit/postgres';
import { createNatsBackplane } from '@ssekit/nats';
import { runBackplaneContract, type BackplaneContractSetup } from '@ssekit/core/testing';
import pg from 'pg';
import { connect as connectNats } from '@nats-io/transport-node';
import { createEventSource } from '@ssekit/client';
import { createSseResponse } from '@ssekit/web';
import { createSseMetrics, defaultStreamAttributes } from '@ssekit/metrics';

type Events = { price: { symbol: string; value: number } };
const onPostgres = createChannel<Events>({ backplane: createPostgresBackplane({ pool: new pg.Pool(), table: 'prices' }) });
export const natsChannel = async () => createChannel<Events>({ backplane: createNatsBackplane({ connection: await connectNats(), stream: 'prices' }) });
const setup: BackplaneContractSetup = { create: () => createPostgresBackplane({ pool: new pg.Pool() }) };
export const contract = () => runBackplaneContract('postgres', setup);
void onPostgres.publish({ event: 'price', data: { symbol: 'ACME', value: 1 } });
const prices = createChannel<Events>({ backplane: createRedisBackplane({ client: new Redis({ lazyConnect: true }) }) });
void prices.publish({ event: 'price', data: { symbol: 'ACME', value: 1 } });
// @ts-expect-error value is a number
void prices.publish({ event: 'price', data: { symbol: 'ACME', value: '1' } });

const app = express();
app.get('/prices', sse(), (_req, res) => {
  const stream: SseStream<Events> = res.sse;
  prices.subscribe(stream);
});
const fastify = Fastify();
void fastify.register(ssePlugin, { keepAliveMs: 20_000 });
fastify.get('/prices', (_request, reply) => void reply.sse.send({ event: 'price', data: { symbol: 'ACME', value: 2 } }));
const koa = new Koa();
koa.use(koaSse());
koa.use((ctx) => void ctx.sse.send('hello'));

// The same map types the browser's end.
const source = createEventSource<Events>('http://127.0.0.1:3000/prices', { headers: async () => ({ authorization: 'Bearer x' }) });
source.on('price', (data) => void data.value.toFixed(2));
// @ts-expect-error no such event
source.on('nope', () => {});
source.close();

// A Fetch handler, as Hono, Next.js, Bun and Deno call it.
export const GET = (request: Request): Response => createSseResponse<Events>(request, (stream) => prices.subscribe(stream));

// The stream attributes take the open message that core publishes.
const sseMetrics = createSseMetrics({ attributes: (open) => ({ ...defaultStreamAttributes(open), opened: open.stream.opened }) });
sseMetrics.close();
// @ts-expect-error attributes are an object of attributes, never the raw path
createSseMetrics({ attributes: (open) => open.path });

declare const sink: SseSink;
const fromSink = createSseStreamFromSink(sink);
export const isError = (error: unknown) => error instanceof SseError && error.code === 'ERR_SSE_INVALID_FIELD';
void fromSink.close();
`;

  test.each([
    ['node16, from an ES module', 'node16', 'node16', 'consumer.mts'],
    ['node16, from a CommonJS module', 'node16', 'node16', 'consumer.cts'],
    ['bundler', 'esnext', 'bundler', 'consumer.ts'],
  ])('the types check under %s', async (_label, module, moduleResolution, file) => {
    const source = file.endsWith('.cts')
      ? CONSUMER.replace(/^import (\w+) from '(express|koa)';$/gm, "import $1 = require('$2');")
      : CONSUMER;
    writeFileSync(path.join(app(), file), source);
    const result = await run(
      path.join(app(), 'node_modules', '.bin', 'tsc'),
      [
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        'false',
        '--esModuleInterop',
        '--module',
        module,
        '--moduleResolution',
        moduleResolution,
        '--target',
        'es2022',
        '--types',
        'node',
        file,
      ],
      app(),
    );
    // Libraries are checked too (skipLibCheck off), so that an error in ssekit's declaration
    // files shows; the frameworks' own declaration files are not ours to judge.
    const ours = result.output.split('\n').filter((line) => line.startsWith('node_modules/@ssekit/') || line.startsWith(file));
    expect(ours).toEqual([]);
    expect(result.output).toMatch(/^(node_modules\/(?!@ssekit\/)[^\n]*\n|\s[^\n]*\n)*$/);
  });
});
