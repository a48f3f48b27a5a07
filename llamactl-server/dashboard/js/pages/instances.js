// Instances: a live table built once (a Map name -> row), updated cell by cell on status
// events, with search, sort, filters and row actions (delegated clicks, no per-row listeners).
import { api, path, instanceAction } from '../api.js';
import * as events from '../events.js';
import { instanceHref } from '../router.js';
import { h, replace } from '../ui/dom.js';
import { setStatus, reasonText, backendName, modelOf } from '../ui/format.js';
import { setTime } from '../ui/time.js';
import { toast, toastError } from '../ui/toast.js';
import { confirmDialog } from '../ui/confirm.js';

const COLUMNS = [
  { key: 'name', label: 'Name', get: (i) => i.name },
  { key: 'backend', label: 'Backend', get: (i) => backendName(i.options && i.options.backend_type) },
  { key: 'runtime', label: 'Runs in', opt: true, get: (i) => (i.options && i.options.docker_enabled ? 'Docker' : 'local') },
  { key: 'status', label: 'Status', get: (i) => i.status },
  { key: 'port', label: 'Port', num: true, opt: true, get: (i) => i.port ?? -1 },
  { key: 'pid', label: 'PID', num: true, opt: true, get: (i) => i.pid ?? -1 },
  { key: 'restarts', label: 'Restarts', num: true, opt: true, get: (i) => i.restart_count || 0 },
  { key: 'uptime', label: 'Uptime', opt: true, get: (i) => (i.status === 'running' ? -Date.parse(i.ready_at || i.started_at || 0) || 0 : 1) },
  { key: 'model', label: 'Model', opt: true, get: (i) => modelOf(i) },
  { key: 'group', label: 'Group', opt: true, get: (i) => (i.options && i.options.group) || '' },
  { key: 'inflight', label: 'In flight', num: true, get: (i) => i._inflight ?? i.in_flight ?? 0 },
  { key: 'queued', label: 'Queued', num: true, opt: true, get: (i) => i._queued || 0 },
];
const STATUSES = ['running', 'starting', 'restarting', 'stopping', 'stopped', 'failed'];
const INFLIGHT_EVERY_MS = 5000;

/** A row template, cloned for each instance (faster than building each row). */
function rowTemplate() {
  const tr = h('tr', { 'data-test': 'instance-row', role: 'row' });
  for (const c of COLUMNS) {
    const td = h('td', { class: [c.num ? 'num' : '', c.opt ? 'col-opt' : ''].join(' ').trim() || null, 'data-col': c.key, role: 'cell' });
    if (c.key === 'name') td.appendChild(h('a.name'));
    if (c.key === 'status') td.append(h('span.status', { 'data-test': 'instance-status' }), h('span.reason'));
    if (c.key === 'uptime') td.appendChild(h('span'));
    tr.appendChild(td);
  }
  tr.appendChild(h('td.nowrap', { role: 'cell', 'data-col': 'actions' }, h('div.btn-group', null,
    h('button.btn.btn-sm', { type: 'button', 'data-action': 'start', 'data-test': 'action-start' }, 'Start'),
    h('button.btn.btn-sm', { type: 'button', 'data-action': 'stop', 'data-test': 'action-stop' }, 'Stop'),
    h('button.btn.btn-sm', { type: 'button', 'data-action': 'restart', 'data-test': 'action-restart' }, 'Restart'),
    h('button.btn.btn-sm.btn-danger', { type: 'button', 'data-action': 'delete', 'data-test': 'action-delete' }, 'Delete'))));
  return tr;
}

/**
 * Mounts the instances page.
 * @param {HTMLElement} root
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root) {
  /** @type {Map<string, {data: any, row: HTMLTableRowElement, cells: Object<string, HTMLElement>}>} */
  const rows = new Map();
  const view = { q: '', status: '', backend: '', group: '', sort: 'name', dir: 1 };
  let firstRender = true;
  let alive = true;
  const pendingStatus = new Map();
  let statusFrame = 0;
  let statusTimer = 0;
  let viewFrame = 0;
  const pendingDetail = new Set();
  let detailTimer = 0;
  let listTimer = 0;
  let inflightTimer = 0;
  let inflight = null;
  const template = rowTemplate();

  const search = h('input', { type: 'search', placeholder: 'Search name, model, group…', 'data-test': 'instances-search', 'aria-label': 'Search instances' });
  const statusSel = h('select', { 'data-test': 'filter-status', 'aria-label': 'Filter by status' },
    h('option', { value: '' }, 'All statuses'), STATUSES.map((s) => h('option', { value: s }, s)));
  const backendSel = h('select', { 'data-test': 'filter-backend', 'aria-label': 'Filter by backend' });
  const groupSel = h('select', { 'data-test': 'filter-group', 'aria-label': 'Filter by group' });
  const count = h('span.muted.small', { 'data-test': 'instances-count', 'aria-live': 'polite' });
  // Rows are CSS grids (not table layout) so that off-screen rows skip layout
  // (content-visibility), which keeps 1,000 rows fast; the roles keep the table semantics.
  const thead = h('thead', { role: 'rowgroup' });
  const tbody = h('tbody', { role: 'rowgroup' });
  const table = h('table.table.table-grid', { 'data-test': 'instances-table', role: 'table', 'aria-label': 'Instances' }, thead, tbody);
  const tableWrap = h('div.table-wrap', null, table);
  const empty = h('div.card.empty', { 'data-test': 'instances-empty', hidden: true },
    h('h2', null, 'No instances yet'),
    h('p', null, 'An instance is one inference server (llama.cpp, MLX, vLLM or your own) that llamactl starts, stops and watches.'),
    h('p', null, h('a.btn.btn-primary', { href: '#/create', 'data-test': 'instances-empty-create' }, 'Create your first instance')),
    h('p.muted', null, 'Or from a terminal:'),
    h('pre.code', null,
      'llamactl instance create qwen --backend llama_cpp --model /models/qwen.gguf\n\n' +
      `curl -X POST ${location.origin}/api/v1/instances/qwen \\\n` +
      '  -H "Authorization: Bearer $LLAMACTL_KEY" -H "Content-Type: application/json" \\\n' +
      '  -d \'{"backend_type": "llama_cpp", "backend_options": {"model": "/models/qwen.gguf"}}\''));
  const loading = h('p.muted', null, 'Loading instances…');
  const errorBox = h('div.notice.notice-bad', { hidden: true, role: 'alert' });

  // Header with sort buttons
  const headRow = h('tr', { role: 'row' });
  for (const c of COLUMNS) {
    const btn = h('button.sort', { type: 'button', 'data-sort': c.key }, c.label);
    headRow.appendChild(h('th', { class: [c.num ? 'num' : '', c.opt ? 'col-opt' : ''].join(' ').trim() || null, scope: 'col', role: 'columnheader' }, btn));
  }
  headRow.appendChild(h('th', { scope: 'col', role: 'columnheader' }, 'Actions'));
  thead.appendChild(headRow);
  thead.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-sort]');
    if (!btn) return;
    const key = btn.dataset.sort;
    view.dir = view.sort === key ? -view.dir : 1;
    view.sort = key;
    applyView();
  });

  replace(root,
    h('div.page-head', null, h('h1', null, 'Instances'),
      h('a.btn.btn-primary', { href: '#/create', 'data-test': 'create-instance' }, 'Create instance')),
    h('div.toolbar', null, search, statusSel, backendSel, groupSel, count),
    errorBox, loading, empty, tableWrap);
  tableWrap.hidden = true;

  let searchTimer = 0;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { view.q = search.value.trim().toLowerCase(); applyView(); }, 120);
  });
  for (const [sel, key] of [[statusSel, 'status'], [backendSel, 'backend'], [groupSel, 'group']]) {
    sel.addEventListener('change', () => { view[key] = sel.value; applyView(); });
  }

  tbody.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const tr = btn.closest('tr');
    const name = tr && tr.dataset.name;
    if (name) act(name, btn.dataset.action, btn);
  });

  async function act(name, action, btn) {
    if (action === 'delete') {
      const ok = await confirmDialog({ title: `Delete ${name}?`, message: 'The instance is stopped if it runs, and its definition and logs are removed. This cannot be undone.', ok: 'Delete', danger: true });
      if (!ok) return;
      try {
        await api.del(path('instances', name));
        removeRow(name);
        toast(`Deleted ${name}`, 'ok');
      } catch (err) {
        toastError(`Delete ${name}`, err);
      }
      return;
    }
    if (action === 'stop' || action === 'restart') {
      const entry = rows.get(name);
      const busy = entry && (entry.data._inflight ?? entry.data.in_flight ?? 0) > 0;
      if (busy) {
        const ok = await confirmDialog({ title: `${action === 'stop' ? 'Stop' : 'Restart'} ${name}?`, message: 'It is answering requests now; they will be cut off.', ok: action === 'stop' ? 'Stop' : 'Restart', danger: true });
        if (!ok) return;
      }
    }
    btn.disabled = true;
    try {
      const inst = await instanceAction(name, action);
      if (inst && inst.name) upsert(inst);
    } catch (err) {
      toastError(`${action[0].toUpperCase() + action.slice(1)} ${name}`, err);
      const entry = rows.get(name);
      if (entry) setButtons(entry);
    }
  }

  function setButtons(entry) {
    const s = entry.data.status;
    const b = entry.buttons;
    b.start.disabled = s === 'running' || s === 'starting' || s === 'restarting';
    b.stop.disabled = s === 'stopped' || s === 'stopping';
    b.restart.disabled = s === 'stopping';
  }

  function fillRow(entry) {
    const i = entry.data;
    const c = entry.cells;
    const link = c.name.firstChild;
    if (link.textContent !== i.name) {
      link.textContent = i.name;
      link.setAttribute('href', instanceHref(i.name));
    }
    c.backend.textContent = backendName(i.options && i.options.backend_type);
    c.runtime.textContent = i.options && i.options.docker_enabled ? 'Docker' : 'local';
    fillStatus(entry);
    c.port.textContent = i.port ?? '—';
    c.pid.textContent = i.pid ?? '—';
    c.restarts.textContent = String(i.restart_count || 0);
    fillUptime(entry);
    const model = modelOf(i);
    c.model.textContent = model || '—';
    c.model.title = model;
    c.group.textContent = (i.options && i.options.group) || '—';
    fillLoad(entry);
  }

  function fillStatus(entry) {
    const i = entry.data;
    const cell = entry.cells.status;
    setStatus(cell.firstChild, i.status);
    const reason = reasonText(i.last_reason);
    cell.lastChild.textContent = i.status === 'running' && reason === 'ready' ? '' : reason;
    cell.title = i.last_error || '';
    setButtons(entry);
  }

  function fillUptime(entry) {
    const i = entry.data;
    const span = entry.cells.uptime.firstChild;
    if (i.status === 'running' && (i.ready_at || i.started_at)) setTime(span, i.ready_at || i.started_at, 'since');
    else setTime(span, null);
  }

  function fillLoad(entry) {
    const i = entry.data;
    entry.cells.inflight.textContent = String(i._inflight ?? i.in_flight ?? 0);
    entry.cells.queued.textContent = String(i._queued || 0);
  }

  function makeEntry(inst) {
    const row = template.cloneNode(true);
    row.dataset.name = inst.name;
    const cells = {};
    const tds = row.children;
    COLUMNS.forEach((c, idx) => { cells[c.key] = tds[idx]; });
    const group = row.lastChild.firstChild.children;
    const buttons = { start: group[0], stop: group[1], restart: group[2], delete: group[3] };
    const entry = { data: inst, row, cells, buttons };
    fillRow(entry);
    return entry;
  }

  function upsert(inst) {
    const entry = rows.get(inst.name);
    if (entry) {
      const load = { _inflight: entry.data._inflight, _queued: entry.data._queued };
      entry.data = { ...inst, ...load };
      fillRow(entry);
    } else {
      rows.set(inst.name, makeEntry(inst));
      refreshFilters();
      scheduleView();
    }
  }

  function removeRow(name) {
    const entry = rows.get(name);
    if (!entry) return;
    entry.row.remove();
    rows.delete(name);
    updateCount();
  }

  function matches(i) {
    if (view.status && i.status !== view.status) return false;
    if (view.backend && (i.options && i.options.backend_type) !== view.backend) return false;
    if (view.group && ((i.options && i.options.group) || '') !== view.group) return false;
    if (view.q) {
      const hay = (i.name + ' ' + modelOf(i) + ' ' + ((i.options && i.options.group) || '') + ' ' + i.status).toLowerCase();
      if (!hay.includes(view.q)) return false;
    }
    return true;
  }

  function applyView() {
    viewFrame = 0;
    const col = COLUMNS.find((c) => c.key === view.sort) || COLUMNS[0];
    const list = [];
    for (const entry of rows.values()) if (matches(entry.data)) list.push(entry);
    if (view.sort !== 'name' || view.dir !== 1) {
      const keyed = list.map((e) => [col.get(e.data), e]);
      keyed.sort((a, b) => {
        const x = a[0];
        const y = b[0];
        const r = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
        return (r || a[1].data.name.localeCompare(b[1].data.name)) * view.dir;
      });
      list.length = 0;
      for (const k of keyed) list.push(k[1]);
    } else {
      list.sort((a, b) => (a.data.name < b.data.name ? -1 : a.data.name > b.data.name ? 1 : 0));
    }
    const frag = document.createDocumentFragment();
    for (const e of list) frag.appendChild(e.row);
    tbody.replaceChildren(frag);
    for (const b of thead.querySelectorAll('button[data-sort]')) {
      if (b.dataset.sort === view.sort) b.setAttribute('aria-sort', view.dir === 1 ? 'ascending' : 'descending');
      else b.removeAttribute('aria-sort');
    }
    updateCount(list.length);
  }

  function scheduleView() {
    if (!viewFrame) viewFrame = requestAnimationFrame(applyView);
  }

  function updateCount(shown) {
    const total = rows.size;
    if (shown === undefined) shown = tbody.children.length;
    count.textContent = shown === total ? `${total} instance${total === 1 ? '' : 's'}` : `Showing ${shown} of ${total}`;
    empty.hidden = total !== 0;
    tableWrap.hidden = total === 0;
  }

  function refreshFilters() {
    const backends = new Set();
    const groups = new Set();
    for (const { data } of rows.values()) {
      if (data.options && data.options.backend_type) backends.add(data.options.backend_type);
      if (data.options && data.options.group) groups.add(data.options.group);
    }
    const fill = (sel, all, values, label) => {
      const cur = sel.value;
      replace(sel, h('option', { value: '' }, all), [...values].sort().map((v) => h('option', { value: v }, label(v))));
      sel.value = values.has(cur) ? cur : '';
      sel.hidden = values.size === 0;
    };
    fill(backendSel, 'All backends', backends, backendName);
    fill(groupSel, 'All groups', groups, (g) => g);
  }

  async function loadList() {
    try {
      const list = await api.get('/api/v1/instances');
      if (!alive) return;
      errorBox.hidden = true;
      const seen = new Set();
      for (const inst of list) {
        seen.add(inst.name);
        const entry = rows.get(inst.name);
        if (entry) {
          entry.data = { ...inst, _inflight: entry.data._inflight, _queued: entry.data._queued };
          fillRow(entry);
        } else {
          rows.set(inst.name, makeEntry(inst));
        }
      }
      for (const name of [...rows.keys()]) if (!seen.has(name)) removeRow(name);
      refreshFilters();
      applyView();
      loading.hidden = true;
      if (firstRender) {
        firstRender = false;
        performance.mark('instances-rendered');
      }
      applyInflight();
    } catch (err) {
      if (!alive) return;
      loading.hidden = true;
      errorBox.hidden = false;
      replace(errorBox, h('strong', null, 'The instances could not be listed.'), err.message);
    }
  }

  function scheduleList() {
    clearTimeout(listTimer);
    listTimer = setTimeout(loadList, 300);
  }

  // Status events: applied in one animation frame, then the details (pid, port, times)
  // fetched for the changed instances only.
  function onStatus(ev) {
    if (!ev || !ev.name) return;
    pendingStatus.set(ev.name, ev);
    if (!statusFrame) {
      // The next frame, or 50 ms at most (frames do not come while the tab is hidden).
      statusFrame = requestAnimationFrame(flushStatus);
      statusTimer = setTimeout(flushStatus, 50);
    }
  }

  function flushStatus() {
    cancelAnimationFrame(statusFrame);
    clearTimeout(statusTimer);
    statusFrame = 0;
    let reorder = false;
    for (const [name, ev] of pendingStatus) {
      const entry = rows.get(name);
      if (!entry) { scheduleList(); continue; }
      entry.data.status = ev.to;
      entry.data.last_reason = ev.reason;
      if (ev.to === 'running') entry.data.ready_at = ev.at;
      fillStatus(entry);
      fillUptime(entry);
      performance.mark('status-applied:' + name);
      pendingDetail.add(name);
      if (view.status || view.q || view.sort === 'status' || view.sort === 'uptime') reorder = true;
    }
    pendingStatus.clear();
    if (reorder) scheduleView();
    clearTimeout(detailTimer);
    detailTimer = setTimeout(fetchDetails, 400);
  }

  async function fetchDetails() {
    const names = [...pendingDetail];
    pendingDetail.clear();
    if (!alive || names.length === 0) return;
    if (names.length > 20) { loadList(); return; }
    await Promise.all(names.map(async (name) => {
      try {
        const inst = await api.get(path('instances', name));
        if (alive && rows.has(name)) upsert(inst);
      } catch (err) {
        if (err.status === 404) removeRow(name);
      }
    }));
  }

  // In-flight and queued requests have no event: read /api/v1/inflight on an interval.
  async function loadInflight() {
    clearTimeout(inflightTimer);
    if (!alive) return;
    if (!document.hidden) {
      try {
        inflight = await api.get('/api/v1/inflight');
        applyInflight();
      } catch { inflight = null; }
    }
    if (alive) inflightTimer = setTimeout(loadInflight, INFLIGHT_EVERY_MS);
  }

  function applyInflight() {
    if (!inflight) return;
    const counts = new Map();
    for (const r of inflight) {
      if (!r.instance) continue;
      const c = counts.get(r.instance) || { active: 0, queued: 0 };
      if (r.state === 'queued') c.queued++; else c.active++;
      counts.set(r.instance, c);
    }
    for (const entry of rows.values()) {
      const c = counts.get(entry.data.name) || { active: 0, queued: 0 };
      if (entry.data._inflight !== c.active || entry.data._queued !== c.queued) {
        entry.data._inflight = c.active;
        entry.data._queued = c.queued;
        fillLoad(entry);
      }
    }
  }

  const offs = [
    events.on('status', onStatus),
    events.on('activity', () => { clearTimeout(inflightTimer); inflightTimer = setTimeout(loadInflight, 250); }),
  ];
  loadList();
  loadInflight();

  return {
    unmount() {
      alive = false;
      offs.forEach((off) => off());
      cancelAnimationFrame(statusFrame);
      clearTimeout(statusTimer);
      cancelAnimationFrame(viewFrame);
      clearTimeout(detailTimer);
      clearTimeout(listTimer);
      clearTimeout(inflightTimer);
      clearTimeout(searchTimer);
    },
    refresh() { loadList(); loadInflight(); },
  };
}
