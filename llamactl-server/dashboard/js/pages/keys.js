// Inference keys: list (mode, rights per instance, expiry, last use), create (the secret is
// shown once, with Copy), delete.
import { api, path } from '../api.js';
import { h, replace, field, copyText } from '../ui/dom.js';
import { timeEl } from '../ui/time.js';
import { toast, toastError } from '../ui/toast.js';
import { confirmDialog } from '../ui/confirm.js';

/**
 * Mounts the keys page.
 * @param {HTMLElement} root
 * @returns {{unmount: () => void, refresh: () => void}}
 */
export function mount(root) {
  let alive = true;
  let instances = [];

  const createBtn = h('button.btn.btn-primary', { type: 'button', 'data-test': 'key-create' }, 'Create key');
  const createBox = h('div');
  const secretBox = h('div');
  const listBox = h('div', { 'data-test': 'keys-list' }, h('p.muted', null, 'Loading keys…'));
  replace(root,
    h('div.page-head', null, h('h1', null, 'Inference keys'), createBtn),
    h('p.muted', null, 'Keys for clients of the OpenAI-compatible API (/v1). Management keys are set in the server configuration.'),
    secretBox, createBox, listBox);

  createBtn.addEventListener('click', () => { showCreate(); });

  function showCreate() {
    createBtn.disabled = true;
    const name = h('input', { type: 'text', 'data-test': 'key-name', 'data-field': 'name', maxlength: 100, required: true, autocomplete: 'off' });
    const mode = h('select', { 'data-test': 'key-mode', 'data-field': 'permission_mode' },
      h('option', { value: 'allow_all' }, 'Every instance (infer, start on demand, evict)'),
      h('option', { value: 'per_instance' }, 'Chosen instances only'));
    const expires = h('input', { type: 'datetime-local', 'data-test': 'key-expires', 'data-field': 'expires_at' });
    const perms = h('div', { hidden: true, 'data-field': 'instance_permissions' });
    const permRows = new Map();
    const tbody = h('tbody');
    for (const inst of instances) {
      const box = (right, label) => h('input', { type: 'checkbox', 'data-right': right, 'aria-label': `${label} on ${inst.name}` });
      const infer = box('can_infer', 'Infer');
      const start = box('can_start', 'Start');
      const evict = box('can_evict', 'Evict');
      permRows.set(inst.name, { infer, start, evict, id: inst.id });
      tbody.appendChild(h('tr', { 'data-test': 'key-perm-row', 'data-name': inst.name }, h('td', null, inst.name), h('td', null, infer), h('td', null, start), h('td', null, evict)));
    }
    replace(perms, instances.length === 0 ? h('p.muted', null, 'There are no instances yet.') :
      h('div.table-wrap', null, h('table.table', null, h('thead', null, h('tr', null, h('th', null, 'Instance'),
        h('th', { title: 'Send inference requests' }, 'Infer'), h('th', { title: 'Start it on demand' }, 'Start'), h('th', { title: 'Evict other instances to make room for it' }, 'Evict'))), tbody)),
      h('p.muted.small', null, 'Infer: send requests. Start: start it on demand. Evict: stop others to make room for it.'));
    mode.addEventListener('change', () => { perms.hidden = mode.value !== 'per_instance'; });
    const error = h('div.notice.notice-bad', { 'data-test': 'form-error', hidden: true, role: 'alert' });
    const submit = h('button.btn.btn-primary', { type: 'submit', 'data-test': 'key-submit' }, 'Create key');
    const cancel = h('button.btn', { type: 'button' }, 'Cancel');
    const form = h('form.card', { 'data-test': 'key-form' },
      h('h2', null, 'New key'),
      h('div.form-grid', null,
        field('Name', name, 'For people: who or what uses it.'),
        field('Rights', mode),
        field('Expires (optional)', expires, 'Leave empty for a key that does not expire.')),
      perms, error, h('div.row', null, submit, cancel));
    cancel.addEventListener('click', () => { replace(createBox); createBtn.disabled = false; });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      const body = { name: name.value.trim(), permission_mode: mode.value };
      if (expires.value) body.expires_at = Math.floor(new Date(expires.value).getTime() / 1000);
      if (mode.value === 'per_instance') {
        body.instance_permissions = [];
        for (const [instName, r] of permRows) {
          if (r.infer.checked || r.start.checked || r.evict.checked) {
            body.instance_permissions.push({ instance_name: instName, can_infer: r.infer.checked, can_start: r.start.checked, can_evict: r.evict.checked });
          }
        }
      }
      submit.disabled = true;
      try {
        const created = await api.post('/api/v1/auth/keys', body);
        replace(createBox);
        createBtn.disabled = false;
        showSecret(created);
        loadKeys();
      } catch (err) {
        error.hidden = false;
        replace(error, h('strong', null, 'The key was not created.'), err.message);
      } finally {
        submit.disabled = false;
      }
    });
    replace(createBox, form);
    name.focus();
  }

  function showSecret(created) {
    const secret = created.key_secret || created.key;
    const copy = h('button.btn.btn-primary', { type: 'button', 'data-test': 'key-copy' }, 'Copy');
    const done = h('button.btn', { type: 'button', 'data-test': 'key-secret-done' }, 'Done');
    copy.addEventListener('click', async () => {
      const ok = await copyText(secret);
      toast(ok ? 'Copied the key' : 'Copy failed: select the key and copy it', ok ? 'ok' : 'error');
    });
    done.addEventListener('click', () => replace(secretBox));
    replace(secretBox, h('div.notice.notice-ok.section.mb', { 'data-test': 'key-secret-box', role: 'status' },
      h('strong', null, `Key “${created.name}” created. Copy it now: it is not shown again.`),
      h('div.secret', { 'data-test': 'key-secret' }, secret),
      h('div.row.section', null, copy, done)));
    copy.focus();
  }

  async function permissionsText(key, cell) {
    if (key.permission_mode !== 'per_instance') { cell.textContent = 'Every instance'; return; }
    try {
      const perms = await api.get(path('auth', 'keys', key.id, 'permissions'));
      const text = perms.map((p) => `${p.instance_name} (${[p.can_infer && 'infer', p.can_start && 'start', p.can_evict && 'evict'].filter(Boolean).join(', ') || 'none'})`).join('; ');
      cell.textContent = text || 'No instance';
    } catch (err) {
      cell.textContent = 'Chosen instances (unreadable: ' + err.message + ')';
    }
  }

  async function loadKeys() {
    try {
      const [keys, list] = await Promise.all([api.get('/api/v1/auth/keys'), api.get('/api/v1/instances').catch(() => [])]);
      if (!alive) return;
      instances = list;
      if (keys.length === 0) {
        replace(listBox, h('div.card.empty', { 'data-test': 'keys-empty' }, h('p', null, 'No inference keys yet.'), h('p.muted', null, 'Create one for each client or person, with only the rights it needs.')));
        return;
      }
      const now = Date.now() / 1000;
      const tbody = h('tbody', null, keys.map((k) => {
        const perm = h('td', null, '…');
        permissionsText(k, perm);
        const expired = k.expires_at && k.expires_at < now;
        return h('tr', { 'data-test': 'key-row', 'data-name': k.name, 'data-id': k.id },
          h('td', null, h('strong', null, k.name)),
          perm,
          h('td', null, k.expires_at ? [expired ? h('span.status.status-bad', null, 'expired') : null, ' ', timeEl(k.expires_at)] : 'never'),
          h('td', null, k.last_used_at ? timeEl(k.last_used_at) : h('span.muted', null, 'never')),
          h('td', null, timeEl(k.created_at)),
          h('td', null, h('button.btn.btn-sm.btn-danger', { type: 'button', 'data-test': 'key-delete', 'data-id': k.id, 'data-name': k.name }, 'Delete')));
      }));
      tbody.addEventListener('click', async (e) => {
        const b = e.target.closest('button[data-test="key-delete"]');
        if (!b) return;
        const ok = await confirmDialog({ title: `Delete the key “${b.dataset.name}”?`, message: 'Clients using it are refused from now on.', ok: 'Delete', danger: true });
        if (!ok) return;
        try {
          await api.del(path('auth', 'keys', b.dataset.id));
          toast(`Deleted the key ${b.dataset.name}`, 'ok');
          loadKeys();
        } catch (err) { toastError('Delete the key', err); }
      });
      replace(listBox, h('div.table-wrap', null, h('table.table', { 'data-test': 'keys-table' },
        h('thead', null, h('tr', null, ['Name', 'Rights', 'Expires', 'Last used', 'Created', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))), tbody)));
    } catch (err) {
      if (alive) replace(listBox, h('div.notice.notice-bad', null, 'The keys could not be listed: ' + err.message));
    }
  }

  loadKeys();
  return { unmount() { alive = false; }, refresh: loadKeys };
}
