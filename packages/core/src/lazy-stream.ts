import type { SseStream } from './stream.js';
import { kCreateStream, kLazyStream } from './symbols.js';

export { kLazyStream };

/** An object that a framework hands each request (Express's `res`, Koa's `ctx`, Fastify's reply). */
interface LazyStreamHolder {
  [kCreateStream]?: (holder: object) => SseStream<any>;
  [kLazyStream]?: SseStream<any>;
}

/**
 * The stream of `holder`: made by `create` on first call, the same one after. For frameworks
 * that declare the property themselves (Fastify's `decorateReply` getter); declare
 * {@link kLazyStream} as a slot too, so that every holder keeps one shape.
 */
export function lazyStream<THolder extends object>(holder: THolder, create: (holder: THolder) => SseStream<any>): SseStream<any> {
  return ((holder as LazyStreamHolder)[kLazyStream] ??= create(holder));
}

/**
 * Gives `holder` (Express's `res`, Koa's `ctx`) an `sse` property whose stream `create` makes on
 * first read.
 *
 * The getter is defined once, on the holder's prototype (the app's `response` or `context`),
 * and each holder only gets two data properties: no accessor and closure made per request,
 * which every idle connection would keep for its lifetime.
 */
export function defineLazyStream<THolder extends object>(holder: THolder, create: (holder: THolder) => SseStream<any>): void {
  (holder as LazyStreamHolder)[kCreateStream] = create as (holder: object) => SseStream<any>;
  const prototype = Object.getPrototypeOf(holder) as object | null;
  const target = prototype && prototype !== Object.prototype ? prototype : holder;
  if (!Object.hasOwn(target, 'sse')) Object.defineProperty(target, 'sse', { configurable: true, get: sseGetter });
}

function sseGetter(this: LazyStreamHolder): SseStream<any> | undefined {
  const create = this[kCreateStream];
  return create && lazyStream(this, create);
}
