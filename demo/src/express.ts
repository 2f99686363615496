import express from 'express';
import { sse } from '@ssekit/express';
import { renderClientPage } from './client-page.js';
import type { DemoParts } from './demo.js';
import { renderPage } from './page.js';

/** The demo on Express: both pages, the open and the secure stream, tokens, the drop endpoint and the metrics. */
export function createExpressDemo({ feed, secure: { tokens, clientFiles }, metrics }: DemoParts): express.Express {
  const page = renderPage('express');
  const clientPage = renderClientPage('express');
  const app = express();
  const events = sse();
  app.get('/', (_req, res) => void res.type('html').send(page));
  app.get('/events', events, (_req, res) => feed.serve(res.sse));
  app.post('/drop', (_req, res) => void res.json({ dropped: feed.dropAll() }));
  app.get('/client', (_req, res) => void res.type('html').send(clientPage));
  app.get('/client/:file', (req, res) => {
    const text = clientFiles.get(req.params.file);
    if (text === undefined) return void res.sendStatus(404);
    res.type('text/javascript').send(text);
  });
  app.post('/token', (_req, res) => void res.json(tokens.issue()));
  app.get('/secure-events', events, (req, res) => {
    // Rejected before the stream opens: a 401, which @ssekit/client takes as fatal.
    if (!tokens.allows(req.headers.authorization)) return void res.status(401).json({ error: 'a fresh token from POST /token, please' });
    feed.serve(res.sse);
  });
  if (metrics) app.get('/metrics', async (_req, res) => void res.type(metrics.contentType).send(await metrics.scrape()));
  return app;
}
