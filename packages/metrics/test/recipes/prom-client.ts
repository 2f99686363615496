import diagnostics_channel from 'node:diagnostics_channel';
import client from 'prom-client';
import { SSE_DIAGNOSTICS, type SseDiagnosticsMessages, type SseStream } from '@ssekit/core';

/**
 * ssekit's measures on a prom-client registry, straight from its diagnostics channels. Returns
 * a function that stops recording and takes the metrics off the registry.
 */
export function collectSseMetrics(registry: client.Registry = client.register): () => void {
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[], collect?: (this: client.Counter) => void) =>
    new client.Counter({ name, help, labelNames, registers, collect });
  const histogram = (name: string, help: string, labelNames: string[], buckets: number[]) =>
    new client.Histogram({ name, help, labelNames, buckets, registers });

  const open = new client.Gauge({ name: 'ssekit_streams_open', help: 'SSE streams open now.', labelNames: ['route'], registers });
  const closed = counter('ssekit_streams_closed_total', 'SSE streams closed.', ['route', 'reason']);
  const lifetime = histogram(
    'ssekit_stream_lifetime_seconds',
    'How long SSE streams lived.',
    ['route', 'reason'],
    [0.1, 1, 10, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800],
  );
  const overflows = counter('ssekit_streams_overflows_total', 'SSE streams cut for overflow.', ['route']);
  const deferred = counter('ssekit_streams_deferred_total', 'SSE requests deferred by admission.', ['route', 'cause', 'status']);
  const replays = counter('ssekit_replays_total', 'Replays of missed events.', ['route', 'cause']);
  const replayEvents = counter('ssekit_replay_events_total', 'Events replayed.', ['route', 'cause']);
  const replayDuration = histogram(
    'ssekit_replay_duration_seconds',
    'How long replays took.',
    ['route', 'cause'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  const resets = counter('ssekit_resets_total', 'Reset events sent.', ['route']);
  const backplaneErrors = counter('ssekit_backplane_errors_total', 'Backplane errors.', ['backplane']);
  const backplaneReconnects = counter('ssekit_backplane_reconnects_total', 'Backplane reconnects.', ['backplane']);

  // Live, not only at close: at each scrape, what closed streams sent plus what open ones sent so far.
  const routes = new Map<SseStream, string>(); // each open stream's route; earlier streams are not counted
  const closedTotals = new Map<string, { events: number; bytes: number }>();
  const sent = (key: 'events' | 'bytes') =>
    function collect(this: client.Counter) {
      const totals = new Map([...closedTotals].map(([route, total]) => [route, total[key]]));
      for (const [stream, route] of routes) {
        totals.set(route, (totals.get(route) ?? 0) + (key === 'events' ? stream.eventsSent : (stream.bytesSent ?? 0)));
      }
      this.reset();
      for (const [route, total] of totals) this.inc({ route }, total);
    };
  counter('ssekit_events_sent_total', 'SSE events sent.', ['route'], sent('events'));
  counter('ssekit_bytes_sent_total', 'SSE body bytes sent.', ['route'], sent('bytes'));

  const subscriptions: Array<[string, (message: unknown) => void]> = [];
  const on = <TName extends keyof SseDiagnosticsMessages>(name: TName, listener: (message: SseDiagnosticsMessages[TName]) => void) => {
    subscriptions.push([name, listener as (message: unknown) => void]);
    diagnostics_channel.subscribe(name, listener as (message: unknown) => void);
  };
  // The route's pattern, never the URL path (it may hold ids): Fastify, @koa/router, an Express app route.
  const routeOf = (request: unknown): string => {
    const r = (request ?? {}) as {
      routeOptions?: { url?: unknown };
      _matchedRoute?: unknown;
      baseUrl?: unknown;
      route?: { path?: unknown };
    };
    const route = r.routeOptions?.url ?? r._matchedRoute ?? (r.baseUrl === '' ? r.route?.path : undefined);
    return typeof route === 'string' ? route : '';
  };
  on(SSE_DIAGNOSTICS.streamOpen, ({ stream, request }) => {
    routes.set(stream, routeOf(request));
    open.inc({ route: routes.get(stream) });
  });
  on(SSE_DIAGNOSTICS.streamClose, ({ stream, reason, lifetimeMs, events, bytes }) => {
    const route = routes.get(stream);
    if (route === undefined) return;
    routes.delete(stream);
    const total = closedTotals.get(route) ?? { events: 0, bytes: 0 };
    total.events += events;
    total.bytes += bytes ?? 0;
    closedTotals.set(route, total);
    open.dec({ route });
    closed.inc({ route, reason });
    lifetime.observe({ route, reason }, lifetimeMs / 1000);
  });
  on(SSE_DIAGNOSTICS.streamDeferred, ({ stream, request, cause, status }) => {
    deferred.inc({ route: routes.get(stream) ?? routeOf(request), cause, status });
  });
  on(SSE_DIAGNOSTICS.streamOverflow, ({ stream }) => {
    if (routes.has(stream)) overflows.inc({ route: routes.get(stream) });
  });
  on(SSE_DIAGNOSTICS.channelReplay, ({ stream, cause, events, durationMs }) => {
    const route = routes.get(stream);
    if (route === undefined) return;
    replays.inc({ route, cause });
    replayEvents.inc({ route, cause }, events);
    replayDuration.observe({ route, cause }, durationMs / 1000);
  });
  on(SSE_DIAGNOSTICS.channelReset, ({ stream }) => {
    if (routes.has(stream)) resets.inc({ route: routes.get(stream) });
  });
  on(SSE_DIAGNOSTICS.backplaneError, ({ backplane }) => backplaneErrors.inc({ backplane }));
  on(SSE_DIAGNOSTICS.backplaneReconnect, ({ backplane }) => backplaneReconnects.inc({ backplane }));

  return () => {
    for (const [name, listener] of subscriptions) diagnostics_channel.unsubscribe(name, listener);
    for (const { name } of registry.getMetricsAsArray()) if (name.startsWith('ssekit_')) registry.removeSingleMetric(name);
  };
}
