/**
 * createSseMetrics on every adapter (raw node:http, Express 4 and 5, Fastify, Koa 2 and 3, and
 * @ssekit/web on Hono's node server): the scripted run of scenario.ts, and the SDK's whole
 * collection compared with what it did, number by number, while streams are open, after they
 * closed, and after close() stopped the recording.
 */
import type { Attributes } from '@opentelemetry/api';
import { createSseMetrics, LIFETIME_BUCKETS, REPLAY_DURATION_BUCKETS } from '@ssekit/metrics';
import { ADAPTER_TARGETS, type AdapterTarget } from '../../../test/targets.js';
import { createTestMeter, histogramOf, pointsOf, type Snapshot } from './meter.js';
import { runScenario, type Truth } from './scenario.js';

/** The stream attributes on each adapter: `http.route` where the framework knows the route's pattern. */
const ROUTE: Record<AdapterTarget, Attributes> = {
  node: {},
  express: { 'http.route': '/events' },
  express4: { 'http.route': '/events' },
  fastify: { 'http.route': '/events' },
  koa: {},
  koa2: {},
  web: {},
};

/** The collection a run that did `truth` must give, every metric and every point. */
function expectedOf(truth: Truth, route: Attributes): Snapshot {
  const snapshot: Snapshot = {
    'ssekit.streams.open': { unit: '{stream}', ...pointsOf({ attributes: route, value: truth.open }) },
    'ssekit.events.sent': { unit: '{event}', ...pointsOf({ attributes: route, value: truth.events }) },
    'ssekit.bytes.sent': { unit: 'By', ...pointsOf({ attributes: route, value: truth.bytes }) },
  };
  const closes = Object.entries(truth.closes);
  if (closes.length > 0) {
    const withReason = (reason: string) => ({ ...route, 'ssekit.close.reason': reason });
    snapshot['ssekit.streams.closed'] = {
      unit: '{stream}',
      ...pointsOf(...closes.map(([reason, lifetimes]) => ({ attributes: withReason(reason), value: lifetimes.length }))),
    };
    snapshot['ssekit.stream.lifetime'] = {
      unit: 's',
      ...pointsOf(...closes.map(([reason, lifetimes]) => histogramOf(withReason(reason), lifetimes, LIFETIME_BUCKETS))),
    };
  }
  if (truth.overflows > 0)
    snapshot['ssekit.streams.overflows'] = { unit: '{stream}', ...pointsOf({ attributes: route, value: truth.overflows }) };
  const resume = { ...route, 'ssekit.replay.cause': 'resume' };
  snapshot['ssekit.replays'] = { unit: '{replay}', ...pointsOf({ attributes: resume, value: truth.replays.durations.length }) };
  snapshot['ssekit.replay.events'] = { unit: '{event}', ...pointsOf({ attributes: resume, value: truth.replays.events }) };
  snapshot['ssekit.replay.duration'] = { unit: 's', ...pointsOf(histogramOf(resume, truth.replays.durations, REPLAY_DURATION_BUCKETS)) };
  snapshot['ssekit.resets'] = { unit: '{reset}', ...pointsOf({ attributes: route, value: truth.resets }) };
  const byBackplane = (counts: Record<string, number>) =>
    pointsOf(...Object.entries(counts).map(([backplane, value]) => ({ attributes: { 'ssekit.backplane': backplane }, value })));
  if (Object.keys(truth.backplaneErrors).length > 0) {
    snapshot['ssekit.backplane.errors'] = { unit: '{error}', ...byBackplane(truth.backplaneErrors) };
  }
  if (Object.keys(truth.backplaneReconnects).length > 0) {
    snapshot['ssekit.backplane.reconnects'] = { unit: '{reconnect}', ...byBackplane(truth.backplaneReconnects) };
  }
  return snapshot;
}

test.each(ADAPTER_TARGETS)('on %s, every number of a scripted run: streams open, closed, and after close()', async (target) => {
  const meter = createTestMeter();
  const sseMetrics = createSseMetrics({ meterProvider: meter.meterProvider });
  try {
    const stages: string[] = [];
    await runScenario(
      target,
      async (stage, truth) => {
        stages.push(stage);
        // Stopped, the SDK keeps every metric where it was, the observed counters included: the
        // event the open stream got after close() is not there.
        expect(await meter.read()).toEqual(expectedOf(truth, ROUTE[target]));
        expect(meter.boundaries.get('ssekit.replay.duration')).toEqual(REPLAY_DURATION_BUCKETS);
        if (stage !== 'open') expect(meter.boundaries.get('ssekit.stream.lifetime')).toEqual(LIFETIME_BUCKETS);
      },
      () => sseMetrics.close(),
    );
    expect(stages).toEqual(['open', 'closed', 'stopped']);
  } finally {
    sseMetrics.close();
    await meter.shutdown();
  }
});
