import { SseError } from './errors.js';
import { createStreamGroup, type SseAdmission, type SseLimit, type SseStreamGroup } from './group.js';
import { resolveStreamOptions, type ResolvedStreamOptions, type SseStream, type SseStreamOptions } from './stream.js';
import { kFail } from './symbols.js';

/** Options every adapter takes: those of its streams, and a limit over them. */
export interface SseAdapterOptions<TRequest = any> extends Omit<SseStreamOptions, 'onError'> {
  /** Caps the open streams per key; the key function gets the framework's own request. */
  limit?: SseLimit<TRequest>;
  /** Caps how fast streams open and how many replays run at once: off unless given. */
  admission?: SseAdmission;
  /** {@link SseStreamOptions.onError}, with the framework's own request. */
  onError?: (error: unknown, stream: SseStream<any>, request: TRequest) => void;
}

/**
 * Resolves an adapter's options once, at mount time: stream options with their defaults, and
 * the group its streams join (the one given, or a new one with the limit and admission).
 * @throws {SseError} `ERR_SSE_INVALID_OPTION` on an invalid option, or on `group` with `limit`
 * or `admission` (a group you make carries its own).
 */
export function resolveAdapterOptions<TRequest>({ limit, admission, ...options }: SseAdapterOptions<TRequest>): {
  streams: SseStreamGroup;
  options: ResolvedStreamOptions;
} {
  if ((limit || admission) && options.group) {
    throw new SseError(
      'ERR_SSE_INVALID_OPTION',
      `Give ${limit ? 'limit' : 'admission'} to createStreamGroup() when you pass your own group.`,
    );
  }
  const streams = options.group ?? createStreamGroup({ limit, admission });
  return { streams, options: resolveStreamOptions({ ...options, group: streams }) };
}

/**
 * Closes `stream` with reason `error` after reporting `error` through its `onError`: for an
 * adapter whose framework hands it a handler that failed (a rejected promise), as a failing
 * piped source does.
 */
export function failStream(stream: SseStream<any>, error: unknown): void {
  (stream as SseStream<any> & { [kFail](error: unknown): void })[kFail](error);
}
