//! Authentication: management keys (from configuration) and inference keys (created over the
//! API, stored hashed). Keys are read from `Authorization: Bearer`, `X-API-Key` or the
//! `api_key` query parameter; the proxy strips all three before forwarding.

pub mod keys;
mod middleware;
pub mod session;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::Utc;
use llamactl_core::ApiKeyStore;
use llamactl_core::db::{ApiKeyRecord, InstanceRights, PermissionMode};
use llamactl_core::manager::Rights;
use subtle::ConstantTimeEq;

pub use middleware::{AuthFailure, inference_auth, management_auth};

/// How long a verified key is trusted from memory before the database is asked again.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Write `last_used_at` at most this often per key.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Remembered digests of keys that failed the legacy check (bounded).
const FAILED_LEGACY_MEMORY: usize = 10_000;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Authentication is not required on this route.
    Open,
    /// A management key: everything is allowed.
    Management,
    /// An inference key.
    Inference(Arc<InferenceKey>),
}

/// A verified inference key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceKey {
    /// Row id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: PermissionMode,
    /// Rights per instance.
    pub rights: Vec<InstanceRights>,
}

impl InferenceKey {
    fn rights(&self, instance: &str) -> Option<&InstanceRights> {
        self.rights.iter().find(|r| r.instance == instance)
    }
}

impl Principal {
    /// What this caller may do with `instance`: send requests to it (`infer`), start it on
    /// demand (`start`), have other instances evicted to make room for it (`evict`). Management
    /// keys and open routes may do everything; an inference key what its mode and its rights
    /// on that instance say.
    pub fn rights(&self, instance: &str) -> Rights {
        match self {
            Self::Open | Self::Management => Rights::ALL,
            Self::Inference(key) if key.mode == PermissionMode::AllowAll => Rights::ALL,
            Self::Inference(key) => key
                .rights(instance)
                .map(|r| Rights { infer: r.can_infer, start: r.can_start, evict: r.can_evict })
                .unwrap_or(Rights::NONE),
        }
    }
}

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No key in the request.
    #[error("an API key is required (Authorization: Bearer <key>, X-API-Key or ?api_key=)")]
    Missing,
    /// A key is present but is not text (not UTF-8, or with control characters), so it cannot
    /// be any key; the field names where it was found.
    #[error("the API key in the {0} is not valid text (a key is UTF-8 without control characters)")]
    Malformed(&'static str),
    /// Not a key we know.
    #[error("invalid API key")]
    Invalid,
    /// A key we know, past its expiry.
    #[error("API key expired")]
    Expired,
    /// A valid key without the right for this route.
    #[error("{0}")]
    Forbidden(String),
    /// The key store failed.
    #[error("cannot verify the API key: {0}")]
    Unavailable(String),
    /// A session cookie that is not (or no longer) open: signed out, expired, or opened by a
    /// key that is no longer a management key.
    #[error("the dashboard session has ended: sign in again")]
    SessionEnded,
}

#[derive(Debug)]
struct Cached {
    /// The stored SHA-256 (`None` if it is not the lowercase hex of one: no key matches it).
    sha256: Option<[u8; 32]>,
    key: Arc<InferenceKey>,
    expires_at: Option<chrono::DateTime<Utc>>,
    loaded: Instant,
}

/// Verifies keys. Cheap to share.
#[derive(Debug)]
pub struct Authenticator {
    management: Vec<[u8; 32]>,
    require_management: bool,
    require_inference: bool,
    db: Arc<dyn ApiKeyStore>,
    cache: Mutex<HashMap<String, Cached>>,
    legacy_gate: tokio::sync::Mutex<()>,
    failed_legacy: Mutex<HashSet<[u8; 32]>>,
    touched: Mutex<HashMap<i64, Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_key(record: &ApiKeyRecord) -> InferenceKey {
    InferenceKey {
        id: record.id,
        name: record.name.clone(),
        mode: record.permission_mode,
        rights: record.rights.clone(),
    }
}

impl Authenticator {
    /// An authenticator for these management keys and requirements.
    pub fn new(
        management_keys: &[String],
        require_management: bool,
        require_inference: bool,
        db: Arc<dyn ApiKeyStore>,
    ) -> Self {
        Self {
            management: management_keys.iter().map(|k| keys::sha256(k)).collect(),
            require_management,
            require_inference,
            db,
            cache: Mutex::new(HashMap::new()),
            legacy_gate: tokio::sync::Mutex::new(()),
            failed_legacy: Mutex::new(HashSet::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// Whether management routes need a key.
    pub fn management_required(&self) -> bool {
        self.require_management
    }

    /// Whether inference routes need a key.
    pub fn inference_required(&self) -> bool {
        self.require_inference
    }

    /// Forgets cached keys (after a key was created or deleted).
    pub fn invalidate(&self) {
        lock(&self.cache).clear();
        lock(&self.failed_legacy).clear();
    }

    /// Whether `digest` is the SHA-256 of a management key.
    pub fn is_management(&self, digest: &[u8; 32]) -> bool {
        // Check every key, so timing does not tell which one matched.
        self.management.iter().fold(false, |found, m| found | bool::from(m.ct_eq(digest)))
    }

    /// Identifies the holder of `presented`: a management key, or a valid, unexpired
    /// inference key.
    ///
    /// The key is hashed once; a key verified in the last 30 s is checked against its
    /// cached digest without copying anything.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        let digest = keys::sha256(presented);
        if self.is_management(&digest) {
            return Ok(Principal::Management);
        }
        let Some(lookup) = keys::lookup_id(presented) else {
            return Err(AuthError::Invalid);
        };
        let cached = {
            let cache = lock(&self.cache);
            cache.get(lookup).filter(|c| c.loaded.elapsed() < CACHE_TTL).map(|c| verdict(c, &digest))
        };
        let verdict = match cached {
            Some(verdict) => verdict,
            None => match self.db.find_api_key(lookup).await.map_err(|e| AuthError::Unavailable(e.to_string()))? {
                Some(record) => {
                    let entry = Cached {
                        sha256: record.sha256.as_deref().and_then(keys::parse_sha256_hex),
                        key: Arc::new(to_key(&record)),
                        expires_at: record.expires_at,
                        loaded: Instant::now(),
                    };
                    let verdict = verdict(&entry, &digest);
                    lock(&self.cache).insert(lookup.to_owned(), entry);
                    verdict
                }
                None => return self.authenticate_legacy(presented, lookup, digest).await,
            },
        };
        let (key, expires_at) = verdict.ok_or(AuthError::Invalid)?;
        if expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(AuthError::Expired);
        }
        self.touch(key.id);
        Ok(Principal::Inference(key))
    }

    /// A key from the Go llamactl, stored as an Argon2id hash: verified once (one at a time,
    /// off the async threads), then given a SHA-256 token so later requests are cheap.
    async fn authenticate_legacy(
        &self,
        presented: &str,
        lookup: &str,
        digest_bytes: [u8; 32],
    ) -> Result<Principal, AuthError> {
        if lock(&self.failed_legacy).contains(&digest_bytes) {
            return Err(AuthError::Invalid);
        }
        let digest = hex::encode(digest_bytes);
        let _one_at_a_time = self.legacy_gate.lock().await;
        let legacy = self.db.legacy_api_keys().await.map_err(|e| AuthError::Unavailable(e.to_string()))?;
        for record in legacy {
            let Some(hash) = record.legacy_hash.clone() else { continue };
            let secret = presented.to_owned();
            let verified = tokio::task::spawn_blocking(move || verify_argon2(&secret, &hash)).await.unwrap_or(false);
            if verified {
                self.db
                    .set_api_key_token(record.id, lookup, &digest)
                    .await
                    .map_err(|e| AuthError::Unavailable(e.to_string()))?;
                tracing::info!(key = record.id, "legacy API key verified once and given a SHA-256 token");
                if record.expires_at.is_some_and(|t| t <= Utc::now()) {
                    return Err(AuthError::Expired);
                }
                self.touch(record.id);
                return Ok(Principal::Inference(Arc::new(to_key(&record))));
            }
        }
        let mut failed = lock(&self.failed_legacy);
        if failed.len() >= FAILED_LEGACY_MEMORY {
            failed.clear();
        }
        failed.insert(digest_bytes);
        Err(AuthError::Invalid)
    }

    fn touch(&self, id: i64) {
        let due = {
            let mut touched = lock(&self.touched);
            let due = touched.get(&id).is_none_or(|t| t.elapsed() >= TOUCH_EVERY);
            if due {
                touched.insert(id, Instant::now());
            }
            due
        };
        if due {
            let db = self.db.clone();
            tokio::spawn(async move {
                if let Err(error) = db.touch_api_key(id, Utc::now()).await {
                    tracing::warn!(key = id, %error, "cannot record API key use");
                }
            });
        }
    }
}

/// A cached key's answer to a presented key's digest: the key and its expiry if they match.
fn verdict(cached: &Cached, digest: &[u8; 32]) -> Option<(Arc<InferenceKey>, Option<chrono::DateTime<Utc>>)> {
    let matches = cached.sha256.as_ref().is_some_and(|stored| bool::from(stored.ct_eq(digest)));
    matches.then(|| (cached.key.clone(), cached.expires_at))
}

fn verify_argon2(secret: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;
    match PasswordHash::new(phc) {
        Ok(hash) => argon2::Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// The key a request carries: `Authorization: Bearer`, then `X-API-Key`, then `?api_key=`; the
/// first place that carries one decides (another scheme than Bearer does not count). `Ok(None)`
/// when there is none (or it is empty); [`AuthError::Malformed`] when it is not text, which a
/// client should hear instead of "a key is required".
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Result<Option<String>, AuthError> {
    let bearer = headers.get(axum::http::header::AUTHORIZATION).and_then(|value| {
        let bytes = value.as_bytes();
        let space = bytes.iter().position(|b| *b == b' ')?;
        bytes[..space].eq_ignore_ascii_case(b"bearer").then(|| (&bytes[space + 1..], "Authorization header"))
    });
    let header = || headers.get("x-api-key").map(|value| (value.as_bytes(), "X-API-Key header"));
    let (key, place) = match bearer.or_else(header) {
        Some((bytes, place)) => {
            (Cow::Borrowed(std::str::from_utf8(bytes).map_err(|_| AuthError::Malformed(place))?), place)
        }
        None => {
            let from_query = query.and_then(|q| {
                form_urlencoded::parse(q.as_bytes()).find(|(name, _)| name == "api_key").map(|(_, value)| value)
            });
            match from_query {
                Some(value) => (value, "api_key parameter"),
                None => return Ok(None),
            }
        }
    };
    let key = key.trim();
    // Percent-decoding (of the query) puts U+FFFD where bytes were not UTF-8.
    if key.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER) {
        return Err(AuthError::Malformed(place));
    }
    Ok((!key.is_empty()).then(|| key.to_owned()))
}

#[cfg(test)]
mod tests;
