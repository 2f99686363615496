/**
 * The name of each metric `createSseMetrics` records, by OpenTelemetry's naming guidelines:
 * dotted, under the `ssekit.` namespace, with the unit in the metric's `unit` (UCUM), never in
 * its name. A Prometheus exporter turns the dots into underscores and adds `_total` to counters
 * (`ssekit.streams.closed` becomes `ssekit_streams_closed_total`).
 */
export const SSE_METRICS = Object.freeze({
  /** UpDownCounter, `{stream}`: streams open now. */
  streamsOpen: 'ssekit.streams.open',
  /** Counter, `{stream}`: streams closed, by `ssekit.close.reason`. */
  streamsClosed: 'ssekit.streams.closed',
  /**
   * Counter, `{stream}`: requests the group's admission deferred, by `ssekit.defer.cause`
   * (`opens` or `replays`) and `http.response.status_code` (200 or 503).
   */
  streamsDeferred: 'ssekit.streams.deferred',
  /** Counter, `{stream}`: streams cut because their client read too slowly (`maxBufferedBytes`). */
  streamsOverflows: 'ssekit.streams.overflows',
  /** Counter (observed), `{event}`: event blocks written, open streams included. */
  eventsSent: 'ssekit.events.sent',
  /** Counter (observed), `By`: body bytes written, open streams included. */
  bytesSent: 'ssekit.bytes.sent',
  /** Histogram, `s`: how long each stream lived, by `ssekit.close.reason`. */
  streamLifetime: 'ssekit.stream.lifetime',
  /** Counter, `{replay}`: replays a channel ran, by `ssekit.replay.cause`. */
  replays: 'ssekit.replays',
  /** Counter, `{event}`: events those replays wrote, by `ssekit.replay.cause`. */
  replayEvents: 'ssekit.replay.events',
  /** Histogram, `s`: how long each replay took, by `ssekit.replay.cause`. */
  replayDuration: 'ssekit.replay.duration',
  /** Counter, `{reset}`: reset events a channel sent to clients it could not resume. */
  resets: 'ssekit.resets',
  /** Counter, `{error}`: what backplanes told their `onError`, by `ssekit.backplane`. */
  backplaneErrors: 'ssekit.backplane.errors',
  /** Counter, `{reconnect}`: backplanes that reached their server again, by `ssekit.backplane`. */
  backplaneReconnects: 'ssekit.backplane.reconnects',
} as const);

/** The attributes `createSseMetrics` sets besides a stream's own. */
export const SSE_METRIC_ATTRIBUTES = Object.freeze({
  /** The route's pattern (`/rooms/:room/events`), where the framework knows it: OpenTelemetry's HTTP attribute. */
  httpRoute: 'http.route',
  /** Why a stream closed: an `SseCloseReason` (`client`, `server`, `overflow`, `lifetime`, ...). */
  closeReason: 'ssekit.close.reason',
  /** `resume` (a client's Last-Event-ID) or `gap` (the backplane skipped entries in live delivery). */
  replayCause: 'ssekit.replay.cause',
  /** What was at its cap when a request was deferred: `opens` (opensPerSecond) or `replays` (the replay queue). */
  deferCause: 'ssekit.defer.cause',
  /** The status a deferral was answered with: 200 or 503. OpenTelemetry's HTTP attribute. */
  statusCode: 'http.response.status_code',
  /** Which backplane: `redis`, `postgres`, `nats`, or another's own name. */
  backplane: 'ssekit.backplane',
} as const);

/**
 * Bucket bounds of `ssekit.stream.lifetime`, in seconds: streams live from a refused moment to
 * days, so the buckets run from 100 ms to a week (1 s, 1 min, 5 min, 1 h, 12 h, 1 day, ...).
 */
export const LIFETIME_BUCKETS: readonly number[] = Object.freeze([
  0.1, 1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400, 259_200, 604_800,
]);

/** Bucket bounds of `ssekit.replay.duration`, in seconds: from a memory history's 1 ms to a slow backplane's 10 s. */
export const REPLAY_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);
