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
  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 48rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
  header { display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
  h1 { font-size: 1.4rem; margin: 0; }
  #state { padding: 0.15rem 0.7rem; border-radius: 1rem; font-weight: 600; background: #f9a825; color: #000; }
  #state[data-state="open"] { background: #2e7d32; color: #fff; }
  #state[data-state="closed"] { background: #c62828; color: #fff; }
  #note { padding: 0.5rem 0.8rem; border-left: 4px solid #f9a825; background: #f9a82522; }
  #note:empty { display: none; }
  ol { list-style: none; padding: 0; font-family: ui-monospace, monospace; font-size: 0.9rem; }
  li { display: grid; grid-template-columns: minmax(4rem, max-content) 5rem 1fr; gap: 0.5rem; padding: 0.2rem 0; border-bottom: 1px solid #8884; }
  li.marker { display: block; text-align: center; color: #888; }
</style>
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

  function addRow(className, cells) {
    const row = document.createElement('li');
    row.className = className;
    for (const text of cells) {
      const cell = document.createElement('span');
      cell.textContent = text;
      row.append(cell);
    }
    feed.prepend(row);
    while (feed.children.length > 200) feed.lastElementChild.remove();
  }

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
