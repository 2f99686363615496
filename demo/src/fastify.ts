import Fastify, { type FastifyInstance } from 'fastify';
import ssePlugin from '@ssekit/fastify';
import type { Feed } from './feed.js';
import { renderPage } from './page.js';

/** The demo on Fastify: the page, the event stream, and the endpoint that drops streams. */
export function createFastifyDemo(feed: Feed): FastifyInstance {
  const page = renderPage('fastify');
  // A request in flight at shutdown leaves a keep-alive socket that close() would otherwise
  // wait on for Fastify's keep-alive timeout, 72 s.
  const app = Fastify({ forceCloseConnections: true });
  app.register(ssePlugin);
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/events', (_request, reply) => feed.serve(reply.sse));
  app.post('/drop', () => Promise.resolve({ dropped: feed.dropAll() }));
  return app;
}
