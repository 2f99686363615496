import Koa from 'koa';
import { sse } from '@ssekit/koa';
import type { Feed } from './feed.js';
import { renderPage } from './page.js';

/** The demo on Koa: the page, the event stream, and the endpoint that drops streams. */
export function createKoaDemo(feed: Feed): Koa {
  const page = renderPage('koa');
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
    }
  });
  return app;
}
