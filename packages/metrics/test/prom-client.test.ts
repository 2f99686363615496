/**
 * The prom-client recipe of the README (recipes/prom-client.ts, which the README quotes verbatim:
 * readme.test.ts holds them together) on every adapter: the scripted run of scenario.ts, then
 * `registry.metrics()` scraped, parsed, and every sample compared with what the run did.
 */
import { Registry } from 'prom-client';
import { createChannel, createStreamGroup } from '@ssekit/core';
import { createSseStreamFromSink } from '@ssekit/core/adapter';
import { createMemorySink } from '@ssekit/test-kit';
import { ADAPTER_TARGETS, type AdapterTarget } from '../../../test/targets.js';
import { collectSseMetrics } from './recipes/prom-client.js';
import { runScenario, type Truth } from './scenario.js';

const LIFETIME_BUCKETS = [0.1, 1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800];
const REPLAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The route label on each adapter: the route's pattern where the framework knows it. */
const ROUTE: Record<AdapterTarget, string> = {
  node: '',
  express: '/events',
  express4: '/events',
  fastify: '/events',
  koa: '',
  koa2: '',
  web: '',
};

/** `name{a="1",b="2"}`, its labels sorted, for a sample of the text format. */
function sampleKey(name: string, labels: Record<string, string>): string {
  const sorted = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return `${name}{${sorted.map(([label, value]) => `${label}="${value}"`).join(',')}}`;
}

/** Every `ssekit_*` sample of a scrape, by its key. */
function parse(text: string): Record<string, number> {
  const samples: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^(ssekit_\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(([, label, value]) => [label!, value!]));
    samples[sampleKey(match[1]!, labels)] = Number(match[3]);
  }
  return samples;
}

/** The samples of a histogram that observed `values`, in order: cumulative buckets, sum and count. */
function histogram(name: string, labels: Record<string, string>, values: number[], buckets: number[]): Record<string, number> {
  const samples: Record<string, number> = {};
  for (const bound of [...buckets, Infinity]) {
    const le = bound === Infinity ? '+Inf' : String(bound);
    samples[sampleKey(`${name}_bucket`, { ...labels, le })] = values.filter((value) => value <= bound).length;
  }
  samples[sampleKey(`${name}_sum`, labels)] = values.reduce((sum, value) => sum + value, 0);
  samples[sampleKey(`${name}_count`, labels)] = values.length;
  return samples;
}

function expectedOf(truth: Truth, route: string): Record<string, number> {
  const cause = { route, cause: 'resume' };
  const samples: Record<string, number> = {
    [sampleKey('ssekit_streams_open', { route })]: truth.open,
    [sampleKey('ssekit_events_sent_total', { route })]: truth.events,
    [sampleKey('ssekit_bytes_sent_total', { route })]: truth.bytes,
    [sampleKey('ssekit_replays_total', cause)]: truth.replays.durations.length,
    [sampleKey('ssekit_replay_events_total', cause)]: truth.replays.events,
    ...histogram('ssekit_replay_duration_seconds', cause, truth.replays.durations, REPLAY_BUCKETS),
    [sampleKey('ssekit_resets_total', { route })]: truth.resets,
  };
  for (const [reason, lifetimes] of Object.entries(truth.closes)) {
    samples[sampleKey('ssekit_streams_closed_total', { route, reason })] = lifetimes.length;
    Object.assign(samples, histogram('ssekit_stream_lifetime_seconds', { route, reason }, lifetimes, LIFETIME_BUCKETS));
  }
  if (truth.overflows > 0) samples[sampleKey('ssekit_streams_overflows_total', { route })] = truth.overflows;
  for (const [backplane, count] of Object.entries(truth.backplaneErrors)) {
    samples[sampleKey('ssekit_backplane_errors_total', { backplane })] = count;
  }
  for (const [backplane, count] of Object.entries(truth.backplaneReconnects)) {
    samples[sampleKey('ssekit_backplane_reconnects_total', { backplane })] = count;
  }
  return samples;
}

test.each(ADAPTER_TARGETS)('on %s, a scrape after each stage of a scripted run has every number the run made', async (target) => {
  const registry = new Registry();
  const stop = collectSseMetrics(registry);
  try {
    await runScenario(
      target,
      async (stage, truth) => {
        const samples = parse(await registry.metrics());
        // Stopped, the recipe takes its metrics off the registry.
        expect(samples).toEqual(stage === 'stopped' ? {} : expectedOf(truth, ROUTE[target]));
      },
      stop,
    );
  } finally {
    stop();
  }
});

test('deferrals by admission are counted by route, cause and status', async () => {
  const registry = new Registry();
  const stop = collectSseMetrics(registry);
  const feed = createChannel();
  const groups = [
    createStreamGroup({ admission: { opensPerSecond: 1, jitterMs: 0 } }),
    createStreamGroup({ admission: { opensPerSecond: 1, status: 503 } }),
  ];
  try {
    for (const group of groups) {
      for (let i = 0; i < 3; i++)
        createSseStreamFromSink(createMemorySink(), { keepAliveMs: 0, group }, { routeOptions: { url: '/feed' } }).open();
    }
    const first = await feed.publish({ data: '1' });
    const replays = createStreamGroup({ admission: { concurrentReplays: 1, maxQueuedReplays: 1 } });
    groups.push(replays);
    for (let i = 0; i < 3; i++)
      feed.subscribe(createSseStreamFromSink(createMemorySink({ lastEventId: first }), { keepAliveMs: 0, group: replays }));
    const samples = parse(await registry.metrics());
    expect(Object.fromEntries(Object.entries(samples).filter(([key]) => key.startsWith('ssekit_streams_deferred_total')))).toEqual({
      [sampleKey('ssekit_streams_deferred_total', { route: '/feed', cause: 'opens', status: '200' })]: 2,
      [sampleKey('ssekit_streams_deferred_total', { route: '/feed', cause: 'opens', status: '503' })]: 2,
      [sampleKey('ssekit_streams_deferred_total', { route: '', cause: 'replays', status: '200' })]: 1,
    });
    expect(samples[sampleKey('ssekit_streams_open', { route: '/feed' })]).toBe(2);
  } finally {
    stop();
    await feed.close();
    for (const group of groups) await group.shutdown();
  }
});

test('the scrape is in the Prometheus text format, with the types a dashboard expects', async () => {
  const registry = new Registry();
  const stop = collectSseMetrics(registry);
  try {
    const text = await registry.metrics();
    expect(text).toContain('# TYPE ssekit_streams_open gauge');
    for (const counter of [
      'streams_closed',
      'streams_deferred',
      'events_sent',
      'bytes_sent',
      'streams_overflows',
      'replays',
      'replay_events',
      'resets',
    ]) {
      expect(text).toContain(`# TYPE ssekit_${counter}_total counter`);
    }
    expect(text).toContain('# TYPE ssekit_stream_lifetime_seconds histogram');
    expect(text).toContain('# TYPE ssekit_replay_duration_seconds histogram');
  } finally {
    stop();
  }
  expect((await registry.metrics()).trim()).toBe('');
});
