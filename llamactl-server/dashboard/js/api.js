// The REST client: same origin, session cookie, `X-Llamactl-Request: dashboard` on every
// state-changing request, errors normalised to ApiError, a 401 hands over to the sign-in form.

/** An error answer of the API. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: no answer)
   * @param {string} code machine-readable code (`invalid_options`, `not_found`, ...)
   * @param {string} message for people
   * @param {string|null} [field] dotted path of the option at fault
   */
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let unauthorized = () => {};

/**
 * Sets what happens on a 401 answer (the app shows the sign-in form).
 * @param {() => void} fn
 */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** Reports a 401 seen outside `request` (the playground's own fetch): shows the sign-in form. */
export function signalUnauthorized() {
  unauthorized();
}

/**
 * Builds `/api/v1/...` paths with encoded segments: `path('instances', name, 'start')`.
 * @param {...(string|number)} parts
 * @returns {string}
 */
export function path(...parts) {
  return '/api/v1/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

/**
 * Reads an error answer into an ApiError (both `{"error": "code", "details"}` and the nested
 * `{"error": {"message", "type", "code"}}` forms).
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
export async function errorOf(res) {
  let body = null;
  const text = await res.text().catch(() => '');
  try { body = JSON.parse(text); } catch { body = null; }
  if (body && typeof body.error === 'string') {
    return new ApiError(res.status, body.error, body.details || body.error, body.field || null);
  }
  if (body && body.error && typeof body.error === 'object') {
    const e = body.error;
    return new ApiError(res.status, e.code || e.type || 'error', e.message || 'error', e.field || null);
  }
  return new ApiError(res.status, 'http_' + res.status, text.trim().slice(0, 300) || `${res.status} ${res.statusText}`);
}

/**
 * Sends a request and returns the parsed answer (JSON, text, or null for 204).
 * @param {string} method
 * @param {string} url path, e.g. `/api/v1/instances`
 * @param {{body?: any, query?: Object<string, any>, signal?: AbortSignal, noAuthRedirect?: boolean, raw?: boolean}} [opts]
 *   `raw`: return the Response itself (the caller reads the body).
 * @returns {Promise<any>}
 */
export async function request(method, url, opts = {}) {
  const { body, query, signal, noAuthRedirect = false, raw = false } = opts;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== '') qs.set(k, String(v));
    const s = qs.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers['X-Llamactl-Request'] = 'dashboard';
  const init = { method, headers, credentials: 'same-origin', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The server did not answer (' + (err && err.message ? err.message : err) + ')');
  }
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401 && !noAuthRedirect) unauthorized();
    throw error;
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) return res.json();
  return res.text();
}

/** Shorthands. */
export const api = {
  /** @param {string} url @param {Object} [query] @param {Object} [opts] */
  get: (url, query, opts) => request('GET', url, { ...opts, query }),
  /** @param {string} url @param {any} [body] @param {Object} [opts] */
  post: (url, body, opts) => request('POST', url, { ...opts, body }),
  /** @param {string} url @param {any} [body] @param {Object} [opts] */
  put: (url, body, opts) => request('PUT', url, { ...opts, body }),
  /** @param {string} url @param {Object} [opts] */
  del: (url, opts) => request('DELETE', url, opts),
};

/**
 * Runs an instance action (`start`, `stop`, `restart`) and returns the instance.
 * @param {string} name
 * @param {'start'|'stop'|'restart'} action
 * @returns {Promise<any>}
 */
export function instanceAction(name, action) {
  return api.post(path('instances', name, action));
}

let openapiCache = null;

/**
 * The OpenAPI document (fetched once).
 * @returns {Promise<any>}
 */
export function openapi() {
  if (!openapiCache) openapiCache = api.get('/api/v1/openapi.json').catch((e) => { openapiCache = null; throw e; });
  return openapiCache;
}
