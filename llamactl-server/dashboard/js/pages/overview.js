// Overview: instances by status, running against the limits, the last hour's requests and
// tokens, host resource charts, the latest transitions; a hint when the server has problems.
import { api } from '../api.js';
import * as events from '../events.js';
import { instanceHref } from '../router.js';
import { h, replace } from '../ui/dom.js';
import { statusBadge, reasonText, bytes, num } from '../ui/format.js';
import { timeEl } from '../ui/time.js';
import { lineChart, meter, toPoints, bars } from '../ui/chart.js';

const METRICS_EVERY_MS = 30000;
const STATUS_ORDER = ['running', 'starting', 'restarting', 'stopping', 'failed', 'stopped'];

/**
 * Mounts the overview page.
 * @param {HTMLElement} root
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root) {
  let alive = true;
  let instances = [];
  let config = null;
  let transitions = [];
  let metricsTimer = 0;
  let statsTimer = 0;

  const problems = h('div');
  const counts = h('div.grid.grid-cards', { 'data-test': 'overview-status' });
  const limits = h('div.card', { 'data-test': 'overview-limits' });
  const usage = h('div.grid.grid-cards', { 'data-test': 'overview-usage' });
  const charts = h('div.grid.grid-3', { 'data-test': 'overview-charts' });
  const latest = h('div.card', { 'data-test': 'overview-transitions' });

  replace(root,
    h('div.page-head', null, h('h1', null, 'Overview'), h('a.btn', { href: '#/instances' }, 'All instances'), h('a.btn.btn-primary', { href: '#/create' }, 'Create instance')),
    problems,
    h('h2', null, 'Instances'), counts,
    h('div.grid.grid-2.section', null, limits, latest),
    h('h2.section', null, 'Requests in the last hour'), usage,
    h('h2.section', null, 'Host resources (last hour)'), charts);

  function renderCounts() {
    const by = new Map();
    for (const i of instances) by.set(i.status, (by.get(i.status) || 0) + 1);
    const keys = [...new Set([...STATUS_ORDER.filter((s) => by.has(s)), ...by.keys()])];
    replace(counts, h('div.card', null, h('div.stat-label', null, 'Total'), h('div.stat-value', null, String(instances.length)),
      h('div.stat-sub', null, instances.length ? h('a', { href: '#/instances' }, 'View table') : h('a', { href: '#/create' }, 'Create the first one'))));
    for (const s of keys) {
      counts.appendChild(h('div.card', { 'data-status': s }, h('div.stat-label', null, statusBadge(s)), h('div.stat-value', null, String(by.get(s)))));
    }
  }

  function renderLimits() {
    const running = instances.filter((i) => i.status === 'running' || i.status === 'starting' || i.status === 'restarting');
    const cfg = (config && config.instances) || {};
    const max = Number(cfg.max_running_instances);
    const rows = [];
    const line = (label, used, limit) => h('div.stack', null,
      h('div.row', null, h('strong.grow', null, label), h('span', null, limit > 0 ? `${used} of ${limit} running` : `${used} running (no limit)`)),
      limit > 0 ? meter(used, limit) : null);
    rows.push(line('All instances', running.length, max > 0 ? max : 0));
    const groups = cfg.group_limits || {};
    for (const [g, limit] of Object.entries(groups)) {
      const used = running.filter((i) => i.options && i.options.group === g).length;
      rows.push(line(`Group ${g}`, used, Number(limit)));
    }
    replace(limits, h('h2', null, 'Running against the limits'), h('div.stack', null, rows),
      config ? (cfg.enable_lru_eviction ? h('p.muted.small', null, 'At a limit, the least recently used instance is stopped to make room.') : null)
        : h('p.muted.small', null, 'The configuration could not be read; limits unknown.'));
  }

  function renderLatest() {
    const items = transitions.slice(0, 12);
    replace(latest, h('h2', null, 'Latest transitions'),
      items.length === 0 ? h('p.muted', null, 'No transitions yet.') :
        h('ul.timeline', null, items.map((t) => h('li', null, h('span.when', null, timeEl(t.at)),
          h('span', null, h('a', { href: instanceHref(t.name) }, t.name), ' ', t.from ? h('span.muted', null, `${t.from} → `) : null, statusBadge(t.to), ' ',
            h('span.muted', null, reasonText(t.reason)))))));
  }

  function seedTransitions() {
    // No global transition list exists: start from each instance's last transition, then
    // prepend live status events as they come.
    transitions = instances
      .map((i) => ({ name: i.name, to: i.status, reason: i.last_reason, at: i.stopped_at && i.status !== 'running' ? i.stopped_at : i.ready_at || i.started_at || null }))
      .filter((t) => t.at && t.reason)
      .sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  }

  async function loadInstances() {
    try {
      instances = await api.get('/api/v1/instances');
      if (!alive) return;
      seedTransitions();
      renderCounts();
      renderLimits();
      renderLatest();
    } catch (err) {
      if (alive) replace(counts, h('div.notice.notice-bad', null, 'The instances could not be listed: ' + err.message));
    }
  }

  async function loadConfig() {
    try { config = await api.get('/api/v1/config'); } catch { config = null; }
    if (alive) renderLimits();
  }

  async function loadProblems() {
    try {
      const info = await api.get('/api/v1/system/info');
      const list = (info && info.problems) || [];
      if (!alive) return;
      replace(problems, list.length === 0 ? null : h('div.notice.notice-warn', { 'data-test': 'overview-problems', role: 'status' },
        h('strong', null, `${list.length} problem${list.length === 1 ? '' : 's'} found on this server`),
        h('span', null, list.map((p) => p.what).join('; '), ' — ', h('a', { href: '#/system' }, 'see System'))));
      problems.classList.toggle('mb', list.length > 0);
    } catch { /* shown on the System page */ }
  }

  async function loadStats() {
    clearTimeout(statsTimer);
    const since = new Date(Date.now() - 3600e3).toISOString();
    try {
      const stats = await api.get('/api/v1/activity/stats', { since, group_by: 'instance' });
      if (!alive) return;
      const sum = (k) => stats.groups.reduce((a, g) => a + (g[k] || 0), 0);
      const card = (label, value, sub) => h('div.card', null, h('div.stat-label', null, label), h('div.stat-value', null, value), sub ? h('div.stat-sub', null, sub) : null);
      replace(usage,
        card('Requests', num(sum('requests')), h('a', { href: '#/activity' }, 'Activity')),
        card('Errors', num(sum('errors'))),
        card('Prompt tokens', num(sum('prompt_tokens'))),
        card('Generated tokens', num(sum('completion_tokens'))));
    } catch (err) {
      if (alive) replace(usage, h('p.muted', null, 'Activity statistics unavailable: ' + err.message));
    }
  }

  async function loadMetrics() {
    clearTimeout(metricsTimer);
    if (!document.hidden) {
      try {
        const m = await api.get('/api/v1/system/metrics', { window: '1h' });
        if (!alive) return;
        renderCharts(m);
      } catch (err) {
        if (alive) replace(charts, h('p.muted', null, 'Resource history unavailable: ' + err.message));
      }
    }
    if (alive) metricsTimer = setTimeout(loadMetrics, METRICS_EVERY_MS);
  }

  function renderCharts(m) {
    if (!m.enabled) {
      replace(charts, h('p.muted', null, 'The server takes no resource samples (resource_history.enabled is false).'));
      return;
    }
    const host = m.host || [];
    const totalMem = host.reduce((a, p) => p.memory_total_bytes || a, 0);
    const list = [
      h('div.card', null, h('h3', null, 'CPU'), lineChart({ title: 'Host CPU', series: [{ label: 'CPU', points: toPoints(host, (p) => p.cpu_percent) }], max: 100, format: (v) => `${Math.round(v)}%` })),
      h('div.card', null, h('h3', null, 'Memory', totalMem ? h('span.muted.small', null, ` of ${bytes(totalMem)}`) : null),
        lineChart({ title: 'Host memory', series: [{ label: 'Used', points: toPoints(host, (p) => p.memory_used_bytes) }], max: totalMem || undefined, format: bytes })),
    ];
    for (const [idx, points] of Object.entries(m.gpus || {})) {
      list.push(h('div.card', null, h('h3', null, `GPU ${idx}`),
        lineChart({ title: `GPU ${idx} utilisation`, series: [{ label: 'Utilisation', points: toPoints(points, (p) => p.utilization_percent) }], max: 100, format: (v) => `${Math.round(v)}%` }),
        lineChart({ title: `GPU ${idx} memory`, series: [{ label: 'Memory', points: toPoints(points, (p) => p.memory_used_bytes) }], max: points.reduce((a, p) => p.memory_total_bytes || a, 0) || undefined, format: bytes })));
    }
    // Memory per instance (the last sample) next to the host's.
    const latest = (m.latest && m.latest.instances) || {};
    const mem = Object.entries(latest).filter(([, p]) => p && p.rss_bytes).sort((a, b) => b[1].rss_bytes - a[1].rss_bytes).slice(0, 10);
    if (mem.length) {
      list.push(h('div.card', { 'data-test': 'overview-instance-memory' }, h('h3', null, 'Memory by instance', totalMem ? h('span.muted.small', null, ` (host: ${bytes(totalMem)})`) : null),
        bars(mem.map(([name, p]) => ({ label: name, value: p.rss_bytes, text: `${bytes(p.rss_bytes)}${p.cpu_percent !== null && p.cpu_percent !== undefined ? ` · ${Math.round(p.cpu_percent)}% CPU` : ''}` })))));
    }
    replace(charts, list);
  }

  const offs = [
    events.on('status', (ev) => {
      if (!ev || !ev.name) return;
      const inst = instances.find((i) => i.name === ev.name);
      if (inst) inst.status = ev.to;
      else loadInstances();
      transitions.unshift(ev);
      transitions.length = Math.min(transitions.length, 50);
      renderCounts();
      renderLimits();
      renderLatest();
    }),
    events.on('activity', () => {
      clearTimeout(statsTimer);
      statsTimer = setTimeout(loadStats, 2000);
    }),
  ];

  const refresh = () => { loadInstances(); loadConfig(); loadProblems(); loadStats(); loadMetrics(); };
  refresh();
  return {
    unmount() { alive = false; offs.forEach((o) => o()); clearTimeout(metricsTimer); clearTimeout(statsTimer); },
    refresh,
  };
}
