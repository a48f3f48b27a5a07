// Relative times ("3 min ago") with the exact ISO time in `title`, kept fresh by one timer
// that rewrites the text of every element marked `data-rel-time` (display only: no fetches).

const UNITS = [
  ['year', 365 * 86400], ['month', 30 * 86400], ['day', 86400], ['h', 3600], ['min', 60], ['s', 1],
];

/**
 * Parses an ISO string, unix seconds or a Date.
 * @param {string|number|Date|null|undefined} value
 * @returns {Date|null}
 */
export function toDate(value) {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return value;
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * "3 min ago" / "in 2 h".
 * @param {Date} date
 * @param {number} [now]
 * @returns {string}
 */
export function relative(date, now = Date.now()) {
  const diff = Math.round((now - date.getTime()) / 1000);
  const abs = Math.abs(diff);
  if (abs < 5) return 'just now';
  for (const [name, secs] of UNITS) {
    if (abs >= secs) {
      const n = Math.floor(abs / secs);
      const unit = ['year', 'month', 'day'].includes(name) && n !== 1 ? name + 's' : name;
      return diff >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
    }
  }
  return 'just now';
}

/**
 * A duration such as "2 h 5 min" from seconds.
 * @param {number} secs
 * @returns {string}
 */
export function duration(secs) {
  secs = Math.max(0, Math.floor(secs));
  if (secs < 60) return `${secs} s`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

/**
 * Sets an element to show a time relatively (or an elapsed duration with `mode = "since"`).
 * @param {HTMLElement} el
 * @param {string|number|Date|null} value
 * @param {'ago'|'since'} [mode] `ago`: "3 min ago"; `since`: "3 min" (an uptime)
 * @returns {HTMLElement}
 */
export function setTime(el, value, mode = 'ago') {
  const date = toDate(value);
  if (!date) {
    el.textContent = '—';
    el.removeAttribute('title');
    delete el.dataset.relTime;
    return el;
  }
  el.dataset.relTime = String(date.getTime());
  el.dataset.relMode = mode;
  el.title = date.toISOString();
  render(el);
  return el;
}

/**
 * A new `<time>` element showing `value` relatively.
 * @param {string|number|Date|null} value
 * @param {'ago'|'since'} [mode]
 * @returns {HTMLElement}
 */
export function timeEl(value, mode = 'ago') {
  const el = document.createElement('time');
  const date = toDate(value);
  if (date) el.dateTime = date.toISOString();
  return setTime(el, value, mode);
}

function render(el) {
  const ms = Number(el.dataset.relTime);
  el.textContent = el.dataset.relMode === 'since' ? duration((Date.now() - ms) / 1000) : relative(new Date(ms));
}

setInterval(() => {
  if (document.hidden) return;
  for (const el of document.querySelectorAll('[data-rel-time]')) render(el);
}, 15000);
