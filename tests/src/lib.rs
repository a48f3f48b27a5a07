//! Support for llamactl's integration tests: where the provisioned backends are, managers on a
//! real SQLite file in a temporary folder, waiting with deadlines, and process checks.
//!
//! The real backends come from `scripts/backends/provision.sh`, which writes their paths to
//! `~/.cache/llamactl-backends/env.sh`; the test command sources it. A test that needs a
//! backend that was not provisioned fails and says how to provision it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod browser;
pub mod cli;
pub mod docker_images;
pub mod nginx;
pub mod router;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use llamactl_core::manager::InstanceState;
use llamactl_core::{InstanceOptions, InstanceStatus, Manager, ManagerConfig, SqliteDatabase};
use serde_json::{Value, json};

/// A binary of this crate. Cargo builds them before integration tests and benchmarks and puts
/// them next to the `deps/` folder that holds the test executable.
fn crate_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.parent().unwrap_or(deps), deps]
        .iter()
        .map(|dir| dir.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("binary {name} not found next to {}", exe.display()))
}

/// A binary of another workspace crate (`llamactl-server`, `llamactl`): Cargo does not build
/// those for this crate's tests, so scripts/test.sh builds every binary before the tests run.
pub fn workspace_binary(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidate = deps.parent().unwrap_or(deps).join(name);
    assert!(
        candidate.exists(),
        "{} does not exist: build it first (cargo build -p {package}; scripts/test.sh does)",
        candidate.display()
    );
    candidate
}

/// Installs ring as the TLS provider (once; later calls do nothing). reqwest is built with
/// `rustls-no-provider` in this workspace, so every program that builds a client installs one.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The purpose-built fault-injection backend of this crate.
pub fn test_backend() -> String {
    crate_binary("llamactl-test-backend").display().to_string()
}

/// The helper that hosts a manager in a process of its own.
pub fn test_manager_host() -> PathBuf {
    crate_binary("llamactl-test-manager")
}

pub(crate) fn provisioned(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: provision the real backends with `scripts/backends/provision.sh` and \
             `source ~/.cache/llamactl-backends/env.sh` (scripts/test.sh does both)"
        )
    });
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{var} points to {} which does not exist; run scripts/backends/provision.sh",
        path.display()
    );
    path
}

/// `llama-server`, built from source by the provisioning script.
pub fn llama_server() -> PathBuf {
    provisioned("LLAMACTL_TEST_LLAMA_SERVER")
}

/// The tiny GGUF model.
pub fn tiny_gguf() -> PathBuf {
    provisioned("LLAMACTL_TEST_GGUF")
}

/// `mlx_lm.server` from its venv.
pub fn mlx_server() -> PathBuf {
    provisioned("LLAMACTL_TEST_MLX_SERVER")
}

/// The tiny Hugging Face-format model folder.
pub fn tiny_hf_model() -> PathBuf {
    provisioned("LLAMACTL_TEST_HF_MODEL")
}

/// The `vllm` command (opt-in).
pub fn vllm() -> PathBuf {
    provisioned("LLAMACTL_TEST_VLLM_COMMAND")
}

/// A block of 50 ports for one test. Tests run in parallel processes, so the block depends on
/// the process id; within a process, successive calls take successive blocks. All blocks lie in
/// 21000-30999, below the kernel's ephemeral range (32768 and up), so that neither outgoing
/// connections nor "any free port" binds take them.
pub fn port_block() -> std::ops::RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let slot = (std::process::id() as u16 % 200 + NEXT.fetch_add(1, Ordering::SeqCst) * 7) % 200;
    let start = 21_000 + slot * 50;
    start..=start + 49
}

/// Configuration for tests: short grace periods, quick restarts, logs in `dir`, and the
/// provisioned `llama-server` as the llama.cpp command.
pub fn test_config(dir: &Path) -> ManagerConfig {
    let mut backends = llamactl_core::backend::BackendsSettings::default();
    backends.llama_cpp.command = std::env::var("LLAMACTL_TEST_LLAMA_SERVER").ok();
    ManagerConfig {
        backends,
        port_range: port_block(),
        stop_grace: Duration::from_secs(5),
        kill_timeout: Duration::from_secs(5),
        logs_dir: Some(dir.join("logs")),
        restart_reset_after: Duration::from_secs(60),
        ..ManagerConfig::default()
    }
}

/// A manager on a real SQLite file in a temporary folder.
#[derive(Debug)]
pub struct TestManager {
    /// The manager.
    pub manager: Manager,
    /// The temporary folder (database, logs).
    pub dir: tempfile::TempDir,
    /// The configuration it was opened with.
    pub config: ManagerConfig,
    /// Its database (held, with the file's lock, until [`TestManager::shutdown`]).
    pub db: Arc<SqliteDatabase>,
}

impl TestManager {
    /// Opens a manager with [`test_config`] changed by `adjust`.
    pub async fn new(adjust: impl FnOnce(&mut ManagerConfig)) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let (manager, db) = open_manager_with_db(dir.path(), config.clone()).await;
        Self { manager, dir, config, db }
    }

    /// Shuts the manager down and closes its database, as a server does when it stops: the
    /// next manager may then open the file.
    pub async fn shutdown(&self) {
        self.manager.shutdown().await;
        llamactl_core::Database::close(self.db.as_ref()).await;
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        db_path(self.dir.path())
    }
}

/// The database file in a test folder.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("llamactl.db")
}

/// Opens a manager on the database file of `dir`.
pub async fn open_manager(dir: &Path, config: ManagerConfig) -> Manager {
    open_manager_with_db(dir, config).await.0
}

/// Opens a manager on the database file of `dir`, and returns the database too (to close it).
pub async fn open_manager_with_db(dir: &Path, config: ManagerConfig) -> (Manager, Arc<SqliteDatabase>) {
    let db = Arc::new(SqliteDatabase::open(db_path(dir)).await.unwrap());
    (Manager::open(config, db.clone()).await.unwrap(), db)
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Options from JSON (panics on invalid JSON: test inputs are fixed).
pub fn options(value: Value) -> InstanceOptions {
    InstanceOptions::from_json_value(&value).unwrap()
}

/// A llama-server instance on the tiny model, CPU only.
pub fn llama_options() -> InstanceOptions {
    options(json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": tiny_gguf(), "ctx_size": 512, "gpu_layers": 0, "parallel": 1, "threads": 2, "no_webui": true},
        "environment": {"HF_HUB_OFFLINE": "1"}
    }))
}

/// An instance of the test backend with `args` added.
pub fn test_backend_options(args: &[&str]) -> InstanceOptions {
    let mut all = vec!["--host".to_owned(), "{host}".to_owned(), "--port".to_owned(), "{port}".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    // Short errors: an inherited RUST_BACKTRACE would bury them under a backtrace.
    options(json!({
        "backend_type": "custom",
        "backend_options": {"command": test_backend(), "args": all},
        "environment": {"RUST_BACKTRACE": "0"}
    }))
}

/// Options of a custom backend written in Python with its standard library
/// (`tests/backends/keepalive_backend.py`: HTTP/1.1 keep-alive, headers and body written
/// apart), given `args` after its `--host` and `--port`.
pub fn keepalive_backend_options(args: &[&str]) -> InstanceOptions {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/keepalive_backend.py");
    let mut all =
        vec![script.display().to_string(), "--host".into(), "{host}".into(), "--port".into(), "{port}".into()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    options(json!({
        "backend_type": "custom",
        "backend_options": {"command": "python3", "args": all},
    }))
}

/// Waits until `predicate` holds for the instance's state, at most `timeout`.
pub async fn wait_state(
    manager: &Manager,
    name: &str,
    timeout: Duration,
    predicate: impl FnMut(&InstanceState) -> bool,
) -> InstanceState {
    let mut state = manager.subscribe(name).unwrap();
    let result = tokio::time::timeout(timeout, state.wait_for(predicate)).await;
    match result {
        Ok(Ok(state)) => state.clone(),
        _ => panic!(
            "instance {name}: condition not met within {timeout:?}; state: {:#?}",
            manager.get(name).unwrap().state.runtime
        ),
    }
}

/// Waits until the instance has `status`.
pub async fn wait_status(manager: &Manager, name: &str, status: InstanceStatus, timeout: Duration) -> InstanceState {
    wait_state(manager, name, timeout, |s| s.runtime.status == status).await
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a live (non-zombie) process with this pid exists.
pub fn process_alive(pid: i32) -> bool {
    procfs::process::Process::new(pid).and_then(|p| p.stat()).is_ok_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether something accepts connections on 127.0.0.1:port.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Resident memory of process `pid`, in MiB (0 if it cannot be read).
pub fn resident_mib(pid: u32) -> f64 {
    let pid = i32::try_from(pid).unwrap_or(i32::MAX);
    procfs::process::Process::new(pid)
        .and_then(|p| p.status())
        .ok()
        .and_then(|s| s.vmrss)
        .map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// CPU time (user + system) the processes `pids` have used so far; a process that cannot be
/// read counts nothing.
pub fn cpu_time(pids: &[u32]) -> Duration {
    let ticks: u64 = pids
        .iter()
        .filter_map(|&pid| procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok())
        .map(|stat| stat.utime + stat.stime)
        .sum();
    Duration::from_secs_f64(ticks as f64 / procfs::ticks_per_second() as f64)
}

/// The `p` quantile (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// An HTTP client for tests.
pub fn http() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

/// Sends a small chat completion; returns the HTTP status and the JSON body.
pub async fn chat(base_url: &str, model: Option<&str>) -> (u16, Value) {
    let body = json!({
        "model": model.unwrap_or("anything"),
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 8,
        "temperature": 0
    });
    let response = http().post(format!("{base_url}/v1/chat/completions")).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Sends a streaming chat completion; returns the status and the raw SSE body.
pub async fn chat_stream(base_url: &str, model: Option<&str>) -> (u16, String) {
    let body = json!({
        "model": model.unwrap_or("anything"),
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 4,
        "stream": true
    });
    let response = http().post(format!("{base_url}/v1/chat/completions")).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Asserts the shape of an OpenAI chat completion (tiny random models produce arbitrary text).
pub fn assert_chat_completion(status: u16, body: &Value) {
    assert_eq!(status, 200, "chat completion failed: {body}");
    let choice = &body["choices"][0];
    assert!(choice["message"]["content"].is_string(), "no message content in {body}");
    assert!(choice["finish_reason"].is_string(), "no finish_reason in {body}");
}

/// Asserts the shape of an OpenAI chat completion stream.
pub fn assert_chat_stream(status: u16, body: &str) {
    assert_eq!(status, 200, "streaming chat completion failed: {body}");
    let events: Vec<&str> = body.lines().filter(|l| l.starts_with("data: ")).collect();
    assert!(events.len() >= 2, "too few SSE events: {body}");
    assert_eq!(events.last().copied(), Some("data: [DONE]"), "stream does not end with [DONE]: {body}");
    let first: Value = serde_json::from_str(events[0].trim_start_matches("data: ")).unwrap();
    assert!(first["choices"].is_array(), "first event is not a chunk: {body}");
}
