// The hash router: `#/instances`, `#/instances/NAME`, ... Pages are ES modules loaded when
// first visited, each exporting `mount(root, params) -> {unmount?, refresh?}`.

const routes = [
  { re: /^\/?$/, nav: 'overview', load: () => import('./pages/overview.js') },
  { re: /^\/overview$/, nav: 'overview', load: () => import('./pages/overview.js') },
  { re: /^\/instances$/, nav: 'instances', load: () => import('./pages/instances.js') },
  { re: /^\/create$/, nav: 'instances', load: () => import('./pages/form.js'), params: () => ({ mode: 'create' }) },
  { re: /^\/instances\/([^/]+)\/edit$/, nav: 'instances', load: () => import('./pages/form.js'), params: (m) => ({ mode: 'edit', name: m[1] }) },
  { re: /^\/instances\/([^/]+)$/, nav: 'instances', load: () => import('./pages/instance.js'), params: (m) => ({ name: m[1] }) },
  { re: /^\/activity$/, nav: 'activity', load: () => import('./pages/activity.js') },
  { re: /^\/playground$/, nav: 'playground', load: () => import('./pages/playground.js') },
  { re: /^\/keys$/, nav: 'keys', load: () => import('./pages/keys.js') },
  { re: /^\/system$/, nav: 'system', load: () => import('./pages/system.js') },
];

let current = null;
let root = null;
let seq = 0;
let blocked = false;

/**
 * Blocks routing (while the sign-in form shows) or resumes it, rendering the current hash.
 * @param {boolean} block
 * @param {boolean} [rerender] render the current hash when unblocking (default true)
 */
export function setBlocked(block, rerender = true) {
  blocked = block;
  if (!block && rerender) render();
}

/**
 * The hash of an instance's page.
 * @param {string} name
 * @param {string} [sub] e.g. `edit`
 * @returns {string}
 */
export function instanceHref(name, sub) {
  return '#/instances/' + encodeURIComponent(name) + (sub ? '/' + sub : '');
}

/**
 * Goes to a hash route.
 * @param {string} hash e.g. `#/instances`
 */
export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

/** Asks the current page to refetch its data (after a reconnection or a lag). */
export function refreshCurrent() {
  if (current && current.page && typeof current.page.refresh === 'function') current.page.refresh();
}

/** Unmounts the current page (sign-out). */
export function unmountCurrent() {
  if (current && current.page && typeof current.page.unmount === 'function') current.page.unmount();
  current = null;
}

/** Starts loading the current hash's page module early (while the session is checked). */
export function preloadCurrent() {
  const p = decodeHash(location.hash).path;
  const route = routes.find((r) => r.re.test(p));
  if (route) route.load().catch(() => {});
}

/**
 * Starts routing into `el`.
 * @param {HTMLElement} el
 */
export function startRouter(el) {
  root = el;
  window.addEventListener('hashchange', render);
  render();
}

async function render() {
  if (!root || blocked) return;
  const my = ++seq;
  const hash = decodeHash(location.hash);
  let route = routes.find((r) => r.re.test(hash.path));
  let match = route ? hash.path.match(route.re) : null;
  unmountCurrent();
  for (const a of document.querySelectorAll('#nav a')) {
    if (route && a.dataset.route === route.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  root.textContent = '';
  if (!route) {
    const p = document.createElement('p');
    p.textContent = 'No such page. ';
    const a = document.createElement('a');
    a.href = '#/overview';
    a.textContent = 'Go to the overview';
    p.appendChild(a);
    root.appendChild(p);
    return;
  }
  let mod;
  try {
    mod = await route.load();
  } catch (err) {
    root.textContent = 'This page could not be loaded: ' + err;
    return;
  }
  if (my !== seq || blocked) return;
  const params = route.params ? route.params(match.map((s) => (s ? safeDecode(s) : s))) : {};
  params.query = hash.query;
  const container = document.createElement('div');
  container.className = 'page';
  root.appendChild(container);
  const page = mod.mount(container, params) || {};
  current = { page };
  document.getElementById('nav')?.classList.remove('open');
}

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

function decodeHash(hash) {
  const h = (hash || '').replace(/^#/, '');
  const [p, q] = h.split('?');
  return { path: p || '/', query: new URLSearchParams(q || '') };
}
