// One instance: status with reason and since when, actions, live log, events timeline,
// options (rendered, JSON, copy, export), its activity, resource charts, router sub-models.
import { api, path, instanceAction } from '../api.js';
import * as events from '../events.js';
import { go, instanceHref } from '../router.js';
import { h, replace, tabs, copyText, download } from '../ui/dom.js';
import { statusBadge, setStatus, reasonText, backendName, modelOf, isRouter, bytes, num, ms, httpBadge } from '../ui/format.js';
import { timeEl, setTime } from '../ui/time.js';
import { toast, toastError } from '../ui/toast.js';
import { confirmDialog } from '../ui/confirm.js';
import { logView } from '../ui/logview.js';
import { lineChart, toPoints } from '../ui/chart.js';

const METRICS_EVERY_MS = 30000;

/**
 * Mounts an instance's page.
 * @param {HTMLElement} root
 * @param {{name: string}} params
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root, { name }) {
  let alive = true;
  let inst = null;
  let detailTimer = 0;
  let metricsTimer = 0;
  let currentTab = 'logs';
  let metricsWindow = '1h';
  let timeline = [];

  const status = h('span', { 'data-test': 'instance-status' });
  const reason = h('span.muted', { 'data-test': 'instance-reason' });
  const since = h('time');
  const errorBox = h('div.notice.notice-bad', { 'data-test': 'instance-error', hidden: true });
  const summary = h('dl.kv', { 'data-test': 'instance-summary' });
  const btn = (action, label, cls = 'btn') => h('button', { type: 'button', class: cls, 'data-action': action, 'data-test': 'action-' + action }, label);
  const actions = h('div.btn-group', null, btn('start', 'Start'), btn('stop', 'Stop'), btn('restart', 'Restart'),
    h('a.btn', { href: instanceHref(name, 'edit'), 'data-test': 'action-edit' }, 'Edit'), btn('delete', 'Delete', 'btn btn-danger'));

  const logs = logView(name);
  const timelineList = h('ul.timeline', { 'data-test': 'instance-events' });
  const optionsPanel = h('div', { 'data-test': 'instance-options' });
  const activityPanel = h('div', { 'data-test': 'instance-activity' });
  const resourcesBody = h('div.grid.grid-2');
  const windowSel = h('select', { 'aria-label': 'Window', 'data-test': 'metrics-window' }, ['15m', '1h', '24h'].map((w) => h('option', { value: w, selected: w === metricsWindow }, `Last ${w}`)));
  const resourcesPanel = h('div', { 'data-test': 'instance-resources' }, h('div.toolbar', null, windowSel), resourcesBody);
  const modelsPanel = h('div', { 'data-test': 'router-models' });
  const tabList = [
    { id: 'logs', label: 'Log', panel: h('div', null, logs.el) },
    { id: 'events', label: 'Events', panel: h('div.card', null, timelineList) },
    { id: 'options', label: 'Options', panel: optionsPanel },
    { id: 'activity', label: 'Activity', panel: activityPanel },
    { id: 'resources', label: 'Resources', panel: resourcesPanel },
    { id: 'models', label: 'Models', panel: modelsPanel },
  ];
  const tabbed = tabs(tabList, (id) => {
    currentTab = id;
    if (id === 'resources') loadMetrics();
    if (id === 'models') loadModels();
    if (id === 'activity') loadActivity();
  });
  const modelsTab = tabList.find((t) => t.id === 'models').button;
  modelsTab.hidden = true;

  replace(root,
    h('div.crumbs', null, h('a', { href: '#/instances' }, 'Instances'), ' / '),
    h('div.page-head', null, h('h1', null, name), actions),
    h('div.card', null,
      h('div.row', null, status, reason, h('span.muted', null, 'since '), since),
      errorBox,
      h('div.section', null, summary)),
    h('div.section', null, tabbed.el));

  actions.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const action = b.dataset.action;
    if (action === 'delete') {
      const ok = await confirmDialog({ title: `Delete ${name}?`, message: 'The instance is stopped if it runs, and its definition and logs are removed. This cannot be undone.', ok: 'Delete', danger: true });
      if (!ok) return;
      try {
        await api.del(path('instances', name));
        toast(`Deleted ${name}`, 'ok');
        go('#/instances');
      } catch (err) { toastError(`Delete ${name}`, err); }
      return;
    }
    b.disabled = true;
    try {
      const res = await instanceAction(name, action);
      if (res && res.name) { inst = res; renderHeader(); }
    } catch (err) {
      toastError(`${action} ${name}`, err);
      renderHeader();
    }
  });

  function sinceOf(i) {
    if (i.status === 'running') return i.ready_at || i.started_at;
    if (i.status === 'stopped' || i.status === 'failed') return i.stopped_at;
    return i.started_at;
  }

  function renderHeader() {
    if (!inst) return;
    const i = inst;
    setStatus(status, i.status);
    reason.textContent = reasonText(i.last_reason);
    setTime(since, sinceOf(i));
    errorBox.hidden = !i.last_error && !i.options_error;
    replace(errorBox, h('strong', null, i.options_error ? 'The stored options cannot be read' : 'Last failure'),
      h('pre.code', null, i.options_error || i.last_error || ''));
    const s = i.status;
    const get = (a) => actions.querySelector(`[data-action="${a}"]`);
    get('start').disabled = s === 'running' || s === 'starting' || s === 'restarting';
    get('stop').disabled = s === 'stopped' || s === 'stopping';
    get('restart').disabled = s === 'stopping';
    const o = i.options || {};
    const rows = [
      ['Backend', backendName(o.backend_type)],
      ['Runs in', o.docker_enabled ? 'Docker' : 'local process'],
      ['Model', modelOf(i) || '—'],
      ['Port', i.port ?? '—'],
      ['PID', i.pid ?? '—'],
      ['Desired state', i.desired_state],
      ['Automatic restarts', String(i.restart_count)],
      ['In flight', String(i.in_flight)],
      ['Group', o.group || '—'],
      ['Started', i.started_at ? timeEl(i.started_at) : '—'],
      ['Last request', i.last_activity ? timeEl(i.last_activity) : '—'],
      ['Created', timeEl(i.created)],
    ];
    const cmd = i.command_line || i.command;
    if (cmd) rows.push(['Command', h('code', { 'data-test': 'instance-command' }, Array.isArray(cmd) ? cmd.join(' ') : String(cmd))]);
    replace(summary, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
    modelsTab.hidden = !isRouter(i);
  }

  function renderOptions() {
    const o = (inst && inst.options) || {};
    const json = JSON.stringify(o, null, 2);
    const flat = [];
    const walk = (prefix, value) => {
      if (value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) {
        for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
      } else flat.push([prefix, Array.isArray(value) ? value.join(' ') : typeof value === 'object' ? JSON.stringify(value) : String(value)]);
    };
    walk('', o);
    replace(optionsPanel,
      h('div.grid.grid-2', null,
        h('div.card', null, h('h2', null, 'Options'), flat.length ? h('dl.kv', null, flat.map(([k, v]) => [h('dt.mono', null, k), h('dd', null, v)])) : h('p.muted', null, 'None.')),
        h('div.card', null,
          h('div.row', null, h('h2.grow', null, 'JSON'),
            h('button.btn.btn-sm', { type: 'button', 'data-test': 'options-copy', on: { click: async () => toast((await copyText(json)) ? 'Copied the options' : 'Copy failed', 'ok') } }, 'Copy'),
            h('button.btn.btn-sm', { type: 'button', 'data-test': 'options-export', on: { click: () => download(`${name}.json`, json + '\n', 'application/json') } }, 'Export')),
          h('pre.code', { 'data-test': 'options-json' }, json))));
  }

  async function loadInstance() {
    try {
      inst = await api.get(path('instances', name));
      if (!alive) return;
      renderHeader();
      renderOptions();
    } catch (err) {
      if (!alive) return;
      if (err.status === 404) {
        replace(root, h('div.notice.notice-bad', { 'data-test': 'instance-missing' }, h('strong', null, `No instance is named ${name}.`), h('a', { href: '#/instances' }, 'Back to the instances')));
        logs.close();
      } else toastError(`Read ${name}`, err);
    }
  }

  function renderTimeline() {
    const items = timeline.slice(-200).reverse();
    replace(timelineList, items.length === 0 ? h('li', null, h('span.muted', null, 'No transitions recorded.')) :
      items.map((ev) => h('li', { 'data-test': 'instance-event' }, h('span.when', null, timeEl(ev.at)),
        h('span', null, ev.from ? h('span.muted', null, `${ev.from} → `) : null, statusBadge(ev.to), ' ', reasonText(ev.reason),
          ev.pid ? h('span.muted.small', null, ` · pid ${ev.pid}`) : null, ev.port ? h('span.muted.small', null, ` · port ${ev.port}`) : null))));
  }

  async function loadTimeline() {
    try {
      timeline = await api.get(path('instances', name, 'events'), { limit: 1000 });
      if (alive) renderTimeline();
    } catch (err) {
      if (alive) replace(timelineList, h('li', null, 'The events could not be read: ' + err.message));
    }
  }

  async function loadActivity() {
    try {
      const page = await api.get('/api/v1/activity', { instance: name, limit: 50 });
      if (!alive) return;
      const rows = page.items.map((r) => h('tr', { 'data-test': 'activity-row' },
        h('td', null, timeEl(r.at)), h('td', null, r.model || '—'), h('td', null, r.path),
        h('td', null, httpBadge(r)),
        h('td.num', null, ms(r.duration_ms)), h('td.num', null, num(r.prompt_tokens)), h('td.num', null, num(r.completion_tokens)),
        h('td.num', null, r.generation_tps ? num(r.generation_tps, 1) : '—'), h('td', null, r.key_name || '—')));
      replace(activityPanel, rows.length === 0 ? h('p.muted', null, 'No requests recorded for this instance.') :
        h('div.table-wrap', null, h('table.table', null,
          h('thead', null, h('tr', null, ['When', 'Model', 'Path', 'Status', 'Duration', 'Prompt', 'Generated', 'Tokens/s', 'Key'].map((t, i) => h('th', { class: i >= 4 && i <= 7 ? 'num' : null }, t)))),
          h('tbody', null, rows))),
        h('p', null, h('a', { href: `#/activity?instance=${encodeURIComponent(name)}` }, 'All of its activity')));
    } catch (err) {
      if (alive) replace(activityPanel, h('p.muted', null, 'Activity unavailable: ' + err.message));
    }
  }

  async function loadMetrics() {
    clearTimeout(metricsTimer);
    if (!alive || currentTab !== 'resources') return;
    try {
      const m = await api.get('/api/v1/system/metrics', { window: metricsWindow });
      if (!alive) return;
      const points = (m.instances || {})[name] || [];
      if (!m.enabled) replace(resourcesBody, h('p.muted', null, 'The server takes no resource samples (resource_history.enabled is false).'));
      else if (points.length === 0) replace(resourcesBody, h('p.muted', null, 'No samples of this instance in the window (it did not run).'));
      else replace(resourcesBody,
        h('div.card', null, h('h3', null, 'CPU (100% = one core)'), lineChart({ title: 'CPU', series: [{ label: 'CPU', points: toPoints(points, (p) => p.cpu_percent) }], format: (v) => `${Math.round(v)}%` })),
        h('div.card', null, h('h3', null, 'Resident memory'), lineChart({ title: 'Memory', series: [{ label: 'RSS', points: toPoints(points, (p) => p.rss_bytes) }], format: bytes })));
    } catch (err) {
      if (alive) replace(resourcesBody, h('p.muted', null, 'Resource history unavailable: ' + err.message));
    }
    if (alive) metricsTimer = setTimeout(loadMetrics, METRICS_EVERY_MS);
  }
  windowSel.addEventListener('change', () => { metricsWindow = windowSel.value; loadMetrics(); });

  let modelsTimer = 0;
  // A model's reason, for people: {"kind": "evicted", "by": "beta"} -> "evicted for beta".
  function modelReason(r) {
    if (!r || !r.kind) return '';
    if (r.kind === 'evicted') return `evicted for ${r.by}`;
    if (r.kind === 'crashed') return r.exit_code == null ? 'its process ended' : `its process exited with code ${r.exit_code}`;
    if (r.kind === 'load_failed') return `load failed: ${r.error}`;
    return r.kind.replace(/_/g, ' ');
  }
  async function loadModels() {
    clearTimeout(modelsTimer);
    if (!modelsPanel.firstChild) replace(modelsPanel, h('p.muted', null, 'Loading the router’s models…'));
    try {
      const res = await api.get(path('instances', name, 'models'));
      if (!alive) return;
      const list = (res && res.items) || [];
      const tbody = h('tbody', null, list.map((m) => {
        const st = m.status || 'unknown';
        const notes = [m.pinned ? 'pinned' : null, m.idle_timeout_seconds ? `idle unload after ${m.idle_timeout_seconds} s` : null].filter(Boolean).join(', ');
        return h('tr', { 'data-test': 'router-model', 'data-name': m.id, 'data-status': st },
          h('td.mono', null, m.id, m.aliases && m.aliases.length ? h('div.muted', null, 'also ' + m.aliases.join(', ')) : null),
          h('td', null, statusBadge(st), h('span.reason', { 'data-test': 'model-reason' }, modelReason(m.reason)), m.since ? h('div.muted', null, timeEl(m.since)) : null),
          h('td', null, String(m.in_flight || 0)),
          h('td', null, m.source || '—', notes ? h('div.muted', null, notes) : null),
          h('td', null, h('div.btn-group', null,
            h('button.btn.btn-sm', { type: 'button', 'data-model-action': 'load', 'data-test': 'model-load', disabled: st === 'loaded' || st === 'loading' || st === 'sleeping' }, 'Load'),
            h('button.btn.btn-sm', { type: 'button', 'data-model-action': 'unload', 'data-test': 'model-unload', disabled: st === 'unloaded' || st === 'failed' || !res.running }, 'Unload'))));
      }));
      tbody.addEventListener('click', async (e) => {
        const b = e.target.closest('button[data-model-action]');
        if (!b) return;
        const model = b.closest('tr').dataset.name;
        b.disabled = true;
        try {
          await api.post(path('instances', name, 'models', model, b.dataset.modelAction));
          toast(`${b.dataset.modelAction === 'load' ? 'Loaded' : 'Unloaded'} ${model}`, 'ok');
        } catch (err) { toastError(`${b.dataset.modelAction} ${model}`, err); }
        loadModels();
      });
      const limit = res.models_max == null ? 'no limit' : `at most ${res.models_max} loaded at once`;
      replace(modelsPanel,
        h('p.muted', null, (res.running ? 'The router runs' : 'The instance is stopped: Load starts it') + ` — ${limit}.`),
        list.length === 0 ? h('p.muted', null, 'The router lists no models (see models_dir and the router presets).') :
          h('div.table-wrap', null, h('table.table', null, h('thead', null, h('tr', null, h('th', null, 'Model'), h('th', null, 'Status'), h('th', null, 'In flight'), h('th', null, 'Source'), h('th', null, 'Actions'))), tbody)),
        h('p', null, h('button.btn.btn-sm', { type: 'button', on: { click: loadModels } }, 'Refresh list')));
    } catch (err) {
      if (alive) replace(modelsPanel, h('div.notice', null, 'The models could not be listed: ' + err.message));
    }
  }

  const offs = [
    events.on('status', (ev) => {
      if (!ev || ev.name !== name) return;
      if (inst) {
        inst.status = ev.to;
        inst.last_reason = ev.reason;
        if (ev.to === 'running') inst.ready_at = ev.at;
        else if (ev.to === 'stopped' || ev.to === 'failed') inst.stopped_at = ev.at;
        else inst.started_at = ev.at;
        renderHeader();
      }
      if (ev.to === 'starting' || ev.to === 'running') logs.reopen();
      timeline.push({ ...ev, id: null });
      renderTimeline();
      clearTimeout(detailTimer);
      detailTimer = setTimeout(loadInstance, 400);
      if (currentTab === 'models' && ev.to === 'running') loadModels();
    }),
    events.on('model', (ev) => {
      if (ev && ev.instance === name && currentTab === 'models') {
        clearTimeout(modelsTimer);
        modelsTimer = setTimeout(loadModels, 150);
      }
    }),
    events.on('activity', (rec) => {
      if (rec && rec.instance === name && currentTab === 'activity') {
        clearTimeout(detailTimer);
        detailTimer = setTimeout(() => { loadActivity(); loadInstance(); }, 500);
      }
    }),
  ];

  const refresh = () => { loadInstance(); loadTimeline(); if (currentTab === 'activity') loadActivity(); logs.reopen(); };
  loadInstance();
  loadTimeline();
  return {
    unmount() {
      alive = false;
      logs.close();
      offs.forEach((o) => o());
      clearTimeout(detailTimer);
      clearTimeout(metricsTimer);
      clearTimeout(modelsTimer);
    },
    refresh,
  };
}
