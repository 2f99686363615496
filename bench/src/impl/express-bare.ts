/**
 * Express by hand, for reference: the baseline's code inside an Express route, no SSE library.
 * What Express itself costs per connection and per write, apart from any SSE library.
 */
import http from 'node:http';
import express from 'express';
import { createHandWrittenBroadcast, listen, type BenchServer } from './common.js';

export async function start(): Promise<BenchServer> {
  const { attach, ...broadcast } = createHandWrittenBroadcast();
  const app = express();
  app.get('/events', (_req, res) => attach(res, false));
  app.get('/single', (_req, res) => attach(res, true));
  return { port: await listen(http.createServer(app)), ...broadcast };
}
