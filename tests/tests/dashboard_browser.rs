//! The dashboard's session in a real Chromium (over WebDriver) against a real server: the
//! cookie after sign-out, and a cross-site request that carries the cookie.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_tests::browser::{session_cookie, signed_in};
use llamactl_tests::server::{TestServer, create_instance, get_json, http};
use reqwest::header;
use serde_json::json;

#[tokio::test]
async fn signed_out_the_cookie_opens_nothing() {
    let server = TestServer::start(|_| {}).await;
    let browser = signed_in(&server.base).await;
    let cookie = session_cookie(&browser).await;
    let open = http().get(format!("{}/api/v1/instances", server.base)).header(header::COOKIE, &cookie).send().await;
    assert_eq!(open.unwrap().status(), 200, "signed in, the cookie manages");
    browser.click("signout").await;
    browser.find("signin-form").await;
    let refused = http().get(format!("{}/api/v1/instances", server.base)).header(header::COOKIE, &cookie).send().await;
    assert_eq!(refused.unwrap().status(), 401, "signed out, the same cookie is refused");
    browser.close().await;
}

#[tokio::test]
async fn a_cross_site_post_with_the_cookie_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let options = json!({"backend_type": "custom", "backend_options": {"command": llamactl_tests::test_backend(),
        "args": ["--host", "{host}", "--port", "{port}"]}});
    create_instance(&server.base, "victim", &options).await;
    let browser = signed_in(&server.base).await;
    // Another origin (another port of the same host: the same site, so the strict cookie goes
    // along) whose page asks the API to start the instance: a script's fetch with credentials,
    // then a form. Both are requests a browser sends without asking the API (no preflight).
    let target = format!("{}/api/v1/instances/victim/start", server.base);
    let page = format!(
        r#"<!doctype html><form method="post" action="{target}"></form>
<script>
fetch("{target}", {{method: "POST", credentials: "include", mode: "no-cors"}})
  .finally(() => {{ document.title = "fetched"; document.forms[0].submit(); }});
</script>"#
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let app =
        axum::Router::new().route("/", axum::routing::get(move || std::future::ready(axum::response::Html(page))));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    browser.client.goto(&format!("{other}/")).await.unwrap();
    // The form's post navigates to the API's answer.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !browser.client.current_url().await.unwrap().as_str().starts_with(&server.base) {
        assert!(std::time::Instant::now() < deadline, "the form was not posted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = browser.client.source().await.unwrap();
    assert!(answer.contains("X-Llamactl-Request"), "the refusal says why: {answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = get_json(&server.base, "/api/v1/instances/victim").await;
    assert_eq!(victim["status"], "stopped", "a cross-site request started the instance: {victim}");
    assert_eq!(victim["desired_state"], "stopped", "{victim}");
    browser.close().await;
}
