// Activity: stats cards, per-model tokens and latency, requests in flight and queued (with
// Cancel), and the paged request table with filters (live: new records arrive as events).
import { api, path } from '../api.js';
import * as events from '../events.js';
import { instanceHref } from '../router.js';
import { h, replace } from '../ui/dom.js';
import { statusBadge, num, ms, bytes, httpBadge } from '../ui/format.js';
import { timeEl } from '../ui/time.js';
import { toast, toastError } from '../ui/toast.js';
import { bars } from '../ui/chart.js';

const PAGE = 50;
const INFLIGHT_EVERY_MS = 3000;
const WINDOWS = [['1h', 3600], ['24h', 86400], ['7d', 7 * 86400], ['all', 0]];

/**
 * Mounts the activity page.
 * @param {HTMLElement} root
 * @param {{query: URLSearchParams}} params
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root, { query }) {
  let alive = true;
  let inflightTimer = 0;
  let statsTimer = 0;
  const cursors = []; // before_id of each page shown before the current one
  let cursor = null;
  let nextCursor = null;
  let windowSecs = 86400;

  const instanceIn = h('input', { type: 'search', 'data-test': 'activity-instance', 'aria-label': 'Instance', placeholder: 'Instance', value: query.get('instance') || '' });
  const keyIn = h('input', { type: 'search', 'data-test': 'activity-key', 'aria-label': 'Key name or id', placeholder: 'Key name or id', value: query.get('key') || '' });
  const statusIn = h('input', { type: 'text', inputmode: 'numeric', 'data-test': 'activity-status', 'aria-label': 'HTTP status', placeholder: 'HTTP status', size: 8, value: query.get('status') || '' });
  const applyBtn = h('button.btn', { type: 'submit', 'data-test': 'activity-filter' }, 'Filter');
  const clearBtn = h('button.btn.btn-ghost', { type: 'button' }, 'Clear');
  const filters = h('form.toolbar', { 'aria-label': 'Filter requests' }, instanceIn, keyIn, statusIn, applyBtn, clearBtn);
  const windowSel = h('select', { 'aria-label': 'Statistics window', 'data-test': 'stats-window' }, WINDOWS.map(([l, s]) => h('option', { value: s, selected: s === windowSecs }, l === 'all' ? 'Everything kept' : `Last ${l}`)));
  const cards = h('div.grid.grid-cards', { 'data-test': 'activity-stats' });
  const perModel = h('div', { 'data-test': 'activity-models' });
  const inflightBox = h('div', { 'data-test': 'inflight' });
  const tbody = h('tbody');
  const table = h('table.table', { 'data-test': 'activity-table' },
    h('thead', null, h('tr', null, ['When', 'Instance', 'Model', 'Path', 'Status', 'Duration', 'First byte', 'Queued', 'Prompt', 'Cached', 'Generated', 'Tokens/s', 'Key', 'Client']
      .map((t, i) => h('th', { scope: 'col', class: i >= 5 && i <= 11 ? 'num' : null }, t)))),
    tbody);
  const prevBtn = h('button.btn.btn-sm', { type: 'button', 'data-test': 'activity-newer' }, 'Newer');
  const nextBtn = h('button.btn.btn-sm', { type: 'button', 'data-test': 'activity-older' }, 'Older');
  const pageInfo = h('span.muted.small');
  const tableMsg = h('p.muted', { hidden: true });

  replace(root,
    h('div.page-head', null, h('h1', null, 'Activity'), windowSel),
    cards,
    h('div.card.section', null, h('h2', null, 'Per model'), perModel),
    h('div.card.section', null, h('h2', null, 'In flight and queued'), inflightBox),
    h('h2.section', null, 'Requests'),
    filters,
    h('div.table-wrap', null, table), tableMsg,
    h('div.pager', null, prevBtn, nextBtn, pageInfo));

  filters.addEventListener('submit', (e) => { e.preventDefault(); cursors.length = 0; cursor = null; loadPage(); });
  clearBtn.addEventListener('click', () => { instanceIn.value = ''; keyIn.value = ''; statusIn.value = ''; cursors.length = 0; cursor = null; loadPage(); });
  windowSel.addEventListener('change', () => { windowSecs = Number(windowSel.value); loadStats(); });
  prevBtn.addEventListener('click', () => { cursor = cursors.pop() ?? null; loadPage(); });
  nextBtn.addEventListener('click', () => { if (nextCursor === null) return; cursors.push(cursor); cursor = nextCursor; loadPage(); });

  function filterQuery() {
    return { instance: instanceIn.value.trim(), key: keyIn.value.trim(), status: statusIn.value.trim() };
  }

  function recordRow(r) {
    return h('tr', { 'data-test': 'activity-row', 'data-id': r.id },
      h('td.nowrap', null, timeEl(r.at)),
      h('td', null, r.instance ? h('a', { href: instanceHref(r.instance) }, r.instance) : '—'),
      h('td', null, r.model || '—'),
      h('td.mono', null, r.path),
      h('td', { title: r.error || '' }, httpBadge(r), r.streamed ? h('span.muted.small', null, ' stream') : null),
      h('td.num', null, ms(r.duration_ms)), h('td.num', null, ms(r.ttfb_ms)), h('td.num', null, r.queue_ms ? ms(r.queue_ms) : '—'),
      h('td.num', null, num(r.prompt_tokens)), h('td.num', null, num(r.cached_tokens)), h('td.num', null, num(r.completion_tokens)),
      h('td.num', null, r.generation_tps ? num(r.generation_tps, 1) : '—'),
      h('td', null, r.key_name || '—'), h('td.mono.small', null, r.client || '—'));
  }

  async function loadPage() {
    try {
      const f = filterQuery();
      const res = await api.get('/api/v1/activity', { limit: PAGE, before_id: cursor, ...f });
      if (!alive) return;
      nextCursor = res.next_before_id ?? null;
      replace(tbody, res.items.map(recordRow));
      tableMsg.hidden = res.items.length !== 0;
      tableMsg.textContent = 'No requests match.';
      prevBtn.disabled = cursor === null;
      nextBtn.disabled = nextCursor === null;
      pageInfo.textContent = `Page ${cursors.length + 1}${cursor === null ? ' (live)' : ''}`;
    } catch (err) {
      if (!alive) return;
      replace(tbody);
      tableMsg.hidden = false;
      tableMsg.textContent = 'The requests could not be read: ' + err.message;
    }
  }

  function matchesFilter(r) {
    const f = filterQuery();
    if (f.instance && r.instance !== f.instance) return false;
    if (f.key && r.key_name !== f.key && String(r.key_id) !== f.key) return false;
    if (f.status && String(r.status) !== f.status) return false;
    return true;
  }

  async function loadStats() {
    clearTimeout(statsTimer);
    const since = windowSecs ? new Date(Date.now() - windowSecs * 1000).toISOString() : null;
    try {
      const [byInstance, byModel] = await Promise.all([
        api.get('/api/v1/activity/stats', { since, group_by: 'instance' }),
        api.get('/api/v1/activity/stats', { since, group_by: 'model' }),
      ]);
      if (!alive) return;
      const sum = (k) => byInstance.groups.reduce((a, g) => a + (g[k] || 0), 0);
      const requests = sum('requests');
      const errors = sum('errors');
      const card = (label, value, sub) => h('div.card', null, h('div.stat-label', null, label), h('div.stat-value', null, value), sub ? h('div.stat-sub', null, sub) : null);
      replace(cards,
        card('Requests', num(requests)),
        card('Errors', num(errors), requests ? `${((100 * errors) / requests).toFixed(1)}% of requests` : null),
        card('Prompt tokens', num(sum('prompt_tokens'))),
        card('Generated tokens', num(sum('completion_tokens'))),
        card('Instances used', num(byInstance.groups.filter((g) => g.group).length)));
      const groups = [...byModel.groups].sort((a, b) => b.completion_tokens - a.completion_tokens);
      replace(perModel, groups.length === 0 ? h('p.muted', null, 'No requests in this window.') : [
        bars(groups.map((g) => ({ label: g.group || '(none)', value: g.completion_tokens, text: `${num(g.completion_tokens)} tokens` }))),
        h('div.table-wrap.section', null, h('table.table', null,
          h('thead', null, h('tr', null, ['Model', 'Requests', 'Errors', 'Prompt', 'Generated', 'Median', 'p95', 'First byte', 'Tokens/s'].map((t, i) => h('th', { class: i ? 'num' : null }, t)))),
          h('tbody', null, groups.map((g) => h('tr', { 'data-test': 'model-stats', 'data-name': g.group || '' },
            h('td', null, g.group || '(none)'), h('td.num', null, num(g.requests)), h('td.num', null, num(g.errors)),
            h('td.num', null, num(g.prompt_tokens)), h('td.num', null, num(g.completion_tokens)),
            h('td.num', null, ms(g.duration_p50_ms)), h('td.num', null, ms(g.duration_p95_ms)), h('td.num', null, ms(g.ttfb_p50_ms)),
            h('td.num', null, g.generation_tps_p50 ? num(g.generation_tps_p50, 1) : '—'))))))]);
    } catch (err) {
      if (alive) replace(cards, h('p.muted', null, 'Statistics unavailable: ' + err.message));
    }
  }

  // Requests in flight have no event of their own: read them on an interval.
  async function loadInflight() {
    clearTimeout(inflightTimer);
    if (!alive) return;
    if (!document.hidden) {
      try {
        const list = await api.get('/api/v1/inflight');
        if (!alive) return;
        renderInflight(list);
      } catch (err) {
        replace(inflightBox, h('p.muted', null, 'Unavailable: ' + err.message));
      }
    }
    inflightTimer = setTimeout(loadInflight, INFLIGHT_EVERY_MS);
  }

  function renderInflight(list) {
    if (list.length === 0) { replace(inflightBox, h('p.muted', { 'data-test': 'inflight-empty' }, 'Nothing in flight.')); return; }
    const tbodyIn = h('tbody', null, list.map((r) => h('tr', { 'data-test': 'inflight-row', 'data-id': r.id },
      h('td', null, r.instance ? h('a', { href: instanceHref(r.instance) }, r.instance) : '—', r.model && r.model !== r.instance ? h('span.reason', null, r.model) : null),
      h('td', null, statusBadge(r.state), r.state === 'queued' && r.position ? h('span.reason', null, `position ${r.position}${r.instance_status ? `, instance ${r.instance_status}` : ''}`) : null),
      h('td.nowrap', null, timeEl(r.since, 'since')),
      h('td', null, r.key_name || '—'),
      h('td.num', null, bytes(r.bytes_sent)),
      h('td', null, h('button.btn.btn-sm.btn-danger', { type: 'button', 'data-test': 'inflight-cancel', 'data-id': r.id }, 'Cancel')))));
    tbodyIn.addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-test="inflight-cancel"]');
      if (!b) return;
      b.disabled = true;
      try {
        await api.post(path('inflight', b.dataset.id, 'cancel'));
        toast(`Cancelled request ${b.dataset.id}`, 'ok');
      } catch (err) { toastError('Cancel', err); }
      loadInflight();
    });
    replace(inflightBox, h('div.table-wrap', null, h('table.table', null,
      h('thead', null, h('tr', null, ['Instance', 'State', 'Elapsed', 'Key', 'Sent', ''].map((t, i) => h('th', { class: i === 4 ? 'num' : null }, t)))), tbodyIn)));
  }

  const offs = [
    events.on('activity', (r) => {
      if (!r || typeof r !== 'object') return;
      if (cursor === null && matchesFilter(r) && !tbody.querySelector(`tr[data-id="${r.id}"]`)) {
        tbody.prepend(recordRow(r));
        while (tbody.children.length > PAGE) tbody.lastChild.remove();
        tableMsg.hidden = true;
      }
      clearTimeout(statsTimer);
      statsTimer = setTimeout(loadStats, 2000);
      clearTimeout(inflightTimer);
      inflightTimer = setTimeout(loadInflight, 200);
    }),
  ];

  const refresh = () => { loadPage(); loadStats(); loadInflight(); };
  refresh();
  return {
    unmount() { alive = false; offs.forEach((o) => o()); clearTimeout(inflightTimer); clearTimeout(statsTimer); },
    refresh,
  };
}
