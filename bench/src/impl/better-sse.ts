/**
 * better-sse 0.16: a session per request, registered with a channel once connected, and
 * `channel.broadcast`. It has no backpressure: `push` writes and returns whatever the socket
 * says, so in scenario B every event is pushed at once and Node buffers what the socket cannot
 * take yet.
 */
import http from 'node:http';
import { createChannel, createSession, type Session } from 'better-sse';
import { listen, notFound, type BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const channel = createChannel();
  let single: Session | undefined;
  const server = http.createServer((req, res) => {
    if (req.url === '/events') void createSession(req, res).then((session) => channel.register(session));
    else if (req.url === '/single') void createSession(req, res).then((session) => (single = session));
    else notFound(res);
  });
  const port = await listen(server);
  return {
    port,
    streams: () => channel.sessionCount,
    publish(data) {
      channel.broadcast(data, 'message', { eventId: String(data.seq) });
    },
    hasSingle: () => single !== undefined,
    sendSingle(data) {
      single!.push(data, 'message', String(data.seq));
    },
  };
}
