// Formatting of values the API returns: statuses, transition reasons, bytes, numbers.
import { h } from './dom.js';

/**
 * A status badge: the status as text, coloured by class (never colour alone).
 * @param {string} status
 * @param {Object<string,string>} [attrs] extra attributes (e.g. data-test)
 * @returns {HTMLElement}
 */
export function statusBadge(status, attrs) {
  const el = h('span', attrs);
  setStatus(el, status);
  return el;
}

/**
 * Sets a status badge's text and colour class.
 * @param {HTMLElement} el
 * @param {string} status
 */
export function setStatus(el, status) {
  const s = String(status || 'unknown');
  el.className = 'status status-' + s.replace(/[^a-z_]/gi, '');
  el.textContent = s.replace(/_/g, ' ');
  el.dataset.status = s;
}

function exitText(exit) {
  if (!exit) return 'unknown exit status';
  if (exit.code !== undefined && exit.code !== null) return `exit code ${exit.code}`;
  if (exit.signal !== undefined && exit.signal !== null) return `signal ${exit.signal}`;
  return 'unknown exit status';
}

/**
 * A transition reason (`{"kind": "evicted", "by": "big"}`) in words.
 * @param {any} reason
 * @returns {string}
 */
export function reasonText(reason) {
  if (!reason) return '';
  if (typeof reason === 'string') return reason.replace(/_/g, ' ');
  const r = reason;
  switch (r.kind) {
    case 'user_start': return 'started by a user';
    case 'user_stop': return 'stopped by a user';
    case 'user_restart': return 'restarted by a user';
    case 'options_changed': return 'options changed';
    case 'on_demand': return 'started on demand';
    case 'boot': return 'started with the manager';
    case 'ready': return 'ready';
    case 'idle_timeout': return 'idle timeout';
    case 'evicted': return `evicted by ${r.by}`;
    case 'crashed': return `crashed (${exitText(r.exit)})`;
    case 'out_of_memory': return `killed for lack of memory (${exitText(r.exit)})`;
    case 'startup_exited': return `exited while starting (${exitText(r.exit)})`;
    case 'health_timeout': return `not ready after ${r.after_ms} ms`;
    case 'spawn_failed': return `spawn failed: ${r.error}`;
    case 'port_unavailable': return `port ${r.port} is in use`;
    case 'refused': return `refused: ${r.error}`;
    case 'restart_backoff': return `restart ${r.attempt} in ${r.delay_ms} ms`;
    case 'auto_restart': return `automatic restart ${r.attempt}`;
    case 'gave_up': return `gave up after ${r.restarts} restarts (last: ${exitText(r.exit)})`;
    case 'shutdown': return 'manager shutting down';
    case 'leftover_stopped': return `stopped leftover process ${r.pid}`;
    case 'manager_restarted': return 'manager restarted';
    case 'leftover_container_removed': return `removed leftover container ${r.container}`;
    case 'adopted': return 'taken over from an earlier manager';
    case 'adoption_refused': return `not taken over: ${r.why}`;
    default: return String(r.kind || JSON.stringify(r)).replace(/_/g, ' ');
  }
}

/**
 * Bytes as "1.5 GiB".
 * @param {number|null|undefined} n
 * @returns {string}
 */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * A number with thousands separators ("—" for null).
 * @param {number|null|undefined} n
 * @param {number} [digits] fraction digits
 * @returns {string}
 */
export function num(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/**
 * Milliseconds as "850 ms" or "2.4 s".
 * @param {number|null|undefined} ms
 * @returns {string}
 */
export function ms(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/**
 * The backend type's name for people.
 * @param {string} type
 * @returns {string}
 */
export function backendName(type) {
  return { llama_cpp: 'llama.cpp', mlx_lm: 'MLX', vllm: 'vLLM', custom: 'Custom' }[type] || type || '—';
}

/**
 * What model an instance serves, from its options ("router" for a llama.cpp router).
 * @param {any} inst an InstanceResponse
 * @returns {string}
 */
export function modelOf(inst) {
  const o = inst && inst.options;
  if (!o) return '';
  const b = o.backend_options || {};
  const m = b.model || b.m || b.hf_repo || b.hf || b.hfr || b.alias || b.served_model_name || '';
  if (m) return String(m);
  return isRouter(inst) ? 'router' : '';
}

/**
 * Whether an instance is a llama.cpp router (llama_cpp without a model).
 * @param {any} inst
 * @returns {boolean}
 */
export function isRouter(inst) {
  const o = inst && inst.options;
  if (!o || o.backend_type !== 'llama_cpp') return false;
  const b = o.backend_options || {};
  return !(b.model || b.m || b.hf_repo || b.hf || b.hfr || b.model_url || b.mu);
}

/**
 * An activity record's answer as a badge: "200", "499 cancelled", "502 error".
 * @param {{status: number, outcome: string}} r
 * @returns {HTMLElement}
 */
export function httpBadge(r) {
  const ok = r.status < 400 && r.outcome === 'completed';
  const text = r.outcome === 'completed' ? String(r.status) : `${r.status} ${r.outcome}`;
  return h('span', { class: 'status ' + (ok ? 'status-ok' : r.outcome === 'cancelled' ? 'status-warn' : 'status-bad'), 'data-status': r.outcome }, text);
}
