//! A real Chromium driven over WebDriver: Debian's `chromium` and `chromedriver` (provisioned
//! by `scripts/backends/provision.sh browser`), headless, one driver process per [`Browser`],
//! killed when it is dropped.
//!
//! Elements are found by their `data-test` names (`llamactl-server/dashboard/TESTING.md`).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A headless Chromium and the chromedriver that drives it.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    /// chromedriver's address.
    driver_url: String,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("driver", &self.driver.id()).finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a 1280×900 headless session.
    pub async fn start() -> Self {
        Self::start_sized(1280, 900).await
    }

    /// Starts chromedriver and opens a headless session with this window size.
    pub async fn start_sized(width: u32, height: u32) -> Self {
        let chromium = crate::provisioned("LLAMACTL_TEST_CHROMIUM");
        let chromedriver = crate::provisioned("LLAMACTL_TEST_CHROMEDRIVER");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(chromedriver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: the browsers it starts go down with it.
            .process_group(0)
            .spawn()
            .unwrap();
        let capabilities = json!({
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--disable-extensions", "--disable-background-networking",
                         format!("--window-size={width},{height}")],
            }
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut driver = Some(driver);
        while std::time::Instant::now() < deadline {
            match ClientBuilder::new(HttpConnector::new()).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => return Self { client, driver: driver.take().unwrap(), driver_url: url },
                Err(error) => last_error = Some(error.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(mut driver) = driver {
            kill_group(&mut driver);
        }
        panic!("no WebDriver session from chromedriver at {url}: {last_error:?}");
    }

    /// Waits for the element with `data-test="{name}"`.
    pub async fn find(&self, name: &str) -> Element {
        self.find_css(&format!("[data-test=\"{name}\"]")).await
    }

    /// Waits for the element matching `css`.
    pub async fn find_css(&self, css: &str) -> Element {
        match self.client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(error) => {
                let saved = self.save_failure("find").await;
                panic!("no element {css} within {PATIENCE:?}: {error}; {saved}")
            }
        }
    }

    /// Saves a screenshot of the page and its text, for a failing test; says where.
    pub async fn save_failure(&self, what: &str) -> String {
        let dir = std::env::temp_dir().join("llamactl-dashboard-failures");
        let _ = std::fs::create_dir_all(&dir);
        let stamp = format!("{}-{what}-{}", std::process::id(), chrono::Utc::now().format("%H%M%S%3f"));
        let shot = dir.join(format!("{stamp}.png"));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(&shot, png);
        }
        let text = self.client.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let console = self.console().await;
        format!("page {url} saved as {}; its text: {text}; its console: {console:#?}", shot.display())
    }

    /// The page's console messages since the last call (chromedriver's log of the browser).
    pub async fn console(&self) -> Vec<String> {
        let Ok(Some(session)) = self.client.session_id().await else { return Vec::new() };
        let answer = crate::http()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await;
        let Ok(answer) = answer else { return Vec::new() };
        let body: Value = answer.json().await.unwrap_or_default();
        body["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| format!("{} {}", e["level"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the text of the element matching `css` satisfies `wanted`; returns it.
    pub async fn wait_text(&self, css: &str, mut wanted: impl FnMut(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if wanted(&text) {
                    return text;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let saved = self.save_failure("wait_text").await;
        panic!("{css} never showed the wanted text within {PATIENCE:?}; last: {last:?}; {saved}");
    }

    /// Waits until `script` (a JavaScript expression) is true.
    pub async fn wait_true(&self, script: &str) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < deadline {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let saved = self.save_failure("wait_true").await;
        panic!("{script} was not true within {PATIENCE:?}; {saved}");
    }

    /// The value of a JavaScript expression.
    pub async fn eval(&self, expression: &str) -> Value {
        self.client.execute(&format!("return ({expression});"), vec![]).await.unwrap()
    }

    /// Replaces the value of the input matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find_css(css).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Clicks the element with `data-test="{name}"`.
    pub async fn click(&self, name: &str) {
        self.find(name).await.click().await.unwrap();
    }

    /// Clicks the element matching `css`, again if a re-render replaced it under the click.
    pub async fn click_css(&self, css: &str) {
        for _ in 0..5 {
            if self.find_css(css).await.click().await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let saved = self.save_failure("click").await;
        panic!("{css} could not be clicked; {saved}");
    }

    /// Ends the session and the driver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// Kills the driver's process group (the driver and the browsers it started) and reaps it.
fn kill_group(driver: &mut Child) {
    if let Ok(pid) = i32::try_from(driver.id()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// A browser signed in to the dashboard at `base` with the test management key.
pub async fn signed_in(base: &str) -> Browser {
    let browser = Browser::start().await;
    browser.client.goto(&format!("{base}/")).await.unwrap();
    browser.fill("[data-test=\"signin-key\"]", crate::server::MANAGEMENT_KEY).await;
    browser.click("signin-submit").await;
    browser.find("nav-instances").await;
    browser.wait_true("!document.querySelector('[data-test=\"signin-form\"]')").await;
    browser
}

/// A CSS selector for the instances table's row of `name`.
pub fn row(name: &str) -> String {
    format!("[data-test=\"instance-row\"][data-name=\"{name}\"]")
}

/// A JavaScript expression: the status shown under `scope` (a CSS selector).
pub fn shown_status(scope: &str) -> String {
    format!(
        "((document.querySelector('{} [data-test=\"instance-status\"]') || {{}}).textContent || '')",
        scope.replace('\'', "\\'")
    )
}

/// The session cookie as the browser holds it (WebDriver sees HttpOnly cookies), as a
/// `Cookie` header's value; asserts it is HttpOnly.
pub async fn session_cookie(browser: &Browser) -> String {
    let cookies = browser.client.get_all_cookies().await.unwrap();
    let cookie = cookies.iter().find(|c| c.name() == "llamactl_session").expect("the session cookie is set");
    assert_eq!(cookie.http_only(), Some(true));
    format!("llamactl_session={}", cookie.value())
}
