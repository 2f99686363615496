import express from 'express';
import { sse } from '@ssekit/express';
import { renderClientPage } from './client-page.js';
import type { Feed } from './feed.js';
import { renderPage } from './page.js';
import type { Secure } from './secure.js';

/** The demo on Express: both pages, the open and the secure stream, tokens, and the drop endpoint. */
export function createExpressDemo(feed: Feed, { tokens, clientFiles }: Secure): express.Express {
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
  return app;
}
