/**
 * An OpenTelemetry SDK MeterProvider with a reader that collects on demand, and what it
 * collected as plain data: each metric by name, each point with its attributes, so that a test
 * compares every number a run produced with one `toEqual`.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import type { Attributes } from '@opentelemetry/api';
import { DataPointType, MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import { SSE_DIAGNOSTICS, type SseChannelReplayMessage, type SseStreamCloseMessage } from '@ssekit/core';

/** A reader that exports nothing: tests call `collect()` themselves, as a Prometheus scrape does. */
class PullReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface SumPoint {
  attributes: Attributes;
  value: number;
}

export interface HistogramPoint {
  attributes: Attributes;
  count: number;
  sum: number;
  min: number | undefined;
  max: number | undefined;
  /** One per bucket, the last for values above every boundary. */
  counts: number[];
}

/** Every metric with at least one point, by name; points sorted by their attributes. */
export type Snapshot = Record<string, { unit: string; points: Array<SumPoint | HistogramPoint> }>;

export interface TestMeter {
  readonly meterProvider: MeterProvider;
  read(): Promise<Snapshot>;
  /** The instrumentation scope of each meter that recorded something. */
  scopes(): Promise<Array<{ name: string; version: string | undefined }>>;
  /** Boundaries of each histogram, by name, as the last read saw them. */
  readonly boundaries: Map<string, number[]>;
  shutdown(): Promise<void>;
}

export function createTestMeter(): TestMeter {
  const reader = new PullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const boundaries = new Map<string, number[]>();
  return {
    meterProvider,
    boundaries,
    async read() {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) throw new AggregateError(errors, 'the collection failed');
      const snapshot: Snapshot = {};
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          if (metric.dataPoints.length === 0) continue;
          const points = metric.dataPoints.map((point): SumPoint | HistogramPoint => {
            if (metric.dataPointType !== DataPointType.HISTOGRAM) return { attributes: point.attributes, value: point.value as number };
            const histogram = point.value as Histogram;
            boundaries.set(metric.descriptor.name, histogram.buckets.boundaries);
            return {
              attributes: point.attributes,
              count: histogram.count,
              sum: histogram.sum ?? 0,
              min: histogram.min,
              max: histogram.max,
              counts: histogram.buckets.counts,
            };
          });
          points.sort((a, b) => keyOf(a.attributes).localeCompare(keyOf(b.attributes)));
          snapshot[metric.descriptor.name] = { unit: metric.descriptor.unit, points };
        }
      }
      return snapshot;
    },
    async scopes() {
      const { resourceMetrics } = await reader.collect();
      return resourceMetrics.scopeMetrics.map(({ scope }) => ({ name: scope.name, version: scope.version }));
    },
    shutdown: () => meterProvider.shutdown(),
  };
}

const keyOf = (attributes: Attributes) => JSON.stringify(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)));

/** Points sorted as a snapshot sorts them. */
export function pointsOf(...points: Array<SumPoint | HistogramPoint>): { points: Array<SumPoint | HistogramPoint> } {
  return { points: [...points].sort((a, b) => keyOf(a.attributes).localeCompare(keyOf(b.attributes))) };
}

/** The histogram point that recording `values`, in order, under `attributes` makes. */
export function histogramOf(attributes: Attributes, values: readonly number[], boundaries: readonly number[]): HistogramPoint {
  const counts = new Array<number>(boundaries.length + 1).fill(0);
  for (const value of values) {
    // OpenTelemetry's buckets hold (previous boundary, boundary]; the last, what lies above all.
    const index = boundaries.findIndex((boundary) => value <= boundary);
    counts[index === -1 ? boundaries.length : index]!++;
  }
  return {
    attributes,
    count: values.length,
    sum: values.reduce((sum, value) => sum + value, 0),
    min: values.length > 0 ? Math.min(...values) : undefined,
    max: values.length > 0 ? Math.max(...values) : undefined,
    counts,
  };
}

/** The close and replay messages of a run, for the lifetimes and durations the histograms hold. */
export function recordRun() {
  const closes: SseStreamCloseMessage[] = [];
  const replays: SseChannelReplayMessage[] = [];
  const onClose = (message: unknown) => void closes.push(message as SseStreamCloseMessage);
  const onReplay = (message: unknown) => void replays.push(message as SseChannelReplayMessage);
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.streamClose, onClose);
  diagnostics_channel.subscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
  return {
    closes,
    replays,
    stop() {
      diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.streamClose, onClose);
      diagnostics_channel.unsubscribe(SSE_DIAGNOSTICS.channelReplay, onReplay);
    },
  };
}
