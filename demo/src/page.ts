/** The look both demo pages share. */
export const PAGE_STYLE = `  :root { color-scheme: light dark; font-family: system-ui, sans-serif; }
  body { max-width: 48rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.4; }
  header { display: flex; align-items: center; gap: 1rem; flex-wrap: wrap; }
  h1 { font-size: 1.4rem; margin: 0; }
  #state { padding: 0.15rem 0.7rem; border-radius: 1rem; font-weight: 600; background: #f9a825; color: #000; }
  #state[data-state="open"] { background: #2e7d32; color: #fff; }
  #state[data-state="closed"] { background: #c62828; color: #fff; }
  #note { padding: 0.5rem 0.8rem; border-left: 4px solid #f9a825; background: #f9a82522; }
  #note:empty { display: none; }
  #continuity[data-ok="false"] { color: #c62828; font-weight: 600; }
  ol { list-style: none; padding: 0; font-family: ui-monospace, monospace; font-size: 0.9rem; }
  li { display: grid; grid-template-columns: minmax(4rem, max-content) 5rem 1fr; gap: 0.5rem; padding: 0.2rem 0; border-bottom: 1px solid #8884; }
  li.notice { color: #1565c0; }
  li.marker { display: block; text-align: center; color: #888; }
`;

/** The page script's one helper both pages share: a row at the top of the feed, at most 200 kept. */
export const ADD_ROW = `  function addRow(className, cells) {
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
`;

/**
 * The demo page: one self-contained HTML document whose native `EventSource` shows the feed
 * at `/events`, the connection state, and whether ids ever skip or repeat.
 */
export function renderPage(framework: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ssekit demo (${framework})</title>
<link rel="icon" href="data:,">
<style>
${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>ssekit demo <small>(${framework})</small></h1>
  <span id="state" data-state="connecting">connecting</span>
  <button id="drop" type="button">drop connection</button>
</header>
<p>A native <code>EventSource</code> reads <code>/events</code>. Drop the connection: the browser
reconnects with <code>Last-Event-ID</code>, and the server replays what it missed. The
<a href="/client">@ssekit/client page</a> reads the same feed with a bearer token.</p>
<p id="note" role="status"></p>
<p>Ids so far: <span id="continuity">none yet</span></p>
<ol id="feed"></ol>
<script>
  const stateBadge = document.getElementById('state');
  const note = document.getElementById('note');
  const continuity = document.getElementById('continuity');
  const feed = document.getElementById('feed');
  let lastId;
  let opens = 0;
  let broken = false;

  function setState(state) {
    stateBadge.textContent = state;
    stateBadge.dataset.state = state;
  }

${ADD_ROW}
  // In one process, ids count up by one, so any other step means a gap or a repeat. Through
  // Redis, ids are stream entry ids ("<ms>-<seq>") that only ever grow, and each instance's
  // ticks count up by one, so a gap shows in the counts of the instance that published it.
  const lastCount = new Map();
  function after(id, previous) {
    const [ms, seq] = id.split('-').map(BigInt);
    const [previousMs, previousSeq] = previous.split('-').map(BigInt);
    return ms > previousMs || (ms === previousMs && seq > previousSeq);
  }
  function checkId(id, data) {
    let problem;
    if (lastId !== undefined) {
      if (!id.includes('-')) {
        if (Number(id) !== Number(lastId) + 1) problem = 'expected id ' + (Number(lastId) + 1) + ' but got ' + id;
      } else if (!after(id, lastId)) {
        problem = 'id ' + id + ' came after ' + lastId;
      }
    }
    if (data.from !== undefined && data.count !== undefined) {
      const previous = lastCount.get(data.from);
      // A count that starts over at 1 is an instance that restarted.
      if (previous !== undefined && data.count !== previous + 1 && data.count !== 1) {
        problem = 'tick ' + data.count + ' from ' + data.from + ' came after tick ' + previous;
      }
      lastCount.set(data.from, data.count);
    }
    if (problem) {
      broken = true;
      continuity.textContent = problem;
    } else if (!broken) {
      continuity.textContent = 'no gap, no repeat (last id ' + id + ')';
    }
    continuity.dataset.ok = String(!broken);
    lastId = id;
  }

  function show(event, data, text) {
    checkId(event.lastEventId, data);
    addRow(event.type, ['#' + event.lastEventId, event.type, (data.from ? '[' + data.from + '] ' : '') + text]);
  }

  const source = new EventSource('/events');
  source.addEventListener('open', () => {
    setState('open');
    if (opens++ > 0) addRow('marker', ['reconnected, resuming after id ' + (lastId ?? 'none')]);
  });
  source.addEventListener('error', () => {
    setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  });
  source.addEventListener('tick', (event) => {
    const data = JSON.parse(event.data);
    show(event, data, 'count ' + data.count + ' at ' + new Date(data.time).toLocaleTimeString());
  });
  source.addEventListener('notice', (event) => {
    const data = JSON.parse(event.data);
    show(event, data, data.text);
  });
  source.addEventListener('reset', (event) => {
    const data = JSON.parse(event.data);
    feed.replaceChildren();
    lastId = event.lastEventId || undefined;
    lastCount.clear();
    broken = false;
    continuity.textContent = 'starting over after id ' + lastId;
    continuity.dataset.ok = 'true';
    note.textContent = 'The server does not know id ' + data.lastEventId +
      ' (it restarted, or those events are too old), so the feed starts over.';
  });

  document.getElementById('drop').addEventListener('click', async () => {
    try {
      const response = await fetch('/drop', { method: 'POST' });
      const { dropped } = await response.json();
      note.textContent = 'The server dropped ' + dropped + ' stream(s). Watch the state reconnect.';
    } catch (error) {
      note.textContent = 'Could not reach the server: ' + error.message;
    }
  });
</script>
</body>
</html>
`;
}
