//! Every route of the OpenAPI document, called with no key, a wrong key, an expired key, an
//! inference key and a management key: only the right ones get through.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use llamactl_core::db::{NewApiKey, PermissionMode};
use llamactl_core::{ApiKeyStore, SqliteDatabase};
use llamactl_server::auth::keys;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, get_json, http};
use llamactl_tests::test_backend;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Management,
    Inference,
}

async fn stored_key(db: &SqliteDatabase, expires_in: i64) -> String {
    let key = keys::generate();
    db.create_api_key(&NewApiKey {
        name: format!("expires in {expires_in}"),
        user_id: "system".into(),
        lookup_id: key.lookup_id,
        sha256: key.sha256,
        permission_mode: PermissionMode::AllowAll,
        expires_at: Some(Utc::now() + chrono::Duration::seconds(expires_in)),
        rights: vec![],
    })
    .await
    .unwrap();
    key.secret
}

#[tokio::test]
async fn every_route_lets_in_exactly_the_keys_it_should() {
    let server = TestServer::start(|_| {}).await;
    let options = json!({"backend_type": "custom", "backend_options": {"command": test_backend(),
        "args": ["--host", "{host}", "--port", "{port}"]}});
    create_instance(&server.base, "probe", &options).await;
    let db = SqliteDatabase::open_shared(server.dir.path().join("llamactl.db")).await.unwrap();
    let inference = stored_key(&db, 3600).await;
    let expired = stored_key(&db, -60).await;
    let key_id = db.list_api_keys().await.unwrap()[0].id;

    let doc: Value = serde_json::from_str(&llamactl_server::api::openapi().to_pretty_json().unwrap()).unwrap();
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .map(|s| s.iter().flat_map(|r| r.as_object().unwrap().keys().map(String::as_str)).collect())
                .unwrap_or_default();
            let access = if schemes.is_empty() {
                Access::Public
            } else if schemes.contains(&"inference_key") {
                Access::Inference
            } else {
                Access::Management
            };
            let destructive = method == "delete";
            let path = template
                .replace("{name}", if destructive { "ghost" } else { "probe" })
                .replace("{id}", &if destructive { "999999".to_owned() } else { key_id.to_string() })
                .replace("{model}", "m")
                .replace("{path}", "echo");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let call = |key: Option<&str>| {
                // The dashboard's header: the session routes refuse state changes without it.
                let mut request = http()
                    .request(method.clone(), format!("{}{path}", server.base))
                    .header("x-llamactl-request", "dashboard")
                    .timeout(Duration::from_secs(30));
                if matches!(method, Method::POST | Method::PUT) {
                    request = request.json(&json!({"model": "probe", "command": "llama-server -m x", "name": "n", "permission_mode": "allow_all", "backend_type": "custom", "backend_options": {"command": "/bin/true"}}));
                }
                if let Some(key) = key {
                    request = request.bearer_auth(key);
                }
                async move { request.send().await.unwrap().status().as_u16() }
            };
            let refused = |status: u16| status == 401 || status == 403;
            let none = call(None).await;
            let wrong = call(Some("llamactl-0000000000000000000000000000000000000000000000000000000000000000")).await;
            let old = call(Some(&expired)).await;
            let as_inference = call(Some(&inference)).await;
            let as_management = call(Some(MANAGEMENT_KEY)).await;
            let label = format!("{method} {path}");
            match access {
                Access::Public => {
                    for status in [none, wrong, old, as_inference, as_management] {
                        assert!(!refused(status), "{label} is public but answered {status}");
                    }
                }
                Access::Management => {
                    assert_eq!((none, wrong, old), (401, 401, 401), "{label}: anonymous, wrong and expired keys");
                    assert_eq!(as_inference, 403, "{label}: an inference key cannot manage");
                    assert!(!refused(as_management), "{label}: a management key got {as_management}");
                }
                Access::Inference => {
                    assert_eq!((none, wrong, old), (401, 401, 401), "{label}: anonymous, wrong and expired keys");
                    assert!(!refused(as_inference), "{label}: an inference key got {as_inference}");
                    assert!(
                        !refused(as_management),
                        "{label}: management keys work on inference routes, got {as_management}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 35, "only {checked} operations in the document");
}

#[tokio::test]
async fn authentication_can_be_turned_off_per_side() {
    let server = TestServer::start(|c| {
        c.auth.require_inference_auth = false;
    })
    .await;
    let models = http().get(format!("{}/v1/models", server.base)).send().await.unwrap();
    assert_eq!(models.status().as_u16(), 200, "inference open");
    let instances = http().get(format!("{}/api/v1/instances", server.base)).send().await.unwrap();
    assert_eq!(instances.status().as_u16(), 401, "management still protected");
    let body: Value = instances.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
}

/// The tables of a Go llamactl v0.20 database: its `key_permissions` has no rights columns.
const GO_V0_20_SCHEMA: &str = r#"
CREATE TABLE schema_migrations (version uint64, dirty bool);
INSERT INTO schema_migrations VALUES (1, 0);
CREATE TABLE instances (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK(status IN ('stopped', 'running', 'failed', 'restarting', 'shutting_down')) DEFAULT 'stopped',
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, options_json TEXT NOT NULL, owner_user_id TEXT NULL);
CREATE TABLE api_keys (id INTEGER PRIMARY KEY AUTOINCREMENT, key_hash TEXT NOT NULL, name TEXT NOT NULL,
    user_id TEXT NOT NULL, permission_mode TEXT NOT NULL DEFAULT 'per_instance', expires_at INTEGER NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_used_at INTEGER NULL);
CREATE TABLE key_permissions (key_id INTEGER NOT NULL, instance_id INTEGER NOT NULL,
    PRIMARY KEY (key_id, instance_id),
    FOREIGN KEY (key_id) REFERENCES api_keys (id) ON DELETE CASCADE,
    FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE);
"#;

/// What later Go versions add.
const GO_LATER_COLUMNS: &str = "ALTER TABLE key_permissions ADD COLUMN can_start INTEGER NOT NULL DEFAULT 1; \
    ALTER TABLE key_permissions ADD COLUMN can_evict INTEGER NOT NULL DEFAULT 1;";

/// A data folder holding a Go llamactl database: instances `mine` and `theirs` (on-demand test
/// backends) and a per-instance key for `mine`, stored as the Go llamactl stores it (Argon2id).
async fn go_data_folder(later_columns: bool) -> (tempfile::TempDir, String) {
    use argon2::password_hash::PasswordHasher;
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let secret = keys::generate().secret;
    // Small Argon2 parameters keep the test fast; the PHC string carries them.
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = hasher.hash_password(secret.as_bytes()).unwrap().to_string();
    let options = json!({"backend_type": "custom", "on_demand_start": true,
        "backend_options": {"command": test_backend(), "args": ["--host", "{host}", "--port", "{port}"]}})
    .to_string();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("llamactl.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(GO_V0_20_SCHEMA).execute(&mut conn).await.unwrap();
    if later_columns {
        sqlx::raw_sql(GO_LATER_COLUMNS).execute(&mut conn).await.unwrap();
    }
    for name in ["mine", "theirs"] {
        sqlx::query("INSERT INTO instances (name, created_at, updated_at, options_json) VALUES (?, 1, 1, ?)")
            .bind(name)
            .bind(&options)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO api_keys (key_hash, name, user_id, permission_mode, created_at, updated_at) VALUES (?, 'go', 'system', 'per_instance', 1, 1)")
        .bind(&phc)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO key_permissions (key_id, instance_id) VALUES (1, 1)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    (dir, secret)
}

#[tokio::test]
async fn per_instance_keys_of_go_v0_20_and_later_databases_work() {
    for later_columns in [false, true] {
        let schema = if later_columns { "later Go" } else { "Go v0.20" };
        let (dir, secret) = go_data_folder(later_columns).await;
        let server = TestServer::start_in(dir, |_| {}).await;
        let chat = |model: &'static str| {
            http()
                .post(format!("{}/v1/chat/completions", server.base))
                .bearer_auth(&secret)
                .timeout(Duration::from_secs(60))
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
        };
        let mine = chat("mine").await.unwrap();
        let status = mine.status().as_u16();
        assert_eq!(
            status,
            200,
            "{schema}: the key may use its instance (and start it): {}",
            mine.text().await.unwrap()
        );
        let theirs = chat("theirs").await.unwrap();
        assert_eq!(theirs.status().as_u16(), 403, "{schema}: not another instance");

        // The key's rights as the management API shows them, and a key created there now.
        let keys = get_json(&server.base, "/api/v1/auth/keys").await;
        let rights = get_json(&server.base, &format!("/api/v1/auth/keys/{}/permissions", keys[0]["id"])).await;
        assert_eq!(rights[0]["instance_name"], "mine", "{schema}: {rights}");
        assert_eq!((&rights[0]["can_infer"], &rights[0]["can_start"]), (&json!(true), &json!(true)), "{schema}");
        let created = server
            .manage(Method::POST, "/api/v1/auth/keys")
            .json(&json!({"name": "new", "permission_mode": "per_instance",
                "instance_permissions": [{"instance_name": "theirs", "can_infer": true, "can_start": false}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 201, "{schema}");
        let created: Value = created.json().await.unwrap();
        let rights = get_json(&server.base, &format!("/api/v1/auth/keys/{}/permissions", created["id"])).await;
        assert_eq!(rights[0]["instance_name"], "theirs", "{schema}: {rights}");
        assert_eq!((&rights[0]["can_infer"], &rights[0]["can_start"]), (&json!(true), &json!(false)), "{schema}");
        // That key may use "theirs" but not start it: stopped, it is refused with the reason.
        let refused = http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth(created["key_secret"].as_str().unwrap())
            .json(&json!({"model": "theirs", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{schema}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["message"], "instance theirs is stopped and this key may not start it", "{body}");
        server.stop().await;
    }
}
