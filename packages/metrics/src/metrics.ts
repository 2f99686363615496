import diagnostics_channel from 'node:diagnostics_channel';
import { diag, metrics, type Attributes, type BatchObservableResult, type Meter, type MeterProvider } from '@opentelemetry/api';
import {
  SSE_DIAGNOSTICS,
  type SseBackplaneMessage,
  type SseChannelReplayMessage,
  type SseChannelResetMessage,
  type SseStream,
  type SseStreamCloseMessage,
  type SseStreamOpenMessage,
  type SseStreamDeferredMessage,
  type SseStreamOverflowMessage,
} from '@ssekit/core';
import { defaultStreamAttributes } from './attributes.js';
import { LIFETIME_BUCKETS, REPLAY_DURATION_BUCKETS, SSE_METRIC_ATTRIBUTES, SSE_METRICS } from './names.js';
import { VERSION } from './version.js';

/** Options of {@link createSseMetrics}. */
export interface SseMetricsOptions {
  /**
   * Where the meter comes from.
   * @default the global MeterProvider (`metrics.getMeterProvider()`): the one your SDK registered,
   * or the API's no-op one when none did
   */
  meterProvider?: MeterProvider;
  /** A meter to record with, instead of one from `meterProvider` named `@ssekit/metrics`. */
  meter?: Meter;
  /**
   * The attributes of each stream's metrics, computed once when it opens and reused for its
   * close, lifetime, events, bytes, overflow, replays and resets. Keep the values few: each
   * distinct set is a series of every metric, kept for the life of the process (counters are
   * cumulative). Never return the URL path, a user or a stream id. Should this throw, the stream
   * gets the default attributes, and the error goes to OpenTelemetry's `diag`.
   * @default {@link defaultStreamAttributes}: `http.route` where the framework knows the route's pattern
   */
  attributes?: (open: SseStreamOpenMessage) => Attributes;
}

/** What {@link createSseMetrics} returns. */
export interface SseMetrics {
  /**
   * Stops recording: unsubscribes from every diagnostics channel and drops the observable
   * callbacks. What was recorded stays with the SDK; streams open now stay counted as open.
   * Idempotent.
   */
  close(): void;
}

/** Everything one set of stream attributes has accumulated. */
interface Series {
  readonly attributes: Attributes;
  /** Its streams open now: their counts are read live at each collection. */
  readonly open: Set<SseStream<any>>;
  /** What its closed streams sent: where a stream's counts move when it closes. */
  closedEvents: number;
  closedBytes: number;
  /** Whether any of its streams counts bytes: a sink that does not would report a false 0. */
  countsBytes: boolean;
}

/**
 * Records OpenTelemetry metrics of every ssekit stream, channel and backplane in the process, from
 * what they publish on `node:diagnostics_channel` (`SSE_DIAGNOSTICS`): nothing to wrap, no
 * option to pass to the adapters. Streams that opened before the call are not counted.
 *
 * | Metric | Instrument | Unit | Attributes |
 * | --- | --- | --- | --- |
 * | `ssekit.streams.open` | UpDownCounter | `{stream}` | the stream's |
 * | `ssekit.streams.closed` | Counter | `{stream}` | the stream's, `ssekit.close.reason` |
 * | `ssekit.stream.lifetime` | Histogram | `s` | the stream's, `ssekit.close.reason` |
 * | `ssekit.events.sent` | ObservableCounter | `{event}` | the stream's |
 * | `ssekit.bytes.sent` | ObservableCounter | `By` | the stream's |
 * | `ssekit.streams.deferred` | Counter | `{stream}` | the request's, `ssekit.defer.cause`, `http.response.status_code` |
 * | `ssekit.streams.overflows` | Counter | `{stream}` | the stream's |
 * | `ssekit.replays` | Counter | `{replay}` | the stream's, `ssekit.replay.cause` |
 * | `ssekit.replay.events` | Counter | `{event}` | the stream's, `ssekit.replay.cause` |
 * | `ssekit.replay.duration` | Histogram | `s` | the stream's, `ssekit.replay.cause` |
 * | `ssekit.resets` | Counter | `{reset}` | the stream's |
 * | `ssekit.backplane.errors` | Counter | `{error}` | `ssekit.backplane` |
 * | `ssekit.backplane.reconnects` | Counter | `{reconnect}` | `ssekit.backplane` |
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
 * import { createSseMetrics } from '@ssekit/metrics';
 *
 * const exporter = new PrometheusExporter({ port: 9464 });
 * const sseMetrics = createSseMetrics({ meterProvider: new MeterProvider({ readers: [exporter] }) });
 * process.once('SIGTERM', () => sseMetrics.close());
 * ```
 */
export function createSseMetrics(options: SseMetricsOptions = {}): SseMetrics {
  const { attributes: attributesOf = defaultStreamAttributes } = options;
  const meter = options.meter ?? (options.meterProvider ?? metrics.getMeterProvider()).getMeter('@ssekit/metrics', VERSION);
  warnIfCoreCannotPublish();

  const streamsOpen = meter.createUpDownCounter(SSE_METRICS.streamsOpen, { unit: '{stream}', description: 'SSE streams open now.' });
  const streamsClosed = meter.createCounter(SSE_METRICS.streamsClosed, { unit: '{stream}', description: 'SSE streams closed, by reason.' });
  const streamsOverflows = meter.createCounter(SSE_METRICS.streamsOverflows, {
    unit: '{stream}',
    description: 'SSE streams cut because their client read too slowly (maxBufferedBytes).',
  });
  const eventsSent = meter.createObservableCounter(SSE_METRICS.eventsSent, {
    unit: '{event}',
    description: 'SSE events written, by streams open or closed.',
  });
  const bytesSent = meter.createObservableCounter(SSE_METRICS.bytesSent, {
    unit: 'By',
    description: 'SSE body bytes written, by streams open or closed.',
  });
  const streamLifetime = meter.createHistogram(SSE_METRICS.streamLifetime, {
    unit: 's',
    description: 'How long SSE streams lived, by close reason.',
    advice: { explicitBucketBoundaries: [...LIFETIME_BUCKETS] },
  });
  const replays = meter.createCounter(SSE_METRICS.replays, { unit: '{replay}', description: 'Replays of missed events, by cause.' });
  const replayEvents = meter.createCounter(SSE_METRICS.replayEvents, {
    unit: '{event}',
    description: 'Events written by replays, by cause.',
  });
  const replayDuration = meter.createHistogram(SSE_METRICS.replayDuration, {
    unit: 's',
    description: 'How long replays took, from asking the backplane to the last event written.',
    advice: { explicitBucketBoundaries: [...REPLAY_DURATION_BUCKETS] },
  });
  const resets = meter.createCounter(SSE_METRICS.resets, {
    unit: '{reset}',
    description: 'Reset events sent to clients whose Last-Event-ID could not be resumed from.',
  });
  const streamsDeferred = meter.createCounter(SSE_METRICS.streamsDeferred, {
    unit: '{stream}',
    description: 'Requests deferred by admission: told to come back later (opensPerSecond, or a full replay queue).',
  });
  const backplaneErrors = meter.createCounter(SSE_METRICS.backplaneErrors, {
    unit: '{error}',
    description: 'Errors backplanes reported: outages, once each, and listeners that threw.',
  });
  const backplaneReconnects = meter.createCounter(SSE_METRICS.backplaneReconnects, {
    unit: '{reconnect}',
    description: 'Backplanes that reached their server again after an outage.',
  });

  /** Each distinct set of stream attributes. */
  const seriesByKey = new Map<string, Series>();
  /** The series of each stream that opened while recording, and is not yet closed. */
  const seriesOf = new Map<SseStream<any>, Series>();

  const safeAttributesOf = (open: SseStreamOpenMessage): Attributes => {
    try {
      return attributesOf(open);
    } catch (error) {
      // A listener that throws would surface as an uncaught exception in whatever opened the stream.
      diag.error('@ssekit/metrics: the attributes option threw; the stream gets the default attributes.', error);
      return defaultStreamAttributes(open);
    }
  };

  const seriesFor = (open: SseStreamOpenMessage): Series => {
    const attributes = safeAttributesOf(open);
    // Sorted, and without the empty values the SDK drops: one key per series the SDK keeps, so
    // that a collection never observes one series twice.
    const entries = Object.entries(attributes)
      .filter(([, value]) => value !== undefined && value !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify(entries);
    let series = seriesByKey.get(key);
    if (!series) {
      series = { attributes: Object.fromEntries(entries), open: new Set(), closedEvents: 0, closedBytes: 0, countsBytes: false };
      seriesByKey.set(key, series);
    }
    return series;
  };

  const listeners: Array<[name: string, listener: (message: unknown) => void]> = [
    [
      SSE_DIAGNOSTICS.streamOpen,
      (message) => {
        const open = message as SseStreamOpenMessage;
        if (seriesOf.has(open.stream)) return;
        const series = seriesFor(open);
        seriesOf.set(open.stream, series);
        series.open.add(open.stream);
        if (open.stream.bytesSent !== undefined) series.countsBytes = true;
        streamsOpen.add(1, series.attributes);
      },
    ],
    [
      SSE_DIAGNOSTICS.streamClose,
      (message) => {
        const close = message as SseStreamCloseMessage;
        const series = seriesOf.get(close.stream);
        if (!series) return; // opened before recording began
        seriesOf.delete(close.stream);
        // Moved in one step from the open set to the closed totals, with the counts as they are
        // at the close, never less than any collection read: the sums never go down.
        series.open.delete(close.stream);
        series.closedEvents += close.events;
        series.closedBytes += close.bytes ?? 0;
        streamsOpen.add(-1, series.attributes);
        const withReason = withAttribute(series.attributes, SSE_METRIC_ATTRIBUTES.closeReason, close.reason);
        streamsClosed.add(1, withReason);
        streamLifetime.record(close.lifetimeMs / 1000, withReason);
      },
    ],
    [
      SSE_DIAGNOSTICS.streamOverflow,
      (message) => {
        const series = seriesOf.get((message as SseStreamOverflowMessage).stream);
        if (series) streamsOverflows.add(1, series.attributes);
      },
    ],
    [
      SSE_DIAGNOSTICS.channelReplay,
      (message) => {
        const replay = message as SseChannelReplayMessage;
        const series = seriesOf.get(replay.stream);
        if (!series) return;
        const withCause = withAttribute(series.attributes, SSE_METRIC_ATTRIBUTES.replayCause, replay.cause);
        replays.add(1, withCause);
        replayEvents.add(replay.events, withCause);
        replayDuration.record(replay.durationMs / 1000, withCause);
      },
    ],
    [
      SSE_DIAGNOSTICS.channelReset,
      (message) => {
        const series = seriesOf.get((message as SseChannelResetMessage).stream);
        if (series) resets.add(1, series.attributes);
      },
    ],
    [
      SSE_DIAGNOSTICS.backplaneError,
      (message) => backplaneErrors.add(1, { [SSE_METRIC_ATTRIBUTES.backplane]: (message as SseBackplaneMessage).backplane }),
    ],
    [
      SSE_DIAGNOSTICS.backplaneReconnect,
      (message) => backplaneReconnects.add(1, { [SSE_METRIC_ATTRIBUTES.backplane]: (message as SseBackplaneMessage).backplane }),
    ],
    [
      SSE_DIAGNOSTICS.streamDeferred,
      (message) => {
        const deferred = message as SseStreamDeferredMessage;
        // A stream deferred after it opened has its series; one deferred before never opened.
        const attributes = seriesOf.get(deferred.stream)?.attributes ?? safeAttributesOf(deferred);
        streamsDeferred.add(1, {
          ...attributes,
          [SSE_METRIC_ATTRIBUTES.deferCause]: deferred.cause,
          [SSE_METRIC_ATTRIBUTES.statusCode]: deferred.status,
        });
      },
    ],
  ];

  // Read at collection time only: what open streams have sent so far, plus what closed ones did.
  const observe = (result: BatchObservableResult): void => {
    for (const series of seriesByKey.values()) {
      let events = series.closedEvents;
      let bytes = series.closedBytes;
      for (const stream of series.open) {
        events += stream.eventsSent;
        bytes += stream.bytesSent ?? 0;
      }
      result.observe(eventsSent, events, series.attributes);
      if (series.countsBytes) result.observe(bytesSent, bytes, series.attributes);
    }
  };

  for (const [name, listener] of listeners) diagnostics_channel.subscribe(name, listener);
  meter.addBatchObservableCallback(observe, [eventsSent, bytesSent]);

  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      for (const [name, listener] of listeners) diagnostics_channel.unsubscribe(name, listener);
      meter.removeBatchObservableCallback(observe, [eventsSent, bytesSent]);
      seriesOf.clear();
      seriesByKey.clear();
    },
  };
}

function withAttribute(attributes: Attributes, key: string, value: string): Attributes {
  return { ...attributes, [key]: value };
}

let warned = false;

/**
 * Core reaches `diagnostics_channel` through `process.getBuiltinModule` (Node 20.16+, 22.3+):
 * on an older Node it publishes nothing, and every metric would stay at zero without a word.
 */
function warnIfCoreCannotPublish(): void {
  if (warned || typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === 'function') return;
  warned = true;
  process.emitWarning(
    '@ssekit/core publishes diagnostics only where process.getBuiltinModule exists (Node 20.16+, 22.3+): on this Node every ssekit metric stays at zero.',
    { code: 'SSEKIT_METRICS_NO_DIAGNOSTICS' },
  );
}
