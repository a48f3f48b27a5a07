//! Every route of the OpenAPI document, called with no key, a wrong key, an expired key, an
//! inference key and a management key: only the right ones get through.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use llamactl_core::db::{NewApiKey, PermissionMode};
use llamactl_core::{Database, SqliteDatabase};
use llamactl_server::auth::keys;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, http};
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
    let db = SqliteDatabase::open(server.dir.path().join("llamactl.db")).await.unwrap();
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
                let mut request =
                    http().request(method.clone(), format!("{}{path}", server.base)).timeout(Duration::from_secs(30));
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
