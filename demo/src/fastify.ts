import Fastify, { type FastifyInstance } from 'fastify';
import ssePlugin from '@ssekit/fastify';
import { renderClientPage } from './client-page.js';
import type { DemoParts } from './demo.js';
import { renderPage } from './page.js';

/** The demo on Fastify: both pages, the open and the secure stream, tokens, the drop endpoint and the metrics. */
export function createFastifyDemo({ feed, secure: { tokens, clientFiles }, metrics }: DemoParts): FastifyInstance {
  const page = renderPage('fastify');
  const clientPage = renderClientPage('fastify');
  // A request in flight at shutdown leaves a keep-alive socket that close() would otherwise
  // wait on for Fastify's keep-alive timeout, 72 s.
  const app = Fastify({ forceCloseConnections: true });
  app.register(ssePlugin);
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  app.get('/events', (_request, reply) => feed.serve(reply.sse));
  app.post('/drop', () => Promise.resolve({ dropped: feed.dropAll() }));
  app.get('/client', (_request, reply) => reply.type('text/html; charset=utf-8').send(clientPage));
  app.get<{ Params: { file: string } }>('/client/:file', (request, reply) => {
    const text = clientFiles.get(request.params.file);
    return text === undefined ? reply.code(404).send() : reply.type('text/javascript').send(text);
  });
  app.post('/token', () => Promise.resolve(tokens.issue()));
  app.get('/secure-events', (request, reply) => {
    if (!tokens.allows(request.headers.authorization)) return reply.code(401).send({ error: 'a fresh token from POST /token, please' });
    feed.serve(reply.sse);
  });
  if (metrics) app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.scrape()));
  return app;
}
