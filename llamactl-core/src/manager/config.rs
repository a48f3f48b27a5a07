//! The manager's configuration.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::InstanceOptions;
use crate::backend::BackendsSettings;
use crate::docker::DockerSettings;
use crate::logs::Rotation;

/// The instance settings that have defaults: the manager's configuration holds the defaults
/// (the Go llamactl's `instances.default_*`), and [`InstanceSettings::apply`] gives an
/// instance's effective values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettings {
    /// Restart after an unexpected exit.
    pub auto_restart: bool,
    /// Consecutive automatic restarts before giving up.
    pub max_restarts: u32,
    /// First restart delay (later ones back off exponentially).
    pub restart_delay: Duration,
    /// Start on demand when a request needs the instance.
    pub on_demand_start: bool,
    /// Idle time before an instance is stopped; zero = never.
    pub idle_timeout: Duration,
    /// How long a backend may take to become ready.
    pub startup_timeout: Duration,
}

impl Default for InstanceSettings {
    fn default() -> Self {
        Self {
            auto_restart: true,
            max_restarts: 3,
            restart_delay: Duration::from_secs(5),
            on_demand_start: true,
            idle_timeout: Duration::ZERO,
            startup_timeout: Duration::from_secs(600),
        }
    }
}

impl InstanceSettings {
    /// The values for `options`: its own where set, these defaults otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llamactl_core::{InstanceOptions, manager::InstanceSettings};
    /// let options = InstanceOptions::from_json(r#"{"backend_type":"vllm","idle_timeout":"30s"}"#).unwrap();
    /// let settings = InstanceSettings::default().apply(&options);
    /// assert_eq!(settings.idle_timeout, Duration::from_secs(30));
    /// assert!(settings.auto_restart);
    /// ```
    pub fn apply(&self, options: &InstanceOptions) -> InstanceSettings {
        InstanceSettings {
            auto_restart: options.auto_restart.unwrap_or(self.auto_restart),
            max_restarts: options.max_restarts.unwrap_or(self.max_restarts),
            restart_delay: options.restart_delay.unwrap_or(self.restart_delay),
            on_demand_start: options.on_demand_start.unwrap_or(self.on_demand_start),
            idle_timeout: options.idle_timeout.unwrap_or(self.idle_timeout),
            startup_timeout: options.startup_timeout.unwrap_or(self.startup_timeout),
        }
    }
}

/// What [`Manager::shutdown`](super::Manager::shutdown) does with running backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShutdownPolicy {
    /// Stop every instance (their desired state is kept: the next manager starts them again).
    #[default]
    Stop,
    /// Leave them running for the next manager to take over (e.g. during an upgrade): no model
    /// is unloaded. Backends are stopped only by a stop, an idle timeout or an eviction.
    Keep,
}

/// Everything the manager needs to know. `Default` gives the Go llamactl's defaults where it
/// has them.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Ports handed to instances without a pinned port (`instances.port_range`).
    pub port_range: RangeInclusive<u16>,
    /// Address backends listen on unless their options say otherwise.
    pub backend_host: String,
    /// Most instances defined at once (`None` = no limit); a create beyond it fails with
    /// [`ManagerError::InstanceLimit`](super::ManagerError::InstanceLimit).
    pub max_instances: Option<usize>,
    /// Most instances running at once (`None` = no limit).
    pub max_running_instances: Option<usize>,
    /// Most instances running at once per group.
    pub group_limits: BTreeMap<String, usize>,
    /// At a limit, stop the least recently used idle instance to make room.
    pub enable_lru_eviction: bool,
    /// Defaults for unset instance options.
    pub defaults: InstanceSettings,
    /// Interval between readiness probes while an instance starts.
    pub readiness_interval: Duration,
    /// Time a process has to exit after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// Time allowed after SIGKILL.
    pub kill_timeout: Duration,
    /// How long a running instance whose new options need a restart lets the requests in
    /// flight finish first (new ones wait for the restart); past it they are cut.
    pub drain_timeout: Duration,
    /// Uptime after which the restart counter starts over.
    pub restart_reset_after: Duration,
    /// Longest delay between automatic restarts.
    pub max_restart_delay: Duration,
    /// Folder of per-instance log files (`None`: logs in memory only).
    pub logs_dir: Option<PathBuf>,
    /// Log lines kept in memory per instance.
    pub log_buffer_lines: usize,
    /// Log file rotation.
    pub log_rotation: Rotation,
    /// Commands, arguments and environment per backend.
    pub backends: BackendsSettings,
    /// Name of this node; instances assigned only to other nodes are not run here.
    pub local_node: String,
    /// The Docker runtime: engine address and per-backend container settings.
    pub docker: DockerSettings,
    /// What shutdown does with running backends.
    pub shutdown_policy: ShutdownPolicy,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            port_range: 8000..=9000,
            backend_host: "127.0.0.1".into(),
            max_instances: None,
            max_running_instances: None,
            group_limits: BTreeMap::new(),
            enable_lru_eviction: true,
            defaults: InstanceSettings::default(),
            readiness_interval: Duration::from_millis(20),
            stop_grace: Duration::from_secs(30),
            kill_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            restart_reset_after: Duration::from_secs(60),
            max_restart_delay: Duration::from_secs(300),
            logs_dir: None,
            log_buffer_lines: 2000,
            log_rotation: Rotation::default(),
            backends: BackendsSettings::default(),
            local_node: "main".into(),
            docker: DockerSettings::default(),
            shutdown_policy: ShutdownPolicy::Stop,
        }
    }
}
