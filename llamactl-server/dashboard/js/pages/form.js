// Create / Edit an instance: backend first, typed flags with help, other flags as key/value
// rows, environment, lifecycle, Docker, group; "Import a command line"; a JSON tab. Server
// errors are shown at the field they name (`data-field` = the option's dotted path).
import { api, path, openapi } from '../api.js';
import { go, instanceHref } from '../router.js';
import { h, replace, tabs } from '../ui/dom.js';
import { toast } from '../ui/toast.js';
import { BACKENDS, TOP_HELP, DOCKER_FIELDS } from './form-fields.js';

const MANAGED_TOP = ['backend_type', 'backend_options', 'auto_restart', 'max_restarts', 'restart_delay', 'on_demand_start',
  'idle_timeout', 'startup_timeout', 'environment', 'command_override', 'group', 'docker_enabled', 'docker', 'nodes', 'preset_ini'];
const MANAGED_DOCKER = ['image', 'network', 'gpus', 'shm_size', 'memory', 'volumes', 'entrypoint', 'environment'];

let seq = 0;

/** Reads a number typed as text: an integer, a float, or the text itself (the server says what is wrong). */
function loose(text, { words = false } = {}) {
  const t = text.trim();
  if (t === '') return undefined;
  if (/^-?\d+$/.test(t)) return parseInt(t, 10);
  if (/^-?\d*\.\d+$/.test(t)) return parseFloat(t);
  if (words && t === 'true') return true;
  if (words && t === 'false') return false;
  return t;
}

function shown(value) {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.join('\n');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * A control for one option. Returns {el (the .field), input, read(), write(v)}.
 * @param {string} dotted data-field path
 * @param {{label: string, type: string, help?: string, choices?: string[], placeholder?: string}} spec
 */
function control(dotted, spec) {
  const id = 'opt' + ++seq;
  let input;
  let read;
  let write;
  const attrs = { id, name: dotted, 'data-field': dotted };
  if (spec.type === 'bool' || spec.type === 'tri') {
    input = h('select', attrs, h('option', { value: '' }, spec.defaultLabel || 'Default'), h('option', { value: 'true' }, 'Yes'), h('option', { value: 'false' }, 'No'));
    read = () => (input.value === '' ? undefined : input.value === 'true');
    write = (v) => { input.value = v === true ? 'true' : v === false ? 'false' : ''; };
  } else if (spec.type === 'enum') {
    input = h('select', attrs, h('option', { value: '' }, 'Default'), spec.choices.map((c) => h('option', { value: c }, c)));
    read = () => input.value || undefined;
    write = (v) => {
      const s = shown(v);
      if (s && !spec.choices.includes(s)) input.appendChild(h('option', { value: s }, s));
      input.value = s;
    };
  } else if (spec.type === 'list' || spec.type === 'text') {
    input = h('textarea', { ...attrs, rows: spec.type === 'text' ? 6 : 3, placeholder: spec.placeholder || null });
    read = spec.type === 'text'
      ? () => (input.value.trim() === '' ? undefined : input.value)
      : () => { const l = input.value.split('\n').map((s) => s.trim()).filter(Boolean); return l.length ? l : undefined; };
    write = (v) => { input.value = shown(v); };
  } else {
    const numeric = ['int', 'float', 'layers', 'duration'].includes(spec.type);
    input = h('input', { ...attrs, type: 'text', inputmode: spec.type === 'int' ? 'numeric' : null, placeholder: spec.placeholder || null, autocomplete: 'off', spellcheck: 'false' });
    read = numeric ? () => loose(input.value) : () => (input.value.trim() === '' ? undefined : input.value.trim());
    write = (v) => { input.value = shown(v); };
  }
  const help = spec.help ? h('small.help', { id: id + '-help' }, spec.help) : null;
  if (help) input.setAttribute('aria-describedby', help.id);
  const el = h('div.field', null, h('label', { for: id }, spec.label), input, help);
  return { el, input, read, write, help };
}

/**
 * Key/value rows (environment, other flags). `fieldOf(key)` names a row's value input.
 * @returns {{el: HTMLElement, read: () => Object, write: (obj: Object) => void}}
 */
function kvRows({ label, keyLabel, valueLabel, fieldOf, dataField, parse, addLabel }) {
  const list = h('div.kv-rows', { 'data-field': dataField });
  const add = (k = '', v = '') => {
    const key = h('input', { type: 'text', value: k, placeholder: keyLabel, 'aria-label': keyLabel, 'data-test': 'kv-key', autocomplete: 'off', spellcheck: 'false' });
    const val = h('input', { type: 'text', value: shown(v), placeholder: valueLabel, 'aria-label': valueLabel, 'data-test': 'kv-value', autocomplete: 'off', spellcheck: 'false' });
    const sync = () => { if (fieldOf) val.dataset.field = fieldOf(key.value.trim()); };
    key.addEventListener('input', sync);
    sync();
    const rm = h('button.btn.btn-sm', { type: 'button', 'aria-label': 'Remove this row' }, 'Remove');
    const row = h('div.kv-row.field', null, key, val, rm);
    rm.addEventListener('click', () => row.remove());
    list.appendChild(row);
    return key;
  };
  const addBtn = h('button.btn.btn-sm', { type: 'button', 'data-test': 'kv-add' }, addLabel || 'Add');
  addBtn.addEventListener('click', () => add().focus());
  const el = h('div', null, h('div.label', null, label), list, addBtn);
  el.classList.add('field');
  return {
    el,
    read() {
      const out = {};
      for (const row of list.children) {
        const [k, v] = row.querySelectorAll('input');
        if (k.value.trim()) out[k.value.trim()] = parse(v.value);
      }
      return out;
    },
    write(obj) {
      list.textContent = '';
      for (const [k, v] of Object.entries(obj || {})) add(k, v);
    },
  };
}

/**
 * Mounts the create or edit form.
 * @param {HTMLElement} root
 * @param {{mode: 'create'|'edit', name?: string, query: URLSearchParams}} params
 * @returns {{unmount: () => void}}
 */
export function mount(root, { mode, name }) {
  const editing = mode === 'edit';
  let base = {};
  let alive = true;
  let rawExtraArgs = null; // extra_args in map form: kept as it is
  const top = {};
  const docker = {};
  let flagControls = {};

  const nameInput = h('input', { type: 'text', id: 'inst-name', 'data-field': 'name', required: true, autocomplete: 'off', spellcheck: 'false', value: name || '', readonly: editing, placeholder: 'qwen-7b' });
  const backendSel = h('select', { id: 'inst-backend', 'data-field': 'backend_type' },
    editing ? null : h('option', { value: '' }, 'Choose a backend…'),
    Object.entries(BACKENDS).map(([k, b]) => h('option', { value: k }, b.label)));
  const backendBlurb = h('small.help');
  const formError = h('div.notice.notice-bad', { 'data-test': 'form-error', role: 'alert', hidden: true });
  const restartNotice = h('div.notice.notice-warn', { 'data-test': 'edit-restart-notice', hidden: true });
  const submit = h('button.btn.btn-primary', { type: 'submit', 'data-test': 'form-submit' }, editing ? 'Save changes' : 'Create instance');

  // Import a command line
  const importText = h('textarea', { rows: 2, 'data-test': 'import-command', 'aria-label': 'Command line', placeholder: 'llama-server -m /models/qwen.gguf -c 8192 -ngl 99' });
  const importBtn = h('button.btn', { type: 'button', 'data-test': 'import-submit' }, 'Fill the form from it');
  const importMsg = h('span.small', { 'aria-live': 'polite' });
  const importBox = h('details', { 'data-test': 'import' }, h('summary', null, 'Import a command line'),
    h('p.muted.small', null, 'Paste the command you run today; the server parses it for the chosen backend and fills the flags below.'),
    importText, h('div.row', null, importBtn, importMsg));

  // Backend flags
  const commonGrid = h('div.form-grid');
  const moreGrid = h('div.form-grid');
  const moreBox = h('details', null, h('summary', null, 'More typed flags'), moreGrid);
  const extraRows = kvRows({ label: 'Other flags', keyLabel: 'Flag (e.g. mlock or override_kv)', valueLabel: 'Value (empty: a bare switch)', fieldOf: (k) => `backend_options.${k}`, dataField: 'backend_options', parse: (v) => (v.trim() === '' ? true : loose(v, { words: true })), addLabel: 'Add a flag' });
  const extraArgs = control('backend_options.extra_args', { label: 'Raw extra arguments', type: 'list', help: 'Passed as they are, one argument per line (e.g. --override-kv then its value).' });
  const presetIni = control('preset_ini', { label: 'Router presets (preset.ini)', type: 'text', help: TOP_HELP.preset_ini, placeholder: '[*]\nctx-size = 8192\n\n[qwen]\nmodel = /models/qwen.gguf' });
  const backendSet = h('fieldset', { 'data-test': 'form-backend' }, h('legend', null, 'Backend flags'), commonGrid, moreBox, extraRows.el, extraArgs.el, presetIni.el);

  // Lifecycle, environment, Docker, placement
  const mk = (key, spec) => { top[key] = control(key, { help: TOP_HELP[key], ...spec }); return top[key].el; };
  const lifecycleSet = h('fieldset', null, h('legend', null, 'Lifecycle'), h('div.form-grid', null,
    mk('auto_restart', { label: 'Restart after a crash', type: 'tri', defaultLabel: 'Server default' }),
    mk('max_restarts', { label: 'Max restarts', type: 'int' }),
    mk('restart_delay', { label: 'Restart delay', type: 'duration', placeholder: '5 or 500ms' }),
    mk('on_demand_start', { label: 'Start on demand', type: 'tri', defaultLabel: 'Server default' }),
    mk('idle_timeout', { label: 'Idle timeout', type: 'duration', placeholder: '10 (minutes) or 45s' }),
    mk('startup_timeout', { label: 'Startup timeout', type: 'duration', placeholder: '120 or 10m' })));
  const envRows = kvRows({ label: 'Environment variables', keyLabel: 'Name', valueLabel: 'Value', fieldOf: (k) => `environment.${k}`, dataField: 'environment', parse: (v) => v, addLabel: 'Add a variable' });
  const envSet = h('fieldset', null, h('legend', null, 'Environment'), envRows.el);
  const dockerEnv = kvRows({ label: 'Container environment', keyLabel: 'Name', valueLabel: 'Value', fieldOf: (k) => `docker.environment.${k}`, dataField: 'docker.environment', parse: (v) => v, addLabel: 'Add a variable' });
  for (const f of DOCKER_FIELDS) docker[f.key] = control('docker.' + f.key, f);
  const dockerSet = h('fieldset', null, h('legend', null, 'Docker'),
    mk('docker_enabled', { label: 'Run in a Docker container', type: 'tri', defaultLabel: 'Backend default' }),
    h('div.form-grid', null, DOCKER_FIELDS.map((f) => docker[f.key].el)), dockerEnv.el);
  const placeSet = h('fieldset', null, h('legend', null, 'Placement and program'), h('div.form-grid', null,
    mk('group', { label: 'Group', type: 'string' }),
    mk('nodes', { label: 'Nodes', type: 'string', placeholder: 'comma separated' }),
    mk('command_override', { label: 'Command override', type: 'string' })));

  const formPanel = h('div', null, importBox, backendSet, lifecycleSet, envSet, dockerSet, placeSet);
  const jsonArea = h('textarea', { rows: 24, 'data-test': 'form-json', 'aria-label': 'Options as JSON', spellcheck: 'false' });
  const jsonPanel = h('div', null, h('p.muted.small', null, 'The options exactly as sent to the server. Switching back to the form reads them.'), jsonArea);
  let activeTab = 'form';
  const tabbed = tabs([
    { id: 'form', label: 'Form', panel: formPanel },
    { id: 'json', label: 'JSON', panel: jsonPanel },
  ], (id) => {
    if (id === activeTab) return;
    if (id === 'json') {
      jsonArea.value = JSON.stringify(readForm(), null, 2);
    } else {
      try {
        fillForm(JSON.parse(jsonArea.value || '{}'));
      } catch (err) {
        showError({ message: 'The JSON is not valid: ' + err.message });
        activeTab = 'json';
        tabbed.select('json');
        return;
      }
    }
    activeTab = id;
  });
  const rest = h('div', null, tabbed.el);

  const form = h('form', { 'data-test': 'instance-form', novalidate: true },
    h('fieldset', null, h('legend', null, 'Instance'), h('div.form-grid', null,
      h('div.field', null, h('label', { for: 'inst-name' }, 'Name'), nameInput,
        h('small.help', null, editing ? 'The name cannot change.' : 'Letters, digits, - and _; used in URLs and as the model name.')),
      h('div.field', null, h('label', { for: 'inst-backend' }, 'Backend'), backendSel, backendBlurb))),
    restartNotice, rest, formError,
    h('div.form-actions', null, submit, h('a.btn', { href: editing ? instanceHref(name) : '#/instances' }, 'Cancel')));

  replace(root,
    h('div.crumbs', null, h('a', { href: '#/instances' }, 'Instances'), editing ? [' / ', h('a', { href: instanceHref(name) }, name)] : null, ' / '),
    h('div.page-head', null, h('h1', null, editing ? `Edit ${name}` : 'Create an instance')),
    form);

  function renderBackend(type, values) {
    const spec = BACKENDS[type];
    rest.hidden = !spec;
    backendBlurb.textContent = spec ? spec.blurb : 'Choose what runs the instance first; the flags follow.';
    importBox.hidden = !spec || !spec.parse;
    presetIni.el.hidden = type !== 'llama_cpp';
    replace(commonGrid);
    replace(moreGrid);
    flagControls = {};
    if (!spec) return;
    const rest2 = { ...(values || {}) };
    for (const f of spec.flags) {
      const c = control('backend_options.' + f.key, f);
      flagControls[f.key] = c;
      (f.common ? commonGrid : moreGrid).appendChild(c.el);
      if (rest2[f.key] !== undefined) { c.write(rest2[f.key]); delete rest2[f.key]; if (!f.common) moreBox.open = true; }
    }
    rawExtraArgs = null;
    if (Array.isArray(rest2.extra_args)) extraArgs.write(rest2.extra_args);
    else { extraArgs.write(undefined); if (rest2.extra_args !== undefined) rawExtraArgs = rest2.extra_args; }
    delete rest2.extra_args;
    extraRows.write(rest2);
  }

  function readBackend() {
    const out = {};
    for (const [k, c] of Object.entries(flagControls)) {
      const v = c.read();
      if (v !== undefined) out[k] = v;
    }
    Object.assign(out, extraRows.read());
    const raw = extraArgs.read();
    if (raw) out.extra_args = raw;
    else if (rawExtraArgs !== null) out.extra_args = rawExtraArgs;
    return out;
  }

  /** The options object from the form (unknown fields of the loaded options kept). */
  function readForm() {
    const o = {};
    for (const [k, v] of Object.entries(base)) if (!MANAGED_TOP.includes(k)) o[k] = v;
    o.backend_type = backendSel.value || undefined;
    const bo = readBackend();
    if (Object.keys(bo).length) o.backend_options = bo;
    for (const key of ['auto_restart', 'max_restarts', 'restart_delay', 'on_demand_start', 'idle_timeout', 'startup_timeout', 'docker_enabled', 'group', 'command_override']) {
      const v = top[key].read();
      if (v !== undefined) o[key] = v;
    }
    const nodes = top.nodes.read();
    if (nodes) o.nodes = String(nodes).split(',').map((s) => s.trim()).filter(Boolean);
    if (o.backend_type === 'llama_cpp') { const p = presetIni.read(); if (p) o.preset_ini = p; }
    const env = envRows.read();
    if (Object.keys(env).length) o.environment = env;
    const d = {};
    const baseDocker = base.docker && typeof base.docker === 'object' ? base.docker : {};
    for (const [k, v] of Object.entries(baseDocker)) if (!MANAGED_DOCKER.includes(k)) d[k] = v;
    for (const f of DOCKER_FIELDS) {
      let v = docker[f.key].read();
      if (v === undefined) continue;
      if (['gpus', 'shm_size', 'memory'].includes(f.key)) v = loose(String(v));
      d[f.key] = v;
    }
    const denv = dockerEnv.read();
    if (Object.keys(denv).length) d.environment = denv;
    if (Object.keys(d).length) o.docker = d;
    if (o.backend_type === undefined) delete o.backend_type;
    return o;
  }

  function fillForm(o) {
    o = o && typeof o === 'object' ? o : {};
    base = o;
    if (o.backend_type && !BACKENDS[o.backend_type]) backendSel.appendChild(h('option', { value: o.backend_type }, o.backend_type));
    backendSel.value = o.backend_type || '';
    renderBackend(backendSel.value, o.backend_options || {});
    for (const [k, c] of Object.entries(top)) c.write(k === 'nodes' && Array.isArray(o.nodes) ? o.nodes.join(', ') : o[k]);
    presetIni.write(o.preset_ini);
    envRows.write(o.environment || {});
    const d = o.docker && typeof o.docker === 'object' ? o.docker : {};
    for (const f of DOCKER_FIELDS) {
      let v = d[f.key];
      if (f.key === 'gpus' && Array.isArray(v)) v = 'device=' + v.join(',');
      docker[f.key].write(v);
    }
    dockerEnv.write(d.environment || {});
  }

  backendSel.addEventListener('change', () => {
    const current = readBackend();
    renderBackend(backendSel.value, current);
    clearErrors();
  });

  importBtn.addEventListener('click', async () => {
    const spec = BACKENDS[backendSel.value];
    if (!spec || !spec.parse) return;
    if (!importText.value.trim()) { importMsg.textContent = 'Paste a command line first.'; return; }
    importBtn.disabled = true;
    importMsg.textContent = 'Parsing…';
    try {
      const res = await api.post(path('backends', spec.parse, 'parse-command'), { command: importText.value.trim() });
      if (res.backend_type && BACKENDS[res.backend_type]) backendSel.value = res.backend_type;
      renderBackend(backendSel.value, res.backend_options || {});
      importMsg.textContent = `Filled ${Object.keys(res.backend_options || {}).length} flag(s) from the command line.`;
      clearErrors();
    } catch (err) {
      importMsg.textContent = '';
      showError(err);
    } finally {
      importBtn.disabled = false;
    }
  });

  // Errors at their field
  function clearErrors() {
    formError.hidden = true;
    for (const el of form.querySelectorAll('[data-test="field-error"]')) el.remove();
    for (const el of form.querySelectorAll('.has-error')) el.classList.remove('has-error');
  }

  function findField(field) {
    let f = field;
    while (f) {
      const el = form.querySelector(`[data-field="${CSS.escape(f)}"]`);
      if (el && !el.closest('[hidden]')) return { el, f };
      const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
      f = cut > 0 ? f.slice(0, cut) : '';
    }
    return null;
  }

  function showError(err) {
    clearErrors();
    const message = err.message || String(err);
    const found = err.field && activeTab === 'form' ? findField(err.field) : null;
    if (found) {
      const box = found.el.closest('.field') || found.el.parentElement;
      box.classList.add('has-error');
      const details = found.el.closest('details');
      if (details) details.open = true;
      box.appendChild(h('p.field-error', { 'data-test': 'field-error', 'data-field': err.field, role: 'alert' }, message));
      if (found.el.focus) found.el.focus();
      return;
    }
    formError.hidden = false;
    replace(formError, h('strong', null, err.field ? `${err.field}: ` : 'The server refused these options.'), h('span', null, message));
    formError.scrollIntoView({ block: 'nearest' });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    const instName = nameInput.value.trim();
    if (!instName) { showError({ field: 'name', message: 'A name is required.' }); return; }
    let body;
    if (activeTab === 'json') {
      try { body = JSON.parse(jsonArea.value); } catch (err) { showError({ message: 'The JSON is not valid: ' + err.message }); return; }
    } else body = readForm();
    submit.disabled = true;
    try {
      if (editing) await api.put(path('instances', instName), body);
      else await api.post(path('instances', instName), body);
      toast(editing ? `Saved ${instName}` : `Created ${instName}`, 'ok');
      go(instanceHref(instName));
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  });

  async function applySchemaHelp() {
    try {
      const doc = await openapi();
      const props = (((doc.components || {}).schemas || {}).InstanceOptionsSchema || {}).properties || {};
      if (!alive) return;
      for (const [key, c] of Object.entries(top)) {
        const p = props[key];
        if (!p || !c.help) continue;
        const text = p.description || (p.oneOf && p.oneOf.map((x) => x.description).find(Boolean));
        if (text) c.help.textContent = text.replace(/`/g, '');
      }
      const bo = props.backend_options;
      if (bo && bo.description) extraArgs.help.textContent = 'Passed as they are, one argument per line. ' + bo.description.replace(/`/g, '');
    } catch { /* the built-in help stays */ }
  }

  async function load() {
    if (!editing) { fillForm({}); return; }
    rest.hidden = true;
    try {
      const inst = await api.get(path('instances', name));
      if (!alive) return;
      fillForm(inst.options || {});
      if (inst.status === 'running' || inst.status === 'starting' || inst.status === 'restarting') {
        restartNotice.hidden = false;
        replace(restartNotice, h('strong', null, `${name} is ${inst.status}.`), 'Saving restarts it with the new options; requests in flight are cut off.');
      }
    } catch (err) {
      showError(err);
    }
  }

  load();
  applySchemaHelp();
  if (!editing) backendSel.focus();
  return { unmount() { alive = false; } };
}
