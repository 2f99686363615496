import type { Attributes } from '@opentelemetry/api';
import type { SseStreamOpenMessage } from '@ssekit/core';
import { SSE_METRIC_ATTRIBUTES } from './names.js';

/** The parts of each framework's request that name the route's pattern. */
interface RouteCarrier {
  /** Fastify's request. */
  readonly routeOptions?: { readonly url?: unknown };
  /** Koa's context, when @koa/router matched the request. */
  readonly _matchedRoute?: unknown;
  /** Express's request, once a route matched it. */
  readonly route?: { readonly path?: unknown };
  readonly baseUrl?: unknown;
}

/**
 * The attributes `createSseMetrics` gives a stream when no `attributes` option says otherwise:
 * `http.route`, the pattern of the route that opened it, where the framework knows one. Never the
 * URL path: a path may hold ids, and every distinct value costs a series in every metric.
 *
 * - Express: `req.route.path` (`/rooms/:room/events`), for a route of the app itself. A route
 *   of a router mounted with `app.use('/api', router)` gets none, because Express keeps only the
 *   matched mount path (`req.baseUrl`, which may hold ids), not its pattern.
 * - Fastify: `request.routeOptions.url`, prefixes included.
 * - Koa: `ctx._matchedRoute`, which `@koa/router` sets, prefixes included.
 * - `node:http`, `@ssekit/web`, and a route given as a RegExp: none.
 *
 * Call it from your own `attributes` to add to it rather than replace it.
 *
 * @example
 * ```ts
 * createSseMetrics({
 *   attributes: (open) => ({ ...defaultStreamAttributes(open), 'app.tier': tierOf(open.request) }),
 * });
 * ```
 */
export function defaultStreamAttributes(open: SseStreamOpenMessage): Attributes {
  const route = routeOf(open.request);
  return route === undefined ? {} : { [SSE_METRIC_ATTRIBUTES.httpRoute]: route };
}

function routeOf(request: unknown): string | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const carrier = request as RouteCarrier;
  if ('routeOptions' in carrier) return stringOrUndefined(carrier.routeOptions?.url);
  if ('_matchedRoute' in carrier) return stringOrUndefined(carrier._matchedRoute);
  // The stream opens lazily, from the handler, by which time Express has set `req.route`, even
  // under `app.use(sse())`, which runs before any route matched.
  if (carrier.baseUrl === '') return stringOrUndefined(carrier.route?.path);
  return undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
