// The one EventSource of the app (`/api/v1/events`): status and activity events for every
// page, a connection banner while it is down, reconnection with backoff, and a `reconnect`
// signal on which pages refetch what they show (catch-up).

const listeners = new Map();
let source = null;
let retryMs = 1000;
let retryTimer = null;
let lost = false;
let stopped = true;
let probe = null;

/**
 * Subscribes to an event type: `status`, `activity`, `lagged`, `reconnect` (the stream is back
 * after a loss: refetch), `lost`.
 * @param {string} type
 * @param {(data: any) => void} fn
 * @returns {() => void} unsubscribe
 */
export function on(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type).delete(fn);
}

function emit(type, data) {
  const set = listeners.get(type);
  if (!set) return;
  for (const fn of [...set]) {
    try { fn(data); } catch (err) { console.error('event listener', type, err); }
  }
}

function banner(show) {
  const el = document.getElementById('connection-banner');
  if (el) el.hidden = !show;
}

function parse(e) {
  try { return JSON.parse(e.data); } catch { return e.data; }
}

/**
 * Sets a check run when the stream fails (the app checks whether the session is still valid).
 * @param {() => Promise<boolean>} fn resolves false to stop reconnecting (signed out)
 */
export function setProbe(fn) {
  probe = fn;
}

/** Opens the stream (once). */
export function start() {
  stopped = false;
  if (source) return;
  connect();
}

/** Closes the stream (sign-out) and hides the banner. */
export function stop() {
  stopped = true;
  clearTimeout(retryTimer);
  if (source) source.close();
  source = null;
  lost = false;
  banner(false);
}

/** @returns {boolean} whether the stream is up */
export function connected() {
  return source !== null && source.readyState === 1;
}

function connect() {
  const es = new EventSource('/api/v1/events', { withCredentials: true });
  source = es;
  es.addEventListener('open', () => {
    retryMs = 1000;
    if (lost) {
      lost = false;
      banner(false);
      emit('reconnect', null);
    }
  });
  es.addEventListener('status', (e) => emit('status', parse(e)));
  es.addEventListener('activity', (e) => emit('activity', parse(e)));
  es.addEventListener('model', (e) => emit('model', parse(e)));
  es.addEventListener('reload', (e) => emit('reload', parse(e)));
  es.addEventListener('lagged', (e) => emit('lagged', parse(e)));
  es.addEventListener('error', () => {
    if (source !== es) return;
    // Take reconnection into our own hands (with backoff), whatever the browser would do.
    es.close();
    source = null;
    if (stopped) return;
    if (!lost) {
      lost = true;
      banner(true);
      emit('lost', null);
    }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(async () => {
      if (stopped) return;
      if (probe) {
        const keepGoing = await probe().catch(() => true);
        if (!keepGoing || stopped) return;
      }
      connect();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  });
}
