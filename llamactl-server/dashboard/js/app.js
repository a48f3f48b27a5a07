// Entry point: the session check, the sign-in form, the shell (navigation, theme, sign-out),
// the one event stream and the router.
import { onUnauthorized } from './api.js';
import * as events from './events.js';
import { startRouter, refreshCurrent, unmountCurrent, setBlocked, preloadCurrent } from './router.js';
import { getSession, signIn, signOut } from './session.js';
import { h, replace, field } from './ui/dom.js';
import { toastError } from './ui/toast.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signoutBtn = document.getElementById('signout');
let routing = false;
let signinShown = false;

function setupTheme() {
  const btn = document.getElementById('theme-toggle');
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  const currentTheme = () => document.documentElement.dataset.theme || (media.matches ? 'dark' : 'light');
  const label = () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    btn.textContent = next === 'dark' ? 'Dark theme' : 'Light theme';
    btn.setAttribute('aria-label', `Switch to the ${next} theme`);
  };
  btn.addEventListener('click', () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem('llamactl-theme', next); } catch { /* not stored */ }
    label();
    window.dispatchEvent(new CustomEvent('themechange'));
  });
  media.addEventListener('change', label);
  label();
}

function setupNavToggle() {
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const open = nav.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
  });
}

/** Shows the sign-in form in place of the app. */
function showSignIn() {
  if (signinShown) return;
  signinShown = true;
  events.stop();
  setBlocked(true);
  unmountCurrent();
  nav.hidden = true;
  signoutBtn.hidden = true;
  const user = h('input', { type: 'text', name: 'username', value: 'management', autocomplete: 'username', hidden: true, 'aria-hidden': 'true', tabindex: '-1' });
  const key = h('input', { type: 'password', autocomplete: 'current-password', required: true, 'data-test': 'signin-key', name: 'key' });
  const error = h('p.field-error', { 'data-test': 'signin-error', role: 'alert', hidden: true });
  const submit = h('button.btn.btn-primary', { type: 'submit', 'data-test': 'signin-submit' }, 'Sign in');
  const form = h('form.card.signin', { 'data-test': 'signin-form' },
    h('h1', null, 'Sign in to llamactl'),
    h('p.muted', null, 'Use a management key (from the server configuration, auth.management_keys).'),
    user,
    field('Management key', key),
    error,
    h('div.row', null, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await signIn(key.value.trim());
      key.value = '';
      signinShown = false;
      await enterApp({ auth_required: true, signed_in: true });
    } catch (err) {
      error.textContent = err.status === 401 ? `Sign-in refused: ${err.message}` : `Sign-in failed: ${err.message}`;
      error.hidden = false;
      key.focus();
      key.select();
    } finally {
      submit.disabled = false;
    }
  });
  replace(main, form);
  key.focus();
}

async function enterApp(session) {
  nav.hidden = false;
  signoutBtn.hidden = !session.auth_required;
  main.textContent = '';
  events.start();
  if (!routing) {
    routing = true;
    setBlocked(false, false);
    startRouter(main);
  } else {
    setBlocked(false);
  }
}

async function boot() {
  setupTheme();
  setupNavToggle();
  onUnauthorized(showSignIn);
  events.setProbe(async () => {
    try {
      const s = await getSession();
      if (s.auth_required && !s.signed_in) {
        showSignIn();
        return false;
      }
    } catch { /* server down: keep trying */ }
    return true;
  });
  events.on('reconnect', () => refreshCurrent());
  events.on('lagged', () => refreshCurrent());
  signoutBtn.addEventListener('click', async () => {
    try {
      await signOut();
    } catch (err) {
      toastError('Sign out', err);
    }
    showSignIn();
  });
  preloadCurrent();
  let session;
  try {
    session = await getSession();
  } catch (err) {
    replace(main, h('div.notice.notice-bad', null, h('strong', null, 'The server did not answer.'), String(err.message || err)),
      h('p', null, h('button.btn', { type: 'button', on: { click: () => location.reload() } }, 'Try again')));
    return;
  }
  if (session.auth_required && !session.signed_in) showSignIn();
  else enterApp(session);
}

boot();
