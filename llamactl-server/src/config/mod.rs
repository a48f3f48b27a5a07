//! The server's configuration: the Go llamactl's YAML keys and `LLAMACTL_*` environment
//! variables, plus llamactl's own additions. Loading (defaults < YAML file < environment,
//! `${VAR}` expansion, errors naming the key and the file) is in [`load()`].

pub(crate) mod expand;
mod history;
mod load;
mod locate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use llamactl_core::ManagerConfig;
use llamactl_core::backend::{BackendSettings, BackendsSettings};
use llamactl_core::docker::{BackendDocker, DockerSettings};
use llamactl_core::logs::Rotation;
use llamactl_core::manager::{InstanceSettings, ShutdownPolicy};
use llamactl_core::options::docker::{ByteSize, DockerNetwork, DockerRunOptions, GpuRequest};
use serde::{Deserialize, Serialize};

pub use history::{ActivityConfig, ResourceHistoryConfig};
pub use load::{ConfigError, LoadedConfig, load};
pub use locate::locate_line;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Backend commands.
    pub backends: BackendsConfig,
    /// The Docker engine that runs containerised instances.
    pub docker: DockerEngineConfig,
    /// Instance defaults and limits.
    pub instances: InstancesConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Records of proxied requests.
    pub activity: ActivityConfig,
    /// Samples of CPU and memory use.
    pub resource_history: ResourceHistoryConfig,
    /// Named partial instance options that instances take values from (`extends: [name]`).
    pub templates: BTreeMap<String, serde_json::Value>,
    /// How the configuration file is reloaded.
    pub config: ReloadConfig,
    /// Name of this node.
    pub local_node: String,
    /// Other nodes (multi-node setups; kept for compatibility, not used yet).
    pub nodes: BTreeMap<String, NodeConfig>,
    /// Folder for the database, logs and legacy instance files (default: the platform's data
    /// folder, `~/.local/share/llamactl` on Linux).
    pub data_dir: Option<PathBuf>,
    /// The file this configuration was read from, and its text (not a key of the file).
    #[serde(skip)]
    pub origin: Option<ConfigOrigin>,
}

/// The file a configuration was read from: reloads read it again; its text (after `${VAR}`
/// expansion) gives errors their line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOrigin {
    /// The file.
    pub path: PathBuf,
    /// Its text, expanded.
    pub text: String,
}

/// `server.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0: any free port).
    pub port: u16,
    /// CORS origins allowed (empty: no CORS headers).
    pub allowed_origins: Vec<String>,
    /// CORS request headers allowed.
    pub allowed_headers: Vec<String>,
    /// Serve the interactive API documentation at `/swagger-ui`.
    pub enable_swagger: bool,
    /// Serve the web dashboard at `/`.
    pub enable_dashboard: bool,
    /// Serve the dashboard's files from this folder (read at each request) instead of those
    /// built into the server: for working on the dashboard.
    pub dashboard_dir: Option<PathBuf>,
    /// Headers added to every response.
    pub response_headers: BTreeMap<String, String>,
    /// Log format: `plain` or `json`.
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// How long in-flight requests may run on shutdown before they are cut.
    pub shutdown_timeout_seconds: u64,
    /// Most client connections open at once; past it a new connection is answered 503 and
    /// closed at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's head (request line and headers),
    /// seconds: from the connection's accept for its first request, from the head's first
    /// byte for a later one. Slower: the connection is closed.
    pub header_read_timeout_seconds: u64,
    /// How long a kept-alive connection may wait with no request in flight, seconds; then it
    /// is closed. A response being streamed is in flight, however long it takes.
    pub keep_alive_timeout_seconds: u64,
    /// Largest request head (request line and headers) accepted, in bytes (larger: 431).
    pub max_header_bytes: usize,
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            allowed_origins: Vec::new(),
            allowed_headers: Vec::new(),
            enable_swagger: true,
            enable_dashboard: true,
            dashboard_dir: None,
            response_headers: BTreeMap::new(),
            log_format: LogFormat::Plain,
            max_body_bytes: 64 * 1024 * 1024,
            shutdown_timeout_seconds: 30,
            max_connections: 4096,
            header_read_timeout_seconds: 10,
            keep_alive_timeout_seconds: 60,
            max_header_bytes: 64 * 1024,
        }
    }
}

/// `backends.*`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendsConfig {
    /// `backends.llama-cpp`
    #[serde(rename = "llama-cpp")]
    pub llama_cpp: BackendConfig,
    /// `backends.vllm`
    pub vllm: BackendConfig,
    /// `backends.mlx`
    pub mlx: BackendConfig,
}

/// What to do when a backend's program cannot be run: where its command is set (the config
/// file's key and its `LLAMACTL_*` variable), or PATH. The library reports the failure; the
/// server, which owns the config file, words the remedy.
pub fn command_hint(backend: llamactl_core::BackendType) -> String {
    match command_setting(backend) {
        Some((key, variable)) => {
            format!("install it or set {key} in the config file ({variable}) to its path, or put it on PATH")
        }
        None => "install it or set the instance's backend_options.command to its path, or put it on PATH".into(),
    }
}

/// The config file's key and the `LLAMACTL_*` variable that name a backend's program (custom
/// backends: none, each instance names its own).
pub fn command_setting(backend: llamactl_core::BackendType) -> Option<(&'static str, &'static str)> {
    use llamactl_core::BackendType;
    match backend {
        BackendType::LlamaCpp => Some(("backends.llama-cpp.command", "LLAMACTL_LLAMACPP_COMMAND")),
        BackendType::MlxLm => Some(("backends.mlx.command", "LLAMACTL_MLX_COMMAND")),
        BackendType::Vllm => Some(("backends.vllm.command", "LLAMACTL_VLLM_COMMAND")),
        BackendType::Custom => None,
    }
}

/// The message for a start of `instance` that failed because its program could not be run:
/// the failure followed by [`command_hint`] for its backend. `None` for any other error (or an
/// instance whose options are gone), which keeps its own message.
pub fn start_failure_remedy(
    manager: &llamactl_core::Manager,
    instance: &str,
    error: &llamactl_core::manager::ManagerError,
) -> Option<String> {
    use llamactl_core::TransitionReason;
    use llamactl_core::manager::ManagerError;
    let ManagerError::StartFailed { reason: TransitionReason::SpawnFailed { .. }, detail, .. } = error else {
        return None;
    };
    let backend = manager.get(instance).ok()?.state.options.ok()?.backend.backend_type();
    Some(format!("{detail}; {}", command_hint(backend)))
}

/// One backend's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// Program (default: llama-server, vllm, mlx_lm.server).
    pub command: Option<String>,
    /// Arguments before the instance's own.
    pub args: Vec<String>,
    /// Environment for every instance of this backend.
    pub environment: BTreeMap<String, String>,
    /// How its instances run as Docker containers.
    pub docker: DockerConfig,
    /// Headers added to responses proxied from this backend.
    pub response_headers: BTreeMap<String, String>,
}

/// `backends.<name>.docker`: the Go llamactl's keys (`enabled`, `image`, `args`,
/// `environment`) and typed settings of llamactl's own. `args` are `docker run` arguments as
/// the Go llamactl passed them to the `docker` command; llamactl reads the ones it can apply
/// through the Engine API (`--network`, `--gpus`, `-v`, `--shm-size`, `-m`, `-e`) and refuses
/// the others at load, naming them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Run instances of this backend as containers unless their `docker_enabled` says no.
    pub enabled: bool,
    /// Image (default: `ghcr.io/ggml-org/llama.cpp:server`, `vllm/vllm-openai:latest`).
    pub image: Option<String>,
    /// `docker run` arguments (see above).
    pub args: Vec<String>,
    /// Container environment.
    pub environment: BTreeMap<String, String>,
    /// Entrypoint replacing the image's (default: `/app/llama-server`, `vllm`).
    pub entrypoint: Option<Vec<String>>,
    /// `bridge` (default: the port is published on the instance's host address) or `host`.
    pub network: Option<DockerNetwork>,
    /// Mounts, `SOURCE:TARGET[:ro]`.
    pub volumes: Vec<String>,
    /// GPUs: `all`, a number, or a list of device ids.
    pub gpus: Option<GpuRequest>,
    /// Size of /dev/shm (`1g`).
    pub shm_size: Option<ByteSize>,
    /// Memory limit (`16g`).
    pub memory: Option<ByteSize>,
}

impl DockerConfig {
    /// The run options: those read from `args`, overlaid with the typed keys.
    pub fn run_options(&self) -> Result<DockerRunOptions, String> {
        let from_args = DockerRunOptions::from_run_args(&self.args)?;
        let typed = DockerRunOptions {
            image: self.image.clone(),
            entrypoint: self.entrypoint.clone(),
            network: self.network,
            volumes: self.volumes.clone(),
            gpus: self.gpus.clone(),
            shm_size: self.shm_size,
            memory: self.memory,
            environment: self.environment.clone(),
        };
        Ok(from_args.overlay(&typed))
    }
}

/// `docker.*`: where the Docker engine is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerEngineConfig {
    /// `unix:///var/run/docker.sock`, `tcp://HOST:2375`, `https://HOST:2376` (default:
    /// `$DOCKER_HOST`, else the local socket).
    pub host: Option<String>,
    /// TLS for a `tcp://` address (as `DOCKER_TLS_VERIFY`).
    pub tls_verify: bool,
    /// Folder with `ca.pem`, `cert.pem`, `key.pem` (default: `$DOCKER_CERT_PATH`, else `~/.docker`).
    pub cert_path: Option<PathBuf>,
}

/// `instances.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstancesConfig {
    /// Ports for instances without a pinned port: `[start, end]`.
    pub port_range: [u16; 2],
    /// Most instances defined (-1: no limit).
    pub max_instances: i64,
    /// Most instances running at once (-1: no limit).
    pub max_running_instances: i64,
    /// Most instances running at once per group.
    pub group_limits: BTreeMap<String, usize>,
    /// At a limit, stop the least recently used idle instance to make room.
    pub enable_lru_eviction: bool,
    /// Default `idle_timeout`, minutes (0: never).
    pub default_idle_timeout: u64,
    /// Default `auto_restart`.
    pub default_auto_restart: bool,
    /// Default `max_restarts`.
    pub default_max_restarts: u32,
    /// Default `restart_delay`, seconds.
    pub default_restart_delay: u64,
    /// Default `on_demand_start`.
    pub default_on_demand_start: bool,
    /// How long a request waits for an on-demand start, seconds.
    pub on_demand_start_timeout: u64,
    /// Most requests waiting at once for one instance to start (more: 503).
    pub on_demand_queue_size: usize,
    /// Kept for compatibility: llamactl checks idle times exactly, not on an interval.
    pub timeout_check_interval: u64,
    /// How long a backend may take to become ready, seconds.
    pub startup_timeout: u64,
    /// Grace period between SIGTERM and SIGKILL when stopping, seconds.
    pub stop_timeout: u64,
    /// What the server's shutdown does with running instances: `stop` them, or `keep` them
    /// running for the next server on this data folder to take over (no model is unloaded).
    pub shutdown_policy: ShutdownPolicy,
    /// Folder of instance logs (default: `<data_dir>/logs`).
    pub logs_dir: Option<PathBuf>,
    /// Folder of the Go llamactl's per-instance JSON files, imported once (default:
    /// `<data_dir>/instances`).
    pub instances_dir: Option<PathBuf>,
    /// Instances declared here, by name: the same options the API takes. Reconciled into the
    /// database at start and at every reload; read-only over the API.
    pub definitions: BTreeMap<String, serde_json::Value>,
    /// A folder whose `*.yaml` files each map more instance names to their options.
    pub definitions_dir: Option<PathBuf>,
    /// How long an instance restarted for new options lets its requests in flight finish
    /// first, seconds.
    pub drain_timeout: u64,
    /// Rotate log files.
    pub log_rotation_enabled: bool,
    /// Rotate a log file at this size, megabytes.
    pub log_rotation_max_size: u64,
    /// Kept for compatibility: rotated logs are not compressed.
    pub log_rotation_compress: bool,
}

impl Default for InstancesConfig {
    fn default() -> Self {
        let defaults = InstanceSettings::default();
        Self {
            port_range: [8000, 9000],
            max_instances: -1,
            max_running_instances: -1,
            group_limits: BTreeMap::new(),
            enable_lru_eviction: true,
            default_idle_timeout: 0,
            default_auto_restart: defaults.auto_restart,
            default_max_restarts: defaults.max_restarts,
            default_restart_delay: defaults.restart_delay.as_secs(),
            default_on_demand_start: defaults.on_demand_start,
            on_demand_start_timeout: 120,
            on_demand_queue_size: 1024,
            timeout_check_interval: 5,
            startup_timeout: defaults.startup_timeout.as_secs(),
            stop_timeout: 30,
            shutdown_policy: ShutdownPolicy::Stop,
            logs_dir: None,
            instances_dir: None,
            definitions: BTreeMap::new(),
            definitions_dir: None,
            drain_timeout: 30,
            log_rotation_enabled: true,
            log_rotation_max_size: 100,
            log_rotation_compress: false,
        }
    }
}

/// `config.*`: reloading the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// Reload when the file (or a file of `instances.definitions_dir`) changes.
    pub watch: bool,
    /// How long the files must stay unchanged before a watched change is reloaded,
    /// milliseconds.
    pub watch_debounce_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self { watch: false, watch_debounce_ms: 500 }
    }
}

/// `database.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file (default: `<data_dir>/llamactl.db`).
    pub path: Option<PathBuf>,
    /// Kept for compatibility (SQLite uses one writer and a small read pool).
    pub max_open_connections: u32,
    /// Kept for compatibility.
    pub max_idle_connections: u32,
    /// Kept for compatibility.
    pub connection_max_lifetime: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { path: None, max_open_connections: 25, max_idle_connections: 5, connection_max_lifetime: "5m".into() }
    }
}

/// `auth.*`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Inference routes (`/v1/*`, `/llama-cpp/*`) need a key.
    pub require_inference_auth: bool,
    /// Management routes (`/api/v1/*`) need a management key.
    pub require_management_auth: bool,
    /// Management keys. If management auth is required and there are none, one is generated at
    /// start and printed.
    pub management_keys: Vec<String>,
    /// How long a dashboard sign-in lasts, hours.
    pub session_hours: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            require_inference_auth: true,
            require_management_auth: true,
            management_keys: Vec::new(),
            session_hours: 24,
        }
    }
}

/// `nodes.<name>`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Base URL of the node's llamactl.
    pub address: String,
    /// Its management key.
    pub api_key: Option<String>,
}

impl Config {
    /// The data folder: `data_dir`, else the platform's data folder + `llamactl`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| dirs::data_dir().map(|d| d.join("llamactl")))
            .unwrap_or_else(|| PathBuf::from("llamactl-data"))
    }

    /// The SQLite file.
    pub fn database_path(&self) -> PathBuf {
        self.database.path.clone().unwrap_or_else(|| self.data_dir().join("llamactl.db"))
    }

    /// The folder of instance logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.instances.logs_dir.clone().unwrap_or_else(|| self.data_dir().join("logs"))
    }

    /// The folder of legacy per-instance JSON files.
    pub fn instances_dir(&self) -> PathBuf {
        self.instances.instances_dir.clone().unwrap_or_else(|| self.data_dir().join("instances"))
    }

    /// How long a request waits for an on-demand start.
    pub fn on_demand_timeout(&self) -> Duration {
        Duration::from_secs(self.instances.on_demand_start_timeout)
    }

    /// The core manager's configuration.
    pub fn manager_config(&self) -> ManagerConfig {
        let i = &self.instances;
        let backend = |b: &BackendConfig| BackendSettings {
            command: b.command.clone(),
            args: b.args.clone(),
            environment: b.environment.clone(),
        };
        ManagerConfig {
            port_range: i.port_range[0]..=i.port_range[1],
            max_instances: usize::try_from(i.max_instances).ok(),
            max_running_instances: usize::try_from(i.max_running_instances).ok(),
            group_limits: i.group_limits.clone(),
            enable_lru_eviction: i.enable_lru_eviction,
            defaults: InstanceSettings {
                auto_restart: i.default_auto_restart,
                max_restarts: i.default_max_restarts,
                restart_delay: Duration::from_secs(i.default_restart_delay),
                on_demand_start: i.default_on_demand_start,
                idle_timeout: Duration::from_secs(i.default_idle_timeout.saturating_mul(60)),
                startup_timeout: Duration::from_secs(i.startup_timeout),
            },
            stop_grace: Duration::from_secs(i.stop_timeout),
            drain_timeout: Duration::from_secs(i.drain_timeout),
            shutdown_policy: i.shutdown_policy,
            logs_dir: Some(self.logs_dir()),
            log_rotation: Rotation {
                max_bytes: if i.log_rotation_enabled { i.log_rotation_max_size.saturating_mul(1024 * 1024) } else { 0 },
                keep: 5,
            },
            backends: BackendsSettings {
                llama_cpp: backend(&self.backends.llama_cpp),
                mlx_lm: backend(&self.backends.mlx),
                vllm: backend(&self.backends.vllm),
            },
            local_node: if self.local_node.is_empty() { "main".into() } else { self.local_node.clone() },
            docker: self.docker_settings(),
            ..ManagerConfig::default()
        }
    }

    /// The Docker runtime's settings: each backend's defaults overlaid with its configured
    /// `docker` settings (checked when the configuration was loaded).
    pub fn docker_settings(&self) -> DockerSettings {
        let defaults = DockerSettings::default();
        let backend = |base: &BackendDocker, configured: &DockerConfig| BackendDocker {
            enabled: configured.enabled,
            run: base.run.overlay(&configured.run_options().unwrap_or_default()),
        };
        DockerSettings {
            host: self.docker.host.clone(),
            tls_verify: self.docker.tls_verify,
            cert_path: self.docker.cert_path.clone(),
            llama_cpp: backend(&defaults.llama_cpp, &self.backends.llama_cpp.docker),
            vllm: backend(&defaults.vllm, &self.backends.vllm.docker),
            custom: defaults.custom,
        }
    }

    /// The configuration as JSON with secrets removed (management keys, node keys), for
    /// `GET /api/v1/config`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut copy = self.clone();
        copy.auth.management_keys = copy.auth.management_keys.iter().map(|_| "<redacted>".to_owned()).collect();
        for node in copy.nodes.values_mut() {
            if node.api_key.is_some() {
                node.api_key = Some("<redacted>".into());
            }
        }
        let mut value = serde_json::to_value(copy).unwrap_or_default();
        value["data_dir"] = serde_json::Value::from(self.data_dir().display().to_string());
        value
    }
}
