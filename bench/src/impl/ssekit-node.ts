/** ssekit on plain node:http: createSseStream in a stream group, and a channel. */
import http from 'node:http';
import * as core from '@ssekit/core';
import * as node from '@ssekit/core/node';
import type { SseStream } from '@ssekit/core';
import {
  channelServer,
  closeServer,
  keepAliveOption,
  listen,
  notFound,
  SHUTDOWN_OPTIONS,
  type BenchServer,
  type Payloads,
} from './common.js';

/** What the server takes from core: this build's, or an earlier one's (ssekit-node-baseline). */
export interface CoreBuild {
  createChannel: typeof core.createChannel;
  createStreamGroup: typeof core.createStreamGroup;
  createSseStream: typeof node.createSseStream;
}

export async function serveOn({ createChannel, createStreamGroup, createSseStream }: CoreBuild): Promise<BenchServer> {
  const channel = createChannel<Payloads>();
  const group = createStreamGroup();
  let single: SseStream<Payloads> | undefined;
  const options = { group, ...keepAliveOption() };
  const server = http.createServer((req, res) => {
    if (req.url === '/events') channel.subscribe(createSseStream(req, res, options));
    else if (req.url === '/single') {
      single = createSseStream<Payloads>(req, res, options);
      single.open();
    } else notFound(res);
  });
  const shutdown = async () => {
    await group.shutdown(SHUTDOWN_OPTIONS);
    await closeServer(server);
  };
  return channelServer(await listen(server), channel, () => single, shutdown);
}

export function start(): Promise<BenchServer> {
  return serveOn({ ...core, ...node });
}
