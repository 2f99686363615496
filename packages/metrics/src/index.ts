/**
 * `@ssekit/metrics`: OpenTelemetry metrics of ssekit's streams, channels and backplanes, recorded
 * from what they publish on `node:diagnostics_channel`.
 */
export { createSseMetrics, type SseMetrics, type SseMetricsOptions } from './metrics.js';
export { defaultStreamAttributes } from './attributes.js';
export { LIFETIME_BUCKETS, REPLAY_DURATION_BUCKETS, SSE_METRIC_ATTRIBUTES, SSE_METRICS } from './names.js';
