//! Dashboard sessions: a management key exchanged once for a random token kept in an HttpOnly
//! cookie. Only the token's SHA-256 is stored, with the digest of the key that opened it and
//! its expiry, in `sessions.json` in the data folder, so a restart of the server keeps people
//! signed in and a signed-out token stays refused. A session ends at its expiry, at sign-out,
//! or when the key that opened it is no longer a management key.
//!
//! A request authenticated by the cookie alone could be sent by another site the browser has
//! open: state-changing requests must therefore carry [`REQUEST_HEADER`] (which a cross-site
//! form cannot add, and a cross-site script only after a CORS preflight that is not granted)
//! and, when they carry an `Origin`, come from the server's own origin
//! ([`cross_site_refusal`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{HeaderMap, Method, header};
use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::keys;

/// The session cookie's name.
pub const COOKIE: &str = "llamactl_session";
/// The header a state-changing request authenticated by the cookie must carry.
pub const REQUEST_HEADER: &str = "x-llamactl-request";
/// Sessions kept at most; the oldest is dropped past it.
const MOST_SESSIONS: usize = 1_000;

/// A failure to keep the sessions on disk.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the sessions file {file}: {source}")]
pub struct SessionError {
    file: PathBuf,
    source: std::io::Error,
}

/// One open session as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// Hex SHA-256 of the management key that opened it.
    key: String,
    expires_at: DateTime<Utc>,
}

/// A session just opened: the token for the cookie, and when it ends.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie's value (shown to no one else; only its digest is kept).
    pub token: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// The open sessions (see the module's documentation).
#[derive(Debug)]
pub struct Sessions {
    file: Option<PathBuf>,
    lifetime: Duration,
    /// Digest of the token → its entry.
    open: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Sessions kept in `file` (read now; unreadable or malformed: none, with a warning), each
    /// lasting `lifetime`. `None`: in memory only (tests).
    pub fn open(file: Option<PathBuf>, lifetime: Duration) -> Self {
        let now = Utc::now();
        let mut open: HashMap<String, Entry> = file.as_deref().map(read_file).unwrap_or_default();
        open.retain(|_, entry| entry.expires_at > now);
        Self { file, lifetime, open: Mutex::new(open) }
    }

    /// How long a session lasts.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Opens a session for the holder of the management key whose SHA-256 is `key_digest`.
    pub fn create(&self, key_digest: &[u8; 32]) -> Result<NewSession, SessionError> {
        let bytes: [u8; 32] = rand::rng().random();
        let token = hex::encode(bytes);
        let lifetime = chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::days(1));
        let expires_at = Utc::now() + lifetime;
        let mut open = self.lock();
        let now = Utc::now();
        open.retain(|_, entry| entry.expires_at > now);
        while open.len() >= MOST_SESSIONS {
            let Some(oldest) = open.iter().min_by_key(|(_, e)| e.expires_at).map(|(k, _)| k.clone()) else { break };
            open.remove(&oldest);
        }
        open.insert(keys::sha256_hex(&token), Entry { key: hex::encode(key_digest), expires_at });
        self.save(&open)?;
        Ok(NewSession { token, expires_at })
    }

    /// The digest of the management key that opened the session of `token`, if it is open
    /// and unexpired.
    pub fn key_of(&self, token: &str) -> Option<[u8; 32]> {
        let open = self.lock();
        let entry = open.get(&keys::sha256_hex(token))?;
        if entry.expires_at <= Utc::now() {
            return None;
        }
        keys::parse_sha256_hex(&entry.key)
    }

    /// Ends the session of `token`; whether it was open.
    pub fn end(&self, token: &str) -> Result<bool, SessionError> {
        let mut open = self.lock();
        let ended = open.remove(&keys::sha256_hex(token)).is_some();
        if ended {
            self.save(&open)?;
        }
        Ok(ended)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the sessions to a temporary file beside the real one, then renames it over it.
    fn save(&self, open: &HashMap<String, Entry>) -> Result<(), SessionError> {
        let Some(file) = &self.file else { return Ok(()) };
        let failed = |source| SessionError { file: file.clone(), source };
        let text = serde_json::to_vec(open).map_err(|e| failed(std::io::Error::other(e)))?;
        let partial = file.with_extension("json.partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&partial).map_err(failed)?;
        out.write_all(&text).and_then(|()| out.sync_all()).map_err(failed)?;
        std::fs::rename(&partial, file).map_err(failed)
    }
}

fn read_file(file: &Path) -> HashMap<String, Entry> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(file = %file.display(), %error, "the sessions file is not readable; everyone signs in again");
            HashMap::new()
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(error) => {
            tracing::warn!(file = %file.display(), %error, "cannot read the sessions file; everyone signs in again");
            HashMap::new()
        }
    }
}

/// The session token of the request's `Cookie` header, if it has one.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Why a request authenticated by the session cookie may not go on, if it may not: a
/// state-changing method without [`REQUEST_HEADER`], or with an `Origin` other than the
/// server's own (`Host`, with the scheme the request came by).
pub fn cross_site_refusal(method: &Method, headers: &HeaderMap, https: bool) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if !headers.contains_key(REQUEST_HEADER) {
        return Some("a request signed in by the dashboard's cookie must carry the X-Llamactl-Request header");
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (None, _) => None,
        (Some(origin), Some(host)) if origin == format!("{}://{host}", if https { "https" } else { "http" }) => None,
        (Some(_), _) => Some("a request signed in by the dashboard's cookie must come from the dashboard's origin"),
    }
}

/// Whether the request came over https (directly, or through a proxy that says so).
pub fn came_by_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// The `Set-Cookie` value that stores `token` for `lifetime` (`Secure` over https).
pub fn set_cookie(token: &str, lifetime: Duration, https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", lifetime.as_secs())
}

/// The `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(https: bool) -> String {
    let secure = if https { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_session_survives_a_restart_and_ends_at_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sessions.json");
        let key = keys::sha256("llamactl-mgmt-test");
        let session = Sessions::open(Some(file.clone()), Duration::from_secs(3600)).create(&key).unwrap();
        let reopened = Sessions::open(Some(file.clone()), Duration::from_secs(3600));
        assert_eq!(reopened.key_of(&session.token), Some(key));
        assert!(!std::fs::read_to_string(&file).unwrap().contains(&session.token), "only the digest is kept");
        assert!(reopened.end(&session.token).unwrap());
        assert_eq!(Sessions::open(Some(file), Duration::from_secs(3600)).key_of(&session.token), None);
    }

    #[test]
    fn an_expired_or_unknown_token_opens_nothing() {
        let sessions = Sessions::open(None, Duration::ZERO);
        let session = sessions.create(&keys::sha256("k")).unwrap();
        assert_eq!(sessions.key_of(&session.token), None);
        assert_eq!(sessions.key_of("0000"), None);
        assert!(!sessions.end("0000").unwrap());
    }

    #[test]
    fn a_malformed_sessions_file_signs_everyone_out_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sessions.json");
        std::fs::write(&file, "{not json").unwrap();
        let sessions = Sessions::open(Some(file), Duration::from_secs(60));
        assert!(sessions.create(&keys::sha256("k")).is_ok());
    }

    #[test]
    fn the_token_is_found_among_other_cookies() {
        let h = headers(&[("cookie", "theme=dark; llamactl_session=abc123"), ("cookie", "x=1")]);
        assert_eq!(token_of(&h), Some("abc123"));
        assert_eq!(token_of(&headers(&[("cookie", "llamactl_session=")])), None);
        assert_eq!(token_of(&headers(&[("cookie", "other_llamactl_session=abc")])), None);
    }

    #[test]
    fn state_changes_need_the_header_and_the_own_origin() {
        let post = Method::POST;
        assert!(cross_site_refusal(&Method::GET, &headers(&[]), false).is_none());
        assert!(cross_site_refusal(&post, &headers(&[("host", "h:1")]), false).is_some());
        let own = headers(&[("host", "h:1"), ("x-llamactl-request", "dashboard"), ("origin", "http://h:1")]);
        assert!(cross_site_refusal(&post, &own, false).is_none());
        assert!(cross_site_refusal(&post, &own, true).is_some(), "the scheme is part of the origin");
        let other = headers(&[("host", "h:1"), ("x-llamactl-request", "dashboard"), ("origin", "http://h:2")]);
        assert!(cross_site_refusal(&Method::DELETE, &other, false).is_some());
        let no_origin = headers(&[("host", "h:1"), ("x-llamactl-request", "dashboard")]);
        assert!(cross_site_refusal(&post, &no_origin, false).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let plain = set_cookie("t", Duration::from_secs(60), false);
        assert_eq!(plain, "llamactl_session=t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(set_cookie("t", Duration::from_secs(60), true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
        assert!(came_by_https(&headers(&[("x-forwarded-proto", "https")])));
        assert!(!came_by_https(&headers(&[])));
    }
}
