import express from 'express';
import { sse } from '@ssekit/express';
import type { Feed } from './feed.js';
import { renderPage } from './page.js';

/** The demo on Express: the page, the event stream, and the endpoint that drops streams. */
export function createExpressDemo(feed: Feed): express.Express {
  const page = renderPage('express');
  const app = express();
  app.get('/', (_req, res) => void res.type('html').send(page));
  app.get('/events', sse(), (_req, res) => feed.serve(res.sse));
  app.post('/drop', (_req, res) => void res.json({ dropped: feed.dropAll() }));
  return app;
}
