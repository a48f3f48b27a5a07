//! The dashboard in a real Chromium (over WebDriver) against a real server and a real
//! llama-server: sign-in, the create form with a field error, live status and logs, stop,
//! restart and delete, keys shown once, and the playground's stream. Elements are found by
//! the names `llamactl-server/dashboard/TESTING.md` lists.
#![allow(clippy::unwrap_used)]

use llamactl_tests::browser::{Browser, row, shown_status, signed_in};
use llamactl_tests::server::{MANAGEMENT_KEY, TestServer, create_instance, get_json, http};
use llamactl_tests::tiny_gguf;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_wrong_key_is_refused_and_the_right_one_signs_in() {
    let server = TestServer::start(|_| {}).await;
    let browser = Browser::start().await;
    browser.client.goto(&format!("{}/", server.base)).await.unwrap();
    browser.fill("[data-test=\"signin-key\"]", "not-the-key").await;
    browser.click("signin-submit").await;
    let error = browser.wait_text("[data-test=\"signin-error\"]", |t| !t.is_empty()).await;
    assert!(error.to_lowercase().contains("not a management key"), "{error}");
    browser.fill("[data-test=\"signin-key\"]", MANAGEMENT_KEY).await;
    browser.click("signin-submit").await;
    browser.click("nav-instances").await;
    let empty = browser.wait_text("[data-test=\"instances-empty\"]", |t| !t.is_empty()).await;
    assert!(empty.to_lowercase().contains("create"), "the empty page says how to begin: {empty}");
    browser.close().await;
}

#[tokio::test]
async fn an_instance_is_created_started_followed_stopped_restarted_and_deleted() {
    let server = TestServer::start(|_| {}).await;
    let browser = signed_in(&server.base).await;
    browser.client.goto(&format!("{}/#/create", server.base)).await.unwrap();
    browser.fill("[data-field=\"name\"]", "tiny").await;
    browser
        .eval(
            "(() => { const s = document.querySelector('[data-field=\"backend_type\"]'); s.value = 'llama_cpp'; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
        )
        .await;
    browser.fill("[data-field=\"backend_options.model\"]", &tiny_gguf().display().to_string()).await;
    // A port no TCP socket can have: the server names the field, the form shows it there.
    browser.fill("[data-field=\"backend_options.port\"]", "70000").await;
    browser.click("form-submit").await;
    let error =
        browser.wait_text("[data-test=\"field-error\"][data-field=\"backend_options.port\"]", |t| !t.is_empty()).await;
    assert!(error.contains("port") || error.contains("65535") || error.contains("u16"), "{error}");
    let missing = server.manage(Method::GET, "/api/v1/instances/tiny").send().await.unwrap();
    assert_eq!(missing.status(), 404, "nothing was created from the bad form");

    browser.fill("[data-field=\"backend_options.port\"]", "").await;
    browser.click("form-submit").await;
    // The instance's page, then Start: `running` appears without a reload.
    browser.find("instance-status").await;
    browser.click("action-start").await;
    browser.wait_true(&format!("{}.includes('running')", shown_status("main"))).await;
    browser.wait_true("document.querySelectorAll('[data-test=\"log-line\"]').length > 0").await;
    let lines_before: u64 =
        browser.eval("document.querySelectorAll('[data-test=\"log-line\"]').length").await.as_u64().unwrap();
    // A request makes llama-server log: the new lines arrive live.
    let chat = http()
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    browser.wait_true(&format!("document.querySelectorAll('[data-test=\"log-line\"]').length > {lines_before}")).await;

    browser.click("action-stop").await;
    browser.wait_true(&format!("{}.includes('stopped')", shown_status("main"))).await;
    browser.click("action-restart").await;
    browser.wait_true(&format!("{}.includes('running')", shown_status("main"))).await;

    browser.click("nav-instances").await;
    browser.find_css(&row("tiny")).await;
    browser.wait_true(&format!("{}.includes('running')", shown_status(&row("tiny")))).await;
    // A change made elsewhere shows in the table by itself.
    server.manage(Method::POST, "/api/v1/instances/tiny/stop").send().await.unwrap();
    browser.wait_true(&format!("{}.includes('stopped')", shown_status(&row("tiny")))).await;
    browser.find_css(&format!("{} [data-test=\"action-delete\"]", row("tiny"))).await.click().await.unwrap();
    browser.click("confirm-ok").await;
    browser.wait_true(&format!("!document.querySelector('{}')", row("tiny").replace('\'', "\\'"))).await;
    let gone = server.manage(Method::GET, "/api/v1/instances/tiny").send().await.unwrap();
    assert_eq!(gone.status(), 404);
    browser.close().await;
}

#[tokio::test]
async fn a_new_key_is_shown_once_and_can_be_deleted() {
    let server = TestServer::start(|_| {}).await;
    let browser = signed_in(&server.base).await;
    browser.click("nav-keys").await;
    browser.click("key-create").await;
    browser.fill("[data-test=\"key-name\"]", "from-the-browser").await;
    browser.click("key-submit").await;
    let secret = browser.wait_text("[data-test=\"key-secret\"]", |t| t.starts_with("llamactl-")).await;
    // The key works, and the server keeps no copy of it to show again.
    let models = http().get(format!("{}/v1/models", server.base)).bearer_auth(secret.trim()).send().await.unwrap();
    assert_eq!(models.status(), 200);
    browser.client.refresh().await.unwrap();
    browser.find_css("[data-test=\"key-row\"][data-name=\"from-the-browser\"]").await;
    let source = browser.client.source().await.unwrap();
    assert!(!source.contains(secret.trim()), "the secret is shown once only");
    browser
        .find_css("[data-test=\"key-row\"][data-name=\"from-the-browser\"] [data-test=\"key-delete\"]")
        .await
        .click()
        .await
        .unwrap();
    browser.click("confirm-ok").await;
    browser.wait_true("!document.querySelector('[data-test=\"key-row\"][data-name=\"from-the-browser\"]')").await;
    let keys = get_json(&server.base, "/api/v1/auth/keys").await;
    assert_eq!(keys.as_array().unwrap().len(), 0, "{keys}");
    browser.close().await;
}

#[tokio::test]
async fn the_playground_streams_a_reply_from_llama_server() {
    let server = TestServer::start(|_| {}).await;
    let options =
        json!({"backend_type": "llama_cpp", "backend_options": {"model": tiny_gguf()}, "on_demand_start": true});
    create_instance(&server.base, "tiny", &options).await;
    let browser = signed_in(&server.base).await;
    browser.click("nav-playground").await;
    browser
        .wait_true("[...document.querySelectorAll('[data-test=\"pg-model\"] option')].some(o => o.value === 'tiny')")
        .await;
    browser.eval("(() => { const s = document.querySelector('[data-test=\"pg-model\"]'); s.value = 'tiny'; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()").await;
    browser.fill("[data-test=\"pg-input\"]", "Say something.").await;
    browser.click("pg-send").await;
    // The stopped instance starts on demand, then the reply streams in.
    let reply = browser.wait_text("[data-test=\"pg-reply\"]", |t| !t.trim().is_empty()).await;
    assert!(!reply.trim().is_empty());
    let ttft = browser.wait_text("[data-test=\"pg-ttft\"]", |t| t.contains("ms") || t.contains(" s")).await;
    assert!(!ttft.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn a_router_s_models_are_shown_and_loaded_and_unloaded_from_its_page() {
    let folder = llamactl_tests::router::models_folder();
    let server = TestServer::start(|_| {}).await;
    let options = llamactl_tests::router::router_options(folder.path(), 2, json!({}));
    create_instance(&server.base, "r", &options).await;
    let browser = signed_in(&server.base).await;
    browser.client.goto(&format!("{}/#/instances/r", server.base)).await.unwrap();
    browser.click("tab-models").await;
    // Stopped: Load starts the instance, then loads the model; the row follows the events.
    let model_row = |name: &str, status: &str| {
        format!(
            "document.querySelector('[data-test=\"router-model\"][data-name=\"{name}\"][data-status=\"{status}\"]') !== null"
        )
    };
    browser.wait_text("[data-test=\"router-models\"]", |t| t.contains("stopped")).await;
    let start = server.manage(Method::POST, "/api/v1/instances/r/start").send().await.unwrap();
    assert_eq!(start.status(), 200);
    browser.wait_true(&model_row("alpha", "unloaded")).await;
    browser.click_css("[data-test=\"router-model\"][data-name=\"alpha\"] [data-test=\"model-load\"]").await;
    browser.wait_true(&model_row("alpha", "loaded")).await;
    let alpha = llamactl_tests::router::sub_model(&server.base, "r", "alpha").await;
    assert_eq!(alpha["status"], "loaded", "the page's Load loaded it: {alpha}");
    // A load made elsewhere shows without a reload.
    let load = server.manage(Method::POST, "/api/v1/instances/r/models/beta/load").send().await.unwrap();
    assert_eq!(load.status(), 200);
    browser.wait_true(&model_row("beta", "loaded")).await;
    browser.click_css("[data-test=\"router-model\"][data-name=\"alpha\"] [data-test=\"model-unload\"]").await;
    browser.wait_true(&model_row("alpha", "unloaded")).await;
    let reason = browser
        .wait_text("[data-test=\"router-model\"][data-name=\"alpha\"] [data-test=\"model-reason\"]", |t| !t.is_empty())
        .await;
    assert_eq!(reason, "user unload");
    browser.close().await;
}
