/** The baseline: node:http, one pre-formatted string written to every response. */
import http from 'node:http';
import { createHandWrittenBroadcast, listen, notFound, type BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const { attach, ...broadcast } = createHandWrittenBroadcast();
  const server = http.createServer((req, res) => {
    if (req.url !== '/events' && req.url !== '/single') return notFound(res);
    attach(res, req.url === '/single');
  });
  return { port: await listen(server), ...broadcast };
}
