//! The dashboard over HTTP: its files at `/` with their security headers, the sign-in that
//! trades a management key for a session cookie, what the cookie opens and what it does not
//! (cross-site state changes, an ended session, inference keys), and a restart in between.
#![allow(clippy::unwrap_used)]

use llamactl_core::ApiKeyStore;
use llamactl_core::SqliteDatabase;
use llamactl_core::db::{NewApiKey, PermissionMode};
use llamactl_server::auth::keys;
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, http};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

/// Signs in with `key`; the answer's status and the cookie it set (`name=value`).
async fn sign_in(base: &str, key: &str) -> (StatusCode, Option<String>, Option<String>) {
    let answer = http()
        .post(format!("{base}/api/v1/session"))
        .header("x-llamactl-request", "dashboard")
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    let set = answer.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_owned());
    let cookie = set.as_deref().map(|s| s.split(';').next().unwrap().to_owned());
    (answer.status(), cookie, set)
}

fn with_cookie(base: &str, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    http().request(method, format!("{base}{path}")).header(header::COOKIE, cookie)
}

#[tokio::test]
async fn the_dashboard_is_served_at_the_root_with_a_strict_policy() {
    let server = TestServer::start(|_| {}).await;
    let page = http().get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html");
    assert_eq!(page.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let etag = page.headers()[header::ETAG].clone();
    let html = page.text().await.unwrap();
    assert!(html.contains("type=\"module\""), "the page loads its modules");
    assert!(!html.contains("<script>") && !html.contains("style=\""), "nothing inline: the policy would block it");
    let again = http().get(format!("{}/", server.base)).header(header::IF_NONE_MATCH, etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged file is revalidated, not sent again");
    // Every file the page names is there.
    for reference in
        html.split(['"', '\'']).filter(|s| s.ends_with(".js") || s.ends_with(".css") || s.ends_with(".svg"))
    {
        let path = if reference.starts_with('/') { reference.to_owned() } else { format!("/{reference}") };
        let file = http().get(format!("{}{path}", server.base)).send().await.unwrap();
        assert_eq!(file.status(), 200, "{path}");
    }
    for missing in ["/nope.js", "/../Cargo.toml", "/js/../../Cargo.toml", "/TESTING.md"] {
        let answer = http().get(format!("{}{missing}", server.base)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{missing}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{missing}: the API's JSON 404");
    }
    let post = http().post(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(post.status(), 404, "only GET and HEAD read files");
}

#[tokio::test]
async fn the_dashboard_can_be_turned_off() {
    let server = TestServer::start(|c| c.server.enable_dashboard = false).await;
    let page = http().get(format!("{}/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn a_management_key_signs_in_and_the_cookie_manages_until_sign_out() {
    let server = TestServer::start(|_| {}).await;
    let base = &server.base;
    let status: Value = http().get(format!("{base}/api/v1/session")).send().await.unwrap().json().await.unwrap();
    assert_eq!(status, json!({"auth_required": true, "signed_in": false}));

    let (wrong, cookie, _) = sign_in(base, "not-the-key").await;
    assert_eq!((wrong, cookie), (StatusCode::UNAUTHORIZED, None), "a wrong key sets no cookie");

    let (ok, cookie, set) = sign_in(base, MANAGEMENT_KEY).await;
    assert_eq!(ok, StatusCode::NO_CONTENT);
    let (cookie, set) = (cookie.unwrap(), set.unwrap());
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Secure"), "plain http: a Secure cookie would not come back");
    let status: Value =
        with_cookie(base, Method::GET, "/api/v1/session", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["signed_in"], true);

    let list = with_cookie(base, Method::GET, "/api/v1/instances", &cookie).send().await.unwrap();
    assert_eq!(list.status(), 200, "the cookie opens the management API");
    let create = |headers: &[(&str, &str)]| {
        let mut request = with_cookie(base, Method::POST, "/api/v1/instances/by-cookie", &cookie)
            .json(&json!({"backend_type": "custom", "backend_options": {"command": "/bin/true"}}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let bare = create(&[]).await.unwrap();
    assert_eq!(bare.status(), 403, "a state change by cookie needs the dashboard's header");
    let foreign = create(&[("x-llamactl-request", "dashboard"), ("origin", "http://evil.example")]).await.unwrap();
    assert_eq!(foreign.status(), 403, "and the server's own origin");
    let own_origin = base.clone();
    let made = create(&[("x-llamactl-request", "dashboard"), ("origin", &own_origin)]).await.unwrap();
    assert_eq!(made.status(), 201, "{}", made.text().await.unwrap());
    let missing = server.manage(Method::GET, "/api/v1/instances/by-cookie").send().await.unwrap();
    assert_eq!(missing.status(), 200, "the instance the cookie created exists");

    // The cookie also opens the inference routes (the playground).
    let models = with_cookie(base, Method::GET, "/v1/models", &cookie).send().await.unwrap();
    assert_eq!(models.status(), 200);

    // A restart keeps the session.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let base = &server.base;
    let after_restart = with_cookie(base, Method::GET, "/api/v1/instances", &cookie).send().await.unwrap();
    assert_eq!(after_restart.status(), 200, "signed in across a restart");

    let out = with_cookie(base, Method::DELETE, "/api/v1/session", &cookie)
        .header("x-llamactl-request", "dashboard")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"), "the cookie is cleared");
    let refused = with_cookie(base, Method::GET, "/api/v1/instances", &cookie).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a signed-out cookie opens nothing");
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("session has ended"), "{body}");
}

#[tokio::test]
async fn an_inference_key_cannot_sign_in_and_a_changed_key_ends_its_sessions() {
    let server = TestServer::start(|_| {}).await;
    let db = SqliteDatabase::open_shared(server.dir.path().join("llamactl.db")).await.unwrap();
    let key = keys::generate();
    db.create_api_key(&NewApiKey {
        name: "inference".into(),
        user_id: "system".into(),
        lookup_id: key.lookup_id.clone(),
        sha256: key.sha256.clone(),
        permission_mode: PermissionMode::AllowAll,
        expires_at: None,
        rights: vec![],
    })
    .await
    .unwrap();
    let (status, cookie, _) = sign_in(&server.base, &key.secret).await;
    assert_eq!((status, cookie), (StatusCode::FORBIDDEN, None));

    let (_, cookie, _) = sign_in(&server.base, MANAGEMENT_KEY).await;
    let cookie = cookie.unwrap();
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |c| c.auth.management_keys = vec!["a-new-management-key".into()]).await;
    let refused = with_cookie(&server.base, Method::GET, "/api/v1/instances", &cookie).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the key that opened the session is no longer a management key");
}

#[tokio::test]
async fn without_management_auth_no_sign_in_is_needed() {
    let server = TestServer::start(|c| c.auth.require_management_auth = false).await;
    let status: Value =
        http().get(format!("{}/api/v1/session", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status, json!({"auth_required": false, "signed_in": true}));
}

#[tokio::test]
async fn invalid_options_name_their_field_in_the_error_body() {
    let server = TestServer::start(|_| {}).await;
    let answer = server
        .manage(Method::POST, "/api/v1/instances/bad-port")
        .json(&json!({"backend_type": "llama_cpp", "backend_options": {"model": "/m.gguf", "port": "eighty"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_options");
    assert_eq!(body["field"], "backend_options.port", "{body}");
}

#[tokio::test]
async fn a_missing_backend_program_is_a_problem_named_with_its_setting() {
    let server = TestServer::start(|c| c.backends.llama_cpp.command = Some("/nonexistent/llama-server".into())).await;
    let info: Value = server.manage(Method::GET, "/api/v1/system/info").send().await.unwrap().json().await.unwrap();
    let problems = info["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{info}");
    assert_eq!(problems[0]["looked_for"], "/nonexistent/llama-server");
    assert!(problems[0]["setting"].as_str().unwrap().contains("backends.llama-cpp.command"), "{info}");
    let llama = info["backends"].as_array().unwrap().iter().find(|b| b["backend"] == "llama_cpp").unwrap();
    assert_eq!(llama["path"], Value::Null);
}
