// Playground: a chat through the public endpoint (`POST /v1/chat/completions`, so keys and
// on-demand start behave as for any client), streamed with fetch + ReadableStream, with
// time to first token and tokens per second.
import { api, errorOf, signalUnauthorized } from '../api.js';
import { h, replace, field } from '../ui/dom.js';
import { num } from '../ui/format.js';

/**
 * Reads an SSE body and calls `onData` for each `data:` payload until `[DONE]`.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(data: string) => void} onData
 * @returns {Promise<void>}
 */
export async function readSse(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data.length) {
          const payload = data.join('\n');
          data = [];
          if (payload.trim() === '[DONE]') { reader.cancel().catch(() => {}); return; }
          onData(payload);
        }
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
  }
  if (data.length && data.join('\n').trim() !== '[DONE]') onData(data.join('\n'));
}

/**
 * Mounts the playground.
 * @param {HTMLElement} root
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root) {
  let alive = true;
  let controller = null;
  /** @type {Array<{role: string, content: string}>} */
  const history = [];

  const model = h('select', { 'data-test': 'pg-model' }, h('option', { value: '' }, 'Loading models…'));
  const reloadModels = h('button.btn.btn-sm', { type: 'button' }, 'Refresh');
  const system = h('textarea', { rows: 4, 'data-test': 'pg-system', placeholder: 'You are a helpful assistant.' });
  const temperature = h('input', { type: 'number', min: 0, max: 2, step: 0.1, value: '0.7', 'data-test': 'pg-temperature' });
  const maxTokens = h('input', { type: 'number', min: 1, step: 1, value: '512', 'data-test': 'pg-max-tokens' });
  const stream = h('input', { type: 'checkbox', checked: true, 'data-test': 'pg-stream', id: 'pg-stream' });
  const input = h('textarea', { rows: 3, 'data-test': 'pg-input', 'aria-label': 'Message', placeholder: 'Ask something… (Enter sends, Shift+Enter adds a line)' });
  const send = h('button.btn.btn-primary', { type: 'submit', 'data-test': 'pg-send' }, 'Send');
  const stop = h('button.btn', { type: 'button', 'data-test': 'pg-stop', disabled: true }, 'Stop');
  const clear = h('button.btn.btn-ghost', { type: 'button', 'data-test': 'pg-clear' }, 'New conversation');
  const messages = h('div.pg-messages', { 'aria-live': 'polite' });
  const ttft = h('span', { 'data-test': 'pg-ttft' }, '—');
  const tps = h('span', { 'data-test': 'pg-tps' }, '—');
  const tokens = h('span', { 'data-test': 'pg-tokens' }, '—');
  const state = h('span', { 'data-test': 'pg-state' });

  const settings = h('div.card', null,
    h('div.field', null, h('div.row', null, h('label.grow', { for: 'pg-model' }, h('strong', null, 'Model')), reloadModels), model),
    field('System prompt', system),
    h('div.form-grid', null, field('Temperature', temperature), field('Max tokens', maxTokens)),
    h('div.field.field-check', null, stream, h('label', { for: 'pg-stream' }, 'Stream the answer')),
    h('p.muted.small', null, 'Requests go through /v1 like any client’s: a stopped instance with on-demand start starts first.'));
  model.id = 'pg-model';
  const form = h('form.pg-chat', null,
    messages,
    h('div.pg-metrics', null, h('span', null, 'First token: ', ttft), h('span', null, 'Speed: ', tps), h('span', null, 'Tokens: ', tokens), state),
    input,
    h('div.row', null, send, stop, clear));
  replace(root, h('div.page-head', null, h('h1', null, 'Playground')), h('div.pg', null, settings, form));

  async function loadModels() {
    try {
      const res = await api.get('/v1/models');
      if (!alive) return;
      const cur = model.value;
      const list = (res && res.data) || [];
      replace(model, list.length === 0 ? h('option', { value: '' }, 'No models: create an instance first') :
        list.map((m) => h('option', { value: m.id }, m.status ? `${m.id} (${m.status})` : m.id)));
      if (list.some((m) => m.id === cur)) model.value = cur;
    } catch (err) {
      replace(model, h('option', { value: '' }, 'Models unavailable: ' + err.message));
    }
  }
  reloadModels.addEventListener('click', loadModels);

  function bubble(role, text) {
    const body = h('span.msg-body', { 'data-test': role === 'assistant' ? 'pg-reply' : null }, text);
    const el = h('div', { class: 'msg msg-' + role }, h('span.msg-role', null, role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : 'Error'), body);
    messages.appendChild(el);
    el.scrollIntoView({ block: 'nearest' });
    return { el, body };
  }

  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener('click', () => { if (controller) controller.abort(); });
  clear.addEventListener('click', () => { if (controller) controller.abort(); history.length = 0; replace(messages); ttft.textContent = '—'; tps.textContent = '—'; tokens.textContent = '—'; state.textContent = ''; });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    if (!model.value) { state.textContent = 'Choose a model first.'; return; }
    input.value = '';
    history.push({ role: 'user', content: text });
    bubble('user', text);
    for (const old of messages.querySelectorAll('[data-test="pg-reply"]')) old.dataset.test = 'pg-message';
    const reply = bubble('assistant', '');
    const msgs = [];
    if (system.value.trim()) msgs.push({ role: 'system', content: system.value.trim() });
    msgs.push(...history);
    const body = { model: model.value, messages: msgs, stream: stream.checked };
    if (temperature.value !== '') body.temperature = Number(temperature.value);
    if (maxTokens.value !== '') body.max_tokens = Number(maxTokens.value);
    if (stream.checked) body.stream_options = { include_usage: true };

    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    ttft.textContent = '…';
    tps.textContent = '…';
    tokens.textContent = '…';
    state.textContent = 'Waiting for the model (it may be starting)…';
    const t0 = performance.now();
    let tFirst = null;
    let content = '';
    let chunks = 0;
    let usage = null;
    let serverTps = null;
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST', credentials: 'same-origin', signal: controller.signal,
        headers: { 'Content-Type': 'application/json', Accept: stream.checked ? 'text/event-stream' : 'application/json', 'X-Llamactl-Request': 'dashboard' },
        body: JSON.stringify(body),
      });
      if (!res.ok) {
        const error = await errorOf(res);
        if (res.status === 401) signalUnauthorized();
        throw error;
      }
      if (stream.checked && res.body && (res.headers.get('Content-Type') || '').includes('event-stream')) {
        state.textContent = 'Streaming…';
        await readSse(res.body, (payload) => {
          let chunk;
          try { chunk = JSON.parse(payload); } catch { return; }
          if (chunk.error) throw Object.assign(new Error(chunk.error.message || JSON.stringify(chunk.error)), { code: 'stream_error' });
          if (chunk.usage) usage = chunk.usage;
          if (chunk.timings && chunk.timings.predicted_per_second) serverTps = chunk.timings.predicted_per_second;
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          const piece = delta ? (delta.content || '') : '';
          if (piece) {
            if (tFirst === null) { tFirst = performance.now(); ttft.textContent = `${Math.round(tFirst - t0)} ms`; }
            chunks++;
            content += piece;
            reply.body.textContent = content;
            if (chunks % 8 === 0) {
              const secs = (performance.now() - tFirst) / 1000;
              if (secs > 0) tps.textContent = `≈ ${num(chunks / secs, 1)} tokens/s`;
            }
          }
        });
      } else {
        const json = await res.json();
        tFirst = performance.now();
        ttft.textContent = `${Math.round(tFirst - t0)} ms (whole answer)`;
        usage = json.usage || null;
        content = (json.choices && json.choices[0] && json.choices[0].message && json.choices[0].message.content) || '';
        reply.body.textContent = content;
      }
      const tEnd = performance.now();
      const generated = usage && usage.completion_tokens ? usage.completion_tokens : null;
      const secs = tFirst !== null ? (tEnd - (stream.checked ? tFirst : t0)) / 1000 : 0;
      if (serverTps) tps.textContent = `${num(serverTps, 1)} tokens/s`;
      else if (generated && secs > 0) tps.textContent = `${num(generated / secs, 1)} tokens/s`;
      else if (chunks && secs > 0) tps.textContent = `≈ ${num(chunks / secs, 1)} tokens/s`;
      else tps.textContent = '—';
      tokens.textContent = generated ? `${num(usage.prompt_tokens)} in, ${num(generated)} out` : chunks ? `≈ ${chunks} out` : '—';
      if (tFirst === null) ttft.textContent = '—';
      state.textContent = `Done in ${((tEnd - t0) / 1000).toFixed(1)} s`;
      history.push({ role: 'assistant', content });
    } catch (err) {
      if (err && err.name === 'AbortError') {
        state.textContent = 'Stopped.';
        if (content) history.push({ role: 'assistant', content });
      } else {
        reply.el.classList.add('msg-error');
        reply.body.textContent = (content ? content + '\n\n' : '') + `Error: ${err.message || err}`;
        state.textContent = 'Failed.';
        history.pop();
      }
      if (tFirst === null) ttft.textContent = '—';
      if (tps.textContent === '…') tps.textContent = '—';
      if (tokens.textContent === '…') tokens.textContent = '—';
    } finally {
      controller = null;
      send.disabled = false;
      stop.disabled = true;
      input.focus();
    }
  });

  loadModels();
  return { unmount() { alive = false; if (controller) controller.abort(); }, refresh: loadModels };
}
