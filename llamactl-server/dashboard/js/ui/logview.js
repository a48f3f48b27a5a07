// A live log: one EventSource on `/api/v1/instances/{name}/logs?lines=500&follow=true`
// (events `stdout`, `stderr`, `manager`; id = sequence), with search, pause, wrap, download.
import { h, download } from './dom.js';
import { path } from '../api.js';

const MAX_LINES = 5000;

/**
 * Creates a log view following an instance's log. Call `close()` when leaving the page.
 * @param {string} name the instance
 * @returns {{el: HTMLElement, close: () => void, reopen: () => void}}
 */
export function logView(name) {
  /** @type {Array<{seq: number|null, stream: string, text: string, el: HTMLElement|null}>} */
  const lines = [];
  let paused = false;
  const held = [];
  let filter = '';
  let source = null;
  let closed = false;
  let retry = 0;
  let retryTimer = 0;

  const view = h('div.log-view', { 'data-test': 'log-view', tabindex: '0', role: 'log', 'aria-label': `Log of ${name}` });
  const search = h('input', { type: 'search', placeholder: 'Filter lines…', 'data-test': 'log-search', 'aria-label': 'Filter log lines' });
  const pauseBtn = h('button.btn', { type: 'button', 'data-test': 'log-pause', 'aria-pressed': 'false' }, 'Pause');
  const wrapBtn = h('button.btn', { type: 'button', 'data-test': 'log-wrap', 'aria-pressed': 'false' }, 'Wrap lines');
  const downloadBtn = h('button.btn', { type: 'button', 'data-test': 'log-download' }, 'Download');
  const state = h('span.muted.small', { 'data-test': 'log-state', 'aria-live': 'polite' }, 'Connecting…');
  const el = h('div', null, h('div.toolbar', null, search, pauseBtn, wrapBtn, downloadBtn, state), view);

  function lineEl(line) {
    const div = h('div', { class: 'log-line ' + line.stream, 'data-test': 'log-line', 'data-stream': line.stream });
    paint(div, line.text);
    return div;
  }

  function paint(div, text) {
    div.textContent = '';
    if (!filter) { div.textContent = text || '\u200b'; return; }
    const lower = text.toLowerCase();
    let at = 0;
    for (let i = lower.indexOf(filter); i >= 0; i = lower.indexOf(filter, at)) {
      if (i > at) div.appendChild(document.createTextNode(text.slice(at, i)));
      div.appendChild(h('mark', null, text.slice(i, i + filter.length)));
      at = i + filter.length;
    }
    if (at < text.length) div.appendChild(document.createTextNode(text.slice(at)));
  }

  function atBottom() {
    return view.scrollHeight - view.scrollTop - view.clientHeight < 40;
  }

  function show(batch) {
    const stick = atBottom();
    const frag = document.createDocumentFragment();
    for (const line of batch) {
      line.el = lineEl(line);
      if (filter && !line.text.toLowerCase().includes(filter)) line.el.hidden = true;
      frag.appendChild(line.el);
    }
    view.appendChild(frag);
    while (lines.length > MAX_LINES) {
      const old = lines.shift();
      if (old.el) old.el.remove();
    }
    if (stick) view.scrollTop = view.scrollHeight;
  }

  let pending = [];
  let frame = 0;
  function add(stream, e) {
    const seq = e.lastEventId !== '' && !Number.isNaN(Number(e.lastEventId)) ? Number(e.lastEventId) : null;
    const line = { seq, stream, text: String(e.data), el: null };
    lines.push(line);
    if (paused) { held.push(line); updatePaused(); return; }
    pending.push(line);
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; const b = pending; pending = []; show(b); });
  }

  /** After a reconnection the server replays the last lines again: start the view afresh. */
  function clearView() {
    cancelAnimationFrame(frame);
    frame = 0;
    pending = [];
    held.length = 0;
    lines.length = 0;
    view.textContent = '';
  }

  function updatePaused() {
    state.textContent = paused ? `Paused${held.length ? ` — ${held.length} new line${held.length === 1 ? '' : 's'} waiting` : ''}` : 'Following';
  }

  let opened = false;
  function open() {
    if (closed) return;
    if (opened) clearView();
    opened = true;
    const es = new EventSource(`${path('instances', name, 'logs')}?lines=500&follow=true`, { withCredentials: true });
    source = es;
    for (const stream of ['stdout', 'stderr', 'manager']) es.addEventListener(stream, (e) => add(stream, e));
    es.addEventListener('message', (e) => add('stdout', e));
    es.addEventListener('lagged', (e) => add('manager', { lastEventId: '', data: `[${e.data}]` }));
    es.addEventListener('open', () => { retry = 0; if (!paused) state.textContent = 'Following'; });
    es.addEventListener('error', () => {
      if (source !== es) return;
      es.close();
      source = null;
      if (closed) return;
      state.textContent = 'Log stream interrupted — reconnecting…';
      retry = Math.min(retry ? retry * 2 : 1000, 30000);
      retryTimer = setTimeout(open, retry);
    });
  }

  search.addEventListener('input', () => {
    filter = search.value.trim().toLowerCase();
    for (const line of lines) {
      if (!line.el) continue;
      line.el.hidden = Boolean(filter) && !line.text.toLowerCase().includes(filter);
      paint(line.el, line.text);
    }
  });
  pauseBtn.addEventListener('click', () => {
    paused = !paused;
    pauseBtn.textContent = paused ? 'Resume' : 'Pause';
    pauseBtn.setAttribute('aria-pressed', String(paused));
    if (!paused && held.length) show(held.splice(0));
    updatePaused();
  });
  wrapBtn.addEventListener('click', () => {
    const on = view.classList.toggle('wrap');
    wrapBtn.setAttribute('aria-pressed', String(on));
  });
  downloadBtn.addEventListener('click', () => {
    const text = lines.map((l) => (l.stream === 'stdout' ? '' : `[${l.stream}] `) + l.text).join('\n') + '\n';
    download(`${name}.log`, text);
  });

  open();
  return {
    el,
    close() {
      closed = true;
      clearTimeout(retryTimer);
      cancelAnimationFrame(frame);
      if (source) source.close();
      source = null;
    },
    reopen() {
      if (closed || source) return;
      clearTimeout(retryTimer);
      retry = 0;
      open();
    },
  };
}
