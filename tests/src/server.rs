//! llamactl-server for tests: in this process (fast, for API tests) or as the real binary
//! (for restarts, signals and clients in other languages).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use llamactl_server::config::Config;
use serde_json::{Value, json};

use crate::{init_tracing, port_block};

/// The management key test servers are configured with.
pub const MANAGEMENT_KEY: &str = "test-management-key";

/// A configuration for tests: data in `dir`, any free port, a known management key, a port
/// block of its own, short grace periods, the provisioned llama-server if there is one.
pub fn server_config(dir: &Path) -> Config {
    let mut config = Config { data_dir: Some(dir.to_path_buf()), ..Config::default() };
    config.server.port = 0;
    config.auth.management_keys = vec![MANAGEMENT_KEY.into()];
    let ports = port_block();
    config.instances.port_range = [*ports.start(), *ports.end()];
    config.instances.stop_timeout = 5;
    config.instances.on_demand_start_timeout = 60;
    config.backends.llama_cpp.command = std::env::var("LLAMACTL_TEST_LLAMA_SERVER").ok();
    config
}

/// A server running inside the test process.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:port`
    pub base: String,
    /// Its data folder.
    pub dir: tempfile::TempDir,
    /// The configuration it runs with.
    pub config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server with [`server_config`] changed by `adjust`.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, adjust).await
    }

    /// Starts a server on an existing data folder.
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let mut config = server_config(dir.path());
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(llamactl_server::app::run(config.clone(), listener, async move {
            let _ = stopped.await;
        }));
        let server = Self { base, dir, config, stop: Some(stop), task: Some(task) };
        server.wait_healthy().await;
        server
    }

    async fn wait_healthy(&self) {
        crate::install_tls_provider();
        let client = reqwest::Client::new();
        for _ in 0..500 {
            if client.get(format!("{}/health", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("test server at {} did not become healthy", self.base);
    }

    /// A request builder with the management key.
    pub fn manage(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        http().request(method, format!("{}{path}", self.base)).bearer_auth(MANAGEMENT_KEY)
    }

    /// Stops the server (graceful shutdown) and returns its data folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown().await;
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP client without a default timeout on streams.
pub fn http() -> reqwest::Client {
    crate::install_tls_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

/// The real `llamactl-server` binary.
pub fn server_binary() -> PathBuf {
    crate::workspace_binary("llamactl-server", "llamactl-server")
}

/// The real server binary, running with a YAML configuration file in its data folder.
#[derive(Debug)]
pub struct SpawnedServer {
    /// `http://127.0.0.1:port`
    pub base: String,
    /// The process.
    pub child: Child,
    /// What it printed at start.
    pub banner: Vec<String>,
}

impl SpawnedServer {
    /// Writes `config` to `<dir>/llamactl.yaml` and starts the binary with it.
    pub fn start(dir: &Path, config: &Config) -> Self {
        Self::start_logging(dir, config, Stdio::inherit())
    }

    /// As [`SpawnedServer::start`], with the server's log (its stderr) going to `log`.
    pub fn start_logging(dir: &Path, config: &Config, log: impl Into<Stdio>) -> Self {
        Self::start_program(&server_binary(), dir, &serde_json::to_value(config).unwrap(), log)
    }

    /// Starts `program` (a llamactl-server binary, maybe another build) with the configuration
    /// `config`, written to `<dir>/llamactl.yaml`; its log (stderr) goes to `log`.
    pub fn start_program(program: &Path, dir: &Path, config: &Value, log: impl Into<Stdio>) -> Self {
        let file = dir.join("llamactl.yaml");
        // JSON is YAML.
        std::fs::write(&file, serde_json::to_string_pretty(config).unwrap()).unwrap();
        Self::start_with_file(program, &file, log)
    }

    /// Starts `program` with the configuration file `file` as it is; its log goes to `log`.
    pub fn start_with_file(program: &Path, file: &Path, log: impl Into<Stdio>) -> Self {
        let mut child = Command::new(program)
            .arg("--config")
            .arg(file)
            .env_remove("LLAMACTL_CONFIG_PATH")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = Vec::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("the server exited during start: {banner:?}");
            }
            let done = line.contains("API docs:");
            banner.push(line.trim_end().to_owned());
            if done {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stdout.read_to_end(&mut sink);
        });
        let base = banner
            .iter()
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")))
            .unwrap()
            .to_owned();
        Self { base, child, banner }
    }

    /// A request builder with the management key.
    pub fn manage(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        http().request(method, format!("{}{path}", self.base)).bearer_auth(MANAGEMENT_KEY)
    }

    /// Sends the server SIGHUP (a configuration reload).
    pub fn hang_up(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let ok = self.child.wait().map(|s| s.success()).unwrap_or(false);
        std::mem::forget(self);
        ok
    }

    /// SIGKILL: the server dies without any cleanup.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET base + path` with the management key, as JSON.
pub async fn get_json(base: &str, path: &str) -> Value {
    http().get(format!("{base}{path}")).bearer_auth(MANAGEMENT_KEY).send().await.unwrap().json().await.unwrap()
}

/// Creates an inference key allowed everything and returns its secret.
pub async fn create_key(base: &str, name: &str) -> String {
    let response = http()
        .post(format!("{base}/api/v1/auth/keys"))
        .bearer_auth(MANAGEMENT_KEY)
        .json(&json!({"name": name, "permission_mode": "allow_all"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "create key {name}");
    let body: Value = response.json().await.unwrap();
    body["key_secret"].as_str().expect("the new key's secret").to_owned()
}

/// Creates an instance over the API and returns its JSON.
pub async fn create_instance(base: &str, name: &str, options: &Value) -> Value {
    let response = http()
        .post(format!("{base}/api/v1/instances/{name}"))
        .bearer_auth(MANAGEMENT_KEY)
        .json(options)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status.as_u16(), 201, "create {name}: {body}");
    body
}
