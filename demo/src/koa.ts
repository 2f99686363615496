import Koa from 'koa';
import { sse } from '@ssekit/koa';
import { renderClientPage } from './client-page.js';
import type { Feed } from './feed.js';
import { renderPage } from './page.js';
import type { Secure } from './secure.js';

/** The demo on Koa: both pages, the open and the secure stream, tokens, and the drop endpoint. */
export function createKoaDemo(feed: Feed, { tokens, clientFiles }: Secure): Koa {
  const page = renderPage('koa');
  const clientPage = renderClientPage('koa');
  const app = new Koa();
  app.use(sse());
  app.use(function demoRoutes(ctx) {
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
    }
  });
  return app;
}
