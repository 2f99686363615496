import { ADD_ROW, PAGE_STYLE } from './page.js';

/**
 * The demo's second page: the same feed through `@ssekit/client` instead of the native
 * EventSource, from `/secure-events`, which answers only a request with a bearer token. The
 * client asks `POST /token` for a fresh one on every connect and reconnect, which a native
 * EventSource cannot do (it sends no header of yours).
 */
export function renderClientPage(framework: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssekit demo: @ssekit/client (${framework})</title>
<link rel="icon" href="data:,">
<style>
${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>ssekit demo: <code>@ssekit/client</code> <small>(${framework})</small></h1>
  <span id="state" data-state="connecting">connecting</span>
  <button id="drop" type="button">drop connection</button>
</header>
<p><code>@ssekit/client</code> reads <code>/secure-events</code>, which wants a bearer token, with a
fresh one from <code>POST /token</code> on every connect: <span id="tokens">none yet</span>. Drop
the connection, and it reconnects with the next token and <code>Last-Event-ID</code>. The
<a href="/">native <code>EventSource</code> page</a> reads the open feed.</p>
<p id="note" role="status"></p>
<ol id="feed"></ol>
<script type="module">
  import { createEventSource } from '/client/index.js';

  const stateBadge = document.getElementById('state');
  const note = document.getElementById('note');
  const feed = document.getElementById('feed');
  const tokensNote = document.getElementById('tokens');
  let tokens = 0;
  let opens = 0;

${ADD_ROW}
  async function token() {
    const response = await fetch('/token', { method: 'POST' });
    const { token } = await response.json();
    tokensNote.textContent = ++tokens + ' so far, the last ending in ' + token.slice(-6);
    return token;
  }

  const source = createEventSource('/secure-events', {
    headers: async () => ({ authorization: 'Bearer ' + (await token()) }),
    onOpen: () => {
      if (opens++ > 0) addRow('marker', ['reconnected, resuming after id ' + (source.lastEventId ?? 'none')]);
    },
    onError: (error) => void (note.textContent = error.message),
  });
  setInterval(() => (stateBadge.textContent = stateBadge.dataset.state = source.state), 200);
  source.on('tick', (data, event) => addRow('tick', ['#' + event.id, 'tick', 'count ' + data.count + ' at ' + new Date(data.time).toLocaleTimeString()]));
  source.on('notice', (data, event) => addRow('notice', ['#' + event.id, 'notice', data.text]));
  source.on('reset', (data) => {
    feed.replaceChildren();
    note.textContent = 'The server does not know id ' + data.lastEventId + ', so the feed starts over.';
  });

  document.getElementById('drop').addEventListener('click', async () => {
    const response = await fetch('/drop', { method: 'POST' });
    const { dropped } = await response.json();
    note.textContent = 'The server dropped ' + dropped + ' stream(s).';
  });
</script>
</body>
</html>
`;
}
