use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};
use chrono::{Duration as ChronoDuration, Utc};
use llamactl_core::db::{InstanceRights, NewApiKey, PermissionMode};
use llamactl_core::{ApiKeyStore, Database, InstanceOptions, SqliteDatabase};

use super::*;

async fn db() -> Arc<SqliteDatabase> {
    let db = Arc::new(SqliteDatabase::open_in_memory().await.unwrap());
    let options = InstanceOptions::from_json(r#"{"backend_type":"vllm","backend_options":{"model":"m"}}"#).unwrap();
    db.create(&"a".parse().unwrap(), &options).await.unwrap();
    db.create(&"b".parse().unwrap(), &options).await.unwrap();
    db
}

async fn store_key(
    db: &SqliteDatabase,
    mode: PermissionMode,
    rights: Vec<InstanceRights>,
    expires: Option<i64>,
) -> String {
    let key = keys::generate();
    db.create_api_key(&NewApiKey {
        name: "k".into(),
        user_id: "system".into(),
        lookup_id: key.lookup_id,
        sha256: key.sha256,
        permission_mode: mode,
        expires_at: expires.map(|s| Utc::now() + ChronoDuration::seconds(s)),
        rights,
    })
    .await
    .unwrap();
    key.secret
}

fn rights(instance: &str, infer: bool, start: bool, evict: bool) -> InstanceRights {
    InstanceRights { instance: instance.into(), can_infer: infer, can_start: start, can_evict: evict }
}

#[tokio::test]
async fn management_keys_and_inference_keys_are_told_apart() {
    let db = db().await;
    let auth = Authenticator::new(&["mgmt-secret".into()], true, true, db.clone());
    assert!(matches!(auth.authenticate("mgmt-secret").await, Ok(Principal::Management)));
    assert_eq!(auth.authenticate("mgmt-secreT").await.unwrap_err(), AuthError::Invalid);

    let secret = store_key(&db, PermissionMode::PerInstance, vec![rights("a", true, false, true)], None).await;
    let Principal::Inference(key) = auth.authenticate(&secret).await.unwrap() else { panic!("not an inference key") };
    assert_eq!(key.rights.len(), 1);
    let principal = Principal::Inference(key);
    assert_eq!(principal.rights("a"), Rights { infer: true, start: false, evict: true });
    assert_eq!(principal.rights("b"), Rights::NONE);
    // A key of the right shape that is not stored, and one whose secret part differs.
    let forged = format!("{}{}", &secret[..secret.len() - 1], if secret.ends_with('0') { '1' } else { '0' });
    assert_eq!(auth.authenticate(&forged).await.unwrap_err(), AuthError::Invalid, "same lookup id, other secret");
    assert_eq!(auth.authenticate(&keys::generate().secret).await.unwrap_err(), AuthError::Invalid);
}

#[tokio::test]
async fn allow_all_keys_use_everything_and_expired_keys_nothing() {
    let db = db().await;
    let auth = Authenticator::new(&[], true, true, db.clone());
    let all = store_key(&db, PermissionMode::AllowAll, vec![], None).await;
    let principal = auth.authenticate(&all).await.unwrap();
    assert_eq!(principal.rights("a"), Rights::ALL);
    assert_eq!(principal.rights("b"), Rights::ALL);
    let expired = store_key(&db, PermissionMode::AllowAll, vec![], Some(-10)).await;
    assert_eq!(auth.authenticate(&expired).await.unwrap_err(), AuthError::Expired);
}

#[tokio::test]
async fn a_deleted_key_stops_working_once_the_cache_is_invalidated() {
    let db = db().await;
    let auth = Authenticator::new(&[], true, true, db.clone());
    let secret = store_key(&db, PermissionMode::AllowAll, vec![], None).await;
    auth.authenticate(&secret).await.unwrap();
    let id = db.list_api_keys().await.unwrap()[0].id;
    db.delete_api_key(id).await.unwrap();
    auth.invalidate();
    assert_eq!(auth.authenticate(&secret).await.unwrap_err(), AuthError::Invalid);
}

#[tokio::test]
async fn a_go_llamactl_key_is_verified_once_with_argon2_then_by_sha256() {
    use argon2::password_hash::PasswordHasher;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(SqliteDatabase::open(dir.path().join("db.sqlite")).await.unwrap());
    let secret = keys::generate().secret;
    // Small Argon2 parameters keep the test fast; the PHC string carries them.
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = hasher.hash_password(secret.as_bytes()).unwrap().to_string();
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("INSERT INTO api_keys (key_hash, name, user_id, permission_mode, created_at, updated_at) VALUES (?, 'go', 'system', 'allow_all', 1, 1)")
            .bind(&phc)
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let auth = Authenticator::new(&[], true, true, db.clone());
    assert!(matches!(auth.authenticate(&secret).await, Ok(Principal::Inference(_))));
    assert!(db.legacy_api_keys().await.unwrap().is_empty(), "the key got a SHA-256 token");
    let lookup = keys::lookup_id(&secret).unwrap();
    assert!(db.find_api_key(lookup).await.unwrap().is_some());
    // A wrong key of the same shape is refused, and remembered as refused.
    assert_eq!(auth.authenticate(&keys::generate().secret).await.unwrap_err(), AuthError::Invalid);
}

#[test]
fn keys_are_read_from_bearer_header_x_api_key_and_query() {
    let key = |headers: &HeaderMap, query: Option<&str>| presented_key(headers, query).unwrap();
    let mut headers = HeaderMap::new();
    assert_eq!(key(&headers, None), None);
    assert_eq!(key(&headers, Some("a=1&api_key=q%2Bk")).as_deref(), Some("q+k"));
    assert_eq!(key(&headers, Some("api_key=")), None, "an empty key is no key");
    headers.insert("x-api-key", HeaderValue::from_static("header-key"));
    assert_eq!(key(&headers, Some("api_key=q")).as_deref(), Some("header-key"));
    headers.insert("authorization", HeaderValue::from_static("bearer bearer-key"));
    assert_eq!(key(&headers, None).as_deref(), Some("bearer-key"));
    headers.insert("authorization", HeaderValue::from_static("Bearer  spaced-key\t"));
    assert_eq!(key(&headers, None).as_deref(), Some("spaced-key"), "surrounding blanks are not part of it");
    headers.insert("authorization", HeaderValue::from_static("Basic abc"));
    assert_eq!(key(&headers, None).as_deref(), Some("header-key"), "only Bearer counts");
    headers.insert("authorization", HeaderValue::from_bytes(b"Basic \xff").unwrap());
    assert_eq!(key(&headers, None).as_deref(), Some("header-key"), "another scheme is ignored, text or not");
}

#[test]
fn a_key_that_is_not_text_is_malformed_not_missing() {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap());
    headers.insert("x-api-key", HeaderValue::from_static("header-key"));
    let error = presented_key(&headers, None).unwrap_err();
    assert_eq!(error, AuthError::Malformed("Authorization header"), "the first place carrying a key decides");
    assert_eq!(
        error.to_string(),
        "the API key in the Authorization header is not valid text (a key is UTF-8 without control characters)"
    );

    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_bytes(b"\xff\xff").unwrap());
    assert_eq!(presented_key(&headers, None).unwrap_err(), AuthError::Malformed("X-API-Key header"));
    headers.insert("x-api-key", HeaderValue::from_static("a\tb"));
    assert_eq!(presented_key(&headers, None).unwrap_err(), AuthError::Malformed("X-API-Key header"));

    let headers = HeaderMap::new();
    for query in ["api_key=%FF%FE", "api_key=a%0Ab", "api_key=%00"] {
        assert_eq!(presented_key(&headers, Some(query)).unwrap_err(), AuthError::Malformed("api_key parameter"));
    }
    // UTF-8 is text: such a key is looked up (and is simply not a key anyone has).
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_bytes("clé".as_bytes()).unwrap());
    assert_eq!(presented_key(&headers, None).unwrap().as_deref(), Some("clé"));
}
