import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { createSseMetrics } from '@ssekit/metrics';

/** The SSE metrics of this process in the Prometheus text format, for a `/metrics` route on any framework. */
export interface PrometheusMetrics {
  /** The `Content-Type` of what {@link PrometheusMetrics.scrape} returns. */
  readonly contentType: string;
  /** Collects every metric now, as Prometheus scrapes it. */
  scrape(): Promise<string>;
  /** Stops recording. */
  close(): Promise<void>;
}

export function createPrometheusMetrics(): PrometheusMetrics {
  // The exporter only reads here: the app serves what it collects on its own port, at /metrics.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const sseMetrics = createSseMetrics({ meterProvider });
  const serializer = new PrometheusSerializer();
  return {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async scrape() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    async close() {
      sseMetrics.close();
      await meterProvider.shutdown();
    },
  };
}
