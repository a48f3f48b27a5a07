// Toasts: short messages in the corner (errors stay until dismissed).
import { h } from './dom.js';

/**
 * Shows a toast.
 * @param {string} message
 * @param {'info'|'ok'|'error'} [kind]
 */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button.btn.btn-ghost.btn-sm', { type: 'button', 'aria-label': 'Dismiss' }, 'Close');
  const el = h('div.toast', { class: 'toast-' + kind, role: kind === 'error' ? 'alert' : 'status', 'data-test': 'toast' },
    h('span.grow', null, message), close);
  close.addEventListener('click', () => el.remove());
  box.appendChild(el);
  if (kind !== 'error') setTimeout(() => el.remove(), 5000);
  while (box.children.length > 5) box.firstChild.remove();
}

/**
 * Shows an error (an ApiError's message, or any error's) as a toast.
 * @param {string} what What was being done, e.g. "Start a1".
 * @param {any} err
 */
export function toastError(what, err) {
  toast(`${what}: ${err && err.message ? err.message : String(err)}`, 'error');
}
