// System: problems first, then version, host, Docker, backends' versions and devices, nodes,
// the configuration file's last reload with its plan ("Check for changes", "Apply"), and the
// effective configuration (secrets already removed by the server).
import { api } from '../api.js';
import { on } from '../events.js';
import { h, replace, copyText } from '../ui/dom.js';
import { bytes } from '../ui/format.js';
import { timeEl } from '../ui/time.js';
import { toast } from '../ui/toast.js';

const ACTIONS = {
  create: 'create', update_restart: 'update (restart)', update_no_restart: 'update (no restart)',
  delete: 'delete', unchanged: 'unchanged',
};

/**
 * The reload card's body for a report (`GET`/`POST /api/v1/config/reload`), or an error.
 * @param {any} report
 * @returns {HTMLElement[]}
 */
function reloadBody(report) {
  const what = report.dry_run ? 'Plan' : 'Reload';
  const outcome = { planned: 'status-info', applied: 'status-ok', failed: 'status-bad' }[report.outcome] || 'status-info';
  const applied = new Map((report.applied || []).map((a) => [a.name, a]));
  const lines = report.instances || [];
  return [
    h('p', { 'data-test': 'reload-summary' }, `${what} (${report.trigger}) of `, h('code', null, report.file || 'no file'), ': ',
      h(`span.status.${outcome}`, { 'data-test': 'reload-outcome' }, report.outcome), ' ', timeEl(report.at)),
    report.error ? h('p.notice.notice-warn', { 'data-test': 'reload-error' }, report.error) : null,
    lines.length ? h('div.table-wrap', null, h('table.table', { 'data-test': 'reload-plan' },
      h('thead', null, h('tr', null, ['Instance', 'Action', 'Changes', 'Result'].map((t) => h('th', null, t)))),
      h('tbody', null, lines.map((l) => {
        const done = applied.get(l.name);
        return h('tr', { 'data-test': 'reload-line', 'data-name': l.name, 'data-action': l.action },
          h('td', null, l.name), h('td', null, ACTIONS[l.action] || l.action),
          h('td.mono.small', null, (l.changes || []).join(', ') || '—'),
          h('td', null, done ? (done.error ? h('span.status.status-bad', { title: done.error }, 'failed: ' + done.error) : 'done') : '—'));
      })))) : (report.error ? null : h('p.muted', null, 'No declared instances.')),
    (report.settings || []).length ? h('ul', { 'data-test': 'reload-settings' }, report.settings.map((st) => h('li', null,
      h('code', null, st.key), ': ', st.effect === 'applied_live' ? 'applied live' : 'needs a server restart'))) : null,
  ];
}

/**
 * Mounts the system page.
 * @param {HTMLElement} root
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root) {
  let alive = true;
  const problems = h('section', { 'data-test': 'system-problems', 'aria-labelledby': 'problems-title' });
  const version = h('div.card', { 'data-test': 'system-version' });
  const host = h('div.card', { 'data-test': 'system-host' });
  const backends = h('div.card', { 'data-test': 'system-backends' });
  const nodes = h('div.card', { 'data-test': 'system-nodes' });
  const config = h('div.card', { 'data-test': 'system-config' });
  const reloadView = h('div', { 'data-test': 'reload-view' });
  const reloadCard = h('div.card', { 'data-test': 'system-reload' },
    h('div.row', null, h('h2.grow', null, 'Configuration file'),
      h('button.btn.btn-sm', { type: 'button', 'data-test': 'reload-check', on: { click: () => reload(true) } }, 'Check for changes'),
      h('button.btn.btn-sm.btn-primary', { type: 'button', 'data-test': 'reload-apply', on: { click: () => reload(false) } }, 'Apply')),
    h('p.muted.small', null, 'Instances declared in the file and its templates. A check plans and changes nothing; Apply reloads, as SIGHUP does.'),
    reloadView);
  replace(root,
    h('div.page-head', null, h('h1', null, 'System')),
    problems,
    h('div.grid.grid-2.section', null, version, host, nodes),
    h('div.section', null, reloadCard),
    h('div.section', null, backends),
    h('div.section', null, config));

  async function reload(dryRun) {
    try {
      const report = await api.post('/api/v1/config/reload' + (dryRun ? '?dry_run=true' : ''));
      if (alive) replace(reloadView, ...reloadBody(report));
      toast(dryRun ? 'Checked: nothing was changed' : 'Reloaded', 'ok');
    } catch (err) {
      if (alive) replace(reloadView, h('p.notice.notice-warn', { 'data-test': 'reload-error' }, err.message));
      toast(dryRun ? 'The check failed' : 'The reload failed', 'error');
    }
  }
  const offReload = on('reload', (report) => { if (alive && report) replace(reloadView, ...reloadBody(report)); });

  const safe = (p) => p.then((v) => ({ ok: true, v }), (e) => ({ ok: false, e }));
  const text = (r) => (r.ok ? String(r.v).trim() : `Not available: ${r.e.message}`);

  async function load() {
    const [ver, info, cfg, lver, ldev, nodeList, last] = await Promise.all([
      safe(api.get('/api/v1/version')), safe(api.get('/api/v1/system/info')), safe(api.get('/api/v1/config')),
      safe(api.get('/api/v1/backends/llama-cpp/version')), safe(api.get('/api/v1/backends/llama-cpp/devices')), safe(api.get('/api/v1/nodes')),
      safe(api.get('/api/v1/config/reload')),
    ]);
    if (!alive) return;
    replace(reloadView, ...(last.ok ? reloadBody(last.v) : [h('p.muted', null, 'No reload yet.')]));

    const list = info.ok && Array.isArray(info.v.problems) ? info.v.problems : [];
    problems.className = 'notice ' + (list.length ? 'notice-warn' : 'notice-ok');
    problems.dataset.count = String(list.length);
    replace(problems, h('strong', { id: 'problems-title' }, list.length ? `${list.length} problem${list.length === 1 ? '' : 's'} found` : (info.ok ? 'No problems found' : 'Problems unknown (system information unavailable)')),
      list.length ? h('ul', null, list.map((p) => h('li', { 'data-test': 'system-problem' },
        h('span', null, p.what),
        p.looked_for ? h('span.muted', null, ` — looked for ${p.looked_for}`) : null,
        p.setting ? h('span.muted', null, '; set ', h('code', null, p.setting), ' to fix it') : null))) : null);

    const versionText = ver.ok ? (typeof ver.v === 'object' ? JSON.stringify(ver.v) : String(ver.v).trim()) : `Not available: ${ver.e.message}`;
    replace(version, h('h2', null, 'llamactl'), h('p.mono', { 'data-test': 'system-version-text' }, versionText));

    if (info.ok) {
      const i = info.v;
      const rows = [
        ['Host name', i.hostname], ['Operating system', i.os], ['Kernel', i.kernel], ['Architecture', i.architecture],
        ['CPU', i.cpu_model], ['Cores', i.cpu_physical_cores ? `${i.cpu_cores} logical, ${i.cpu_physical_cores} physical` : String(i.cpu_cores)],
        ['Memory', bytes(i.memory_total_bytes)],
        ['GPUs', (i.gpus || []).length ? (i.gpus || []).map((g) => `#${g.index} ${g.name}${g.memory_total_bytes ? ` (${bytes(g.memory_total_bytes)})` : ''}`).join(', ') : 'none found (nvidia-smi)'],
        ['Docker engine', i.docker_version ? `running, version ${i.docker_version}` : 'not answering'],
      ];
      const summary = rows.filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`).join('\n');
      replace(host, h('div.row', null, h('h2.grow', null, 'Host'),
        h('button.btn.btn-sm', { type: 'button', on: { click: async () => toast((await copyText(summary)) ? 'Copied the summary' : 'Copy failed', 'ok') } }, 'Copy summary')),
      h('dl.kv', null, rows.map(([k, v]) => [h('dt', null, k), h('dd', { 'data-test': k === 'Docker engine' ? 'system-docker' : null }, v || '—')])));
    } else replace(host, h('h2', null, 'Host'), h('p.muted', null, 'Not available: ' + info.e.message));

    const programs = info.ok && Array.isArray(info.v.backends) ? info.v.backends : [];
    replace(backends, h('h2', null, 'Backends'),
      programs.length ? h('div.table-wrap', null, h('table.table', { 'data-test': 'system-programs' },
        h('thead', null, h('tr', null, ['Backend', 'Program', 'Found', 'Setting'].map((t) => h('th', null, t)))),
        h('tbody', null, programs.map((b) => h('tr', { 'data-test': 'system-program', 'data-name': b.backend },
          h('td', null, b.backend), h('td.mono', null, b.command || '—'),
          h('td', null, b.docker ? h('span.status.status-info', null, 'in Docker') : b.path ? h('span.status.status-ok', { title: b.path }, 'found') : h('span.status.status-bad', null, 'not found')),
          h('td.mono.small', null, b.setting || '—')))))) : null,
      h('h3.section', null, 'llama.cpp version'), h('pre.code', { 'data-test': 'llama-version' }, text(lver)),
      h('h3.section', null, 'llama.cpp devices'), h('pre.code', { 'data-test': 'llama-devices' }, text(ldev)));

    replace(nodes, h('h2', null, 'Nodes'), nodeList.ok ? h('ul', null, nodeList.v.map((n) => h('li', { 'data-test': 'node', 'data-name': n.name },
      h('strong', null, n.name), ' ', n.local ? h('span.status.status-info', null, 'this node') : h('span.mono', null, n.address)))) : h('p.muted', null, 'Not available: ' + nodeList.e.message));

    if (cfg.ok) {
      const json = JSON.stringify(cfg.v, null, 2);
      replace(config, h('div.row', null, h('h2.grow', null, 'Effective configuration'),
        h('button.btn.btn-sm', { type: 'button', on: { click: async () => toast((await copyText(json)) ? 'Copied the configuration' : 'Copy failed', 'ok') } }, 'Copy')),
      h('p.muted.small', null, 'As the server runs it, defaults included; secrets removed by the server.'),
      h('pre.code', { 'data-test': 'system-config-json' }, json));
    } else replace(config, h('h2', null, 'Effective configuration'), h('p.muted', null, 'Not available: ' + cfg.e.message));
  }

  load();
  return { unmount() { alive = false; offReload(); }, refresh: load };
}
