// A confirmation dialog (a real <dialog>, keyboard friendly: Escape cancels).
import { h } from './dom.js';

/**
 * Asks for confirmation.
 * @param {{title: string, message?: string, ok?: string, danger?: boolean}} opts
 * @returns {Promise<boolean>} true when confirmed
 */
export function confirmDialog({ title, message = '', ok = 'OK', danger = false }) {
  return new Promise((resolve) => {
    const okBtn = h('button', { type: 'button', class: danger ? 'btn btn-danger-solid' : 'btn btn-primary', 'data-test': 'confirm-ok' }, ok);
    const cancelBtn = h('button.btn', { type: 'button', 'data-test': 'confirm-cancel' }, 'Cancel');
    const dlg = h('dialog', { 'data-test': 'confirm-dialog', 'aria-labelledby': 'confirm-title' },
      h('h2', { id: 'confirm-title' }, title),
      message ? h('p', null, message) : null,
      h('div.row', null, cancelBtn, okBtn));
    let answered = false;
    const finish = (value) => {
      if (answered) return;
      answered = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    okBtn.addEventListener('click', () => finish(true));
    cancelBtn.addEventListener('click', () => finish(false));
    dlg.addEventListener('close', () => finish(false));
    document.body.appendChild(dlg);
    dlg.showModal();
    cancelBtn.focus();
  });
}
