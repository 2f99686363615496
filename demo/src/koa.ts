import Koa from 'koa';
import { sse } from '@ssekit/koa';
import { renderClientPage } from './client-page.js';
import type { DemoParts } from './demo.js';
import { renderPage } from './page.js';

/** The demo on Koa: both pages, the open and the secure stream, tokens, the drop endpoint and the metrics. */
export function createKoaDemo({ feed, secure: { tokens, clientFiles }, metrics }: DemoParts): Koa {
  const page = renderPage('koa');
  const clientPage = renderClientPage('koa');
  const app = new Koa();
  app.use(sse());
  app.use(async function demoRoutes(ctx) {
    const route = `${ctx.method} ${ctx.path}`;
    if (route === 'GET /') {
      ctx.type = 'html';
      ctx.body = page;
    } else if (route === 'GET /events') {
      feed.serve(ctx.sse);
    } else if (route === 'POST /drop') {
      ctx.body = { dropped: feed.dropAll() };
    } else if (route === 'GET /client') {
      ctx.type = 'html';
      ctx.body = clientPage;
    } else if (ctx.method === 'GET' && ctx.path.startsWith('/client/')) {
      const text = clientFiles.get(ctx.path.slice('/client/'.length));
      if (text !== undefined) {
        ctx.type = 'text/javascript';
        ctx.body = text;
      }
    } else if (route === 'POST /token') {
      ctx.body = tokens.issue();
    } else if (route === 'GET /secure-events') {
      if (tokens.allows(ctx.get('authorization'))) return feed.serve(ctx.sse);
      ctx.status = 401;
      ctx.body = { error: 'a fresh token from POST /token, please' };
    } else if (route === 'GET /metrics' && metrics) {
      ctx.type = metrics.contentType;
      ctx.body = await metrics.scrape();
    }
  });
  return app;
}
