/**
 * The four adapters side by side for suites that must hold on each: the test-kit's TARGETS (raw
 * node:http, Express, Fastify, Koa, and the older majors) and @ssekit/web, served on Node by
 * Hono's node server. A route gets the stream; an optional `authorize` sees the request's URL
 * first and turns it away with 401 before any stream opens, each framework its own way.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { createStreamGroup, type SseAdmission, type SseStream, type SseStreamGroup, type SseStreamOptions } from '@ssekit/core';
import { createSseResponse } from '@ssekit/web';
import { TARGETS, startApp } from '@ssekit/test-kit';

export const ADAPTER_TARGETS = [...TARGETS, 'web'] as const;
export type AdapterTarget = (typeof ADAPTER_TARGETS)[number];

export interface TargetOptions {
  options?: SseStreamOptions;
  /** The group's admission. */
  admission?: SseAdmission;
  /** Whether the request may stream; a `false` answers 401 before the stream opens. */
  authorize?: (url: URL) => boolean;
  /** HTML served at `/page`, on the same origin as `/events`. */
  page?: string;
}

export interface TargetApp {
  readonly url: string;
  /** The streams of authorized requests, in order. */
  readonly streams: SseStream[];
  /** Each `/events` request, in order: the Node request underneath, or the Fetch `Request`. */
  readonly requests: Array<IncomingMessage | Request>;
  /** What each `/events` request was answered: 200 or 401. */
  readonly statuses: number[];
  /** The `Last-Event-ID` each `/events` request carried. */
  readonly lastEventIds: Array<string | undefined>;
  /** The group every stream joined. */
  readonly group: SseStreamGroup;
  close(): Promise<void>;
}

/** Serves `route` at `/events` on `target`, on 127.0.0.1 and port 0. */
export async function startTarget(
  target: AdapterTarget,
  route: (stream: SseStream) => unknown,
  { options, authorize, page = '', admission }: TargetOptions = {},
): Promise<TargetApp> {
  const streams: SseStream[] = [];
  const requests: Array<IncomingMessage | Request> = [];
  const statuses: number[] = [];
  const lastEventIds: Array<string | undefined> = [];
  const admit = (url: string, lastEventId: string | undefined) => {
    lastEventIds.push(lastEventId);
    const allowed = !authorize || authorize(new URL(url, 'http://localhost'));
    statuses.push(allowed ? 200 : 401);
    return allowed;
  };

  if (target === 'web') {
    const group = createStreamGroup({ admission });
    const app = new Hono();
    app.get('/page', (c) => c.html(page));
    app.get('/events', (c) => {
      requests.push(c.req.raw);
      if (!admit(c.req.url, c.req.header('last-event-id'))) return c.text('expired', 401);
      return createSseResponse(
        c.req.raw,
        (stream) => {
          streams.push(stream);
          return route(stream);
        },
        { ...options, group },
      );
    });
    const server: ServerType = await new Promise((resolve) => {
      const listening = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(listening));
    });
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      streams,
      requests,
      statuses,
      lastEventIds,
      group,
      close: async () => {
        for (const stream of streams) stream.close();
        await group.shutdown();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
      },
    };
  }

  const app = await startApp(
    target,
    ({ stream, request, reject }) => {
      requests.push(request);
      if (!admit(request.url ?? '', request.headers['last-event-id'] as string | undefined)) return reject(401, 'expired');
      streams.push(stream);
      return route(stream);
    },
    { options, page, admission },
  );
  return { url: app.url, streams, requests, statuses, lastEventIds, group: app.group, close: () => app.close() };
}

/** The Node request or Fetch `Request` under what a framework hands its handlers. */
export function rawRequestOf(request: unknown): unknown {
  const framework = request as { raw?: unknown; req?: unknown };
  // Fastify's request keeps the Node one as `raw`, Koa's context as `req`; Express's is it.
  return framework.raw ?? framework.req ?? request;
}
