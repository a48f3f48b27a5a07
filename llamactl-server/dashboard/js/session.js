// The dashboard session: `GET/POST/DELETE /api/v1/session` (an HttpOnly cookie set by the server).
import { api, ApiError } from './api.js';

/**
 * The session state. A 404 means a server without sessions: authentication is then off.
 * @returns {Promise<{auth_required: boolean, signed_in: boolean}>}
 */
export async function getSession() {
  try {
    const s = await api.get('/api/v1/session', null, { noAuthRedirect: true });
    return { auth_required: Boolean(s && s.auth_required), signed_in: Boolean(s && s.signed_in) };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { auth_required: false, signed_in: true };
    if (err instanceof ApiError && err.status === 401) return { auth_required: true, signed_in: false };
    throw err;
  }
}

/**
 * Signs in with a management key (throws an ApiError on a wrong key).
 * @param {string} key
 * @returns {Promise<void>}
 */
export async function signIn(key) {
  await api.post('/api/v1/session', { key }, { noAuthRedirect: true });
}

/** Signs out (the server drops the cookie). */
export async function signOut() {
  await api.del('/api/v1/session', { noAuthRedirect: true });
}
