//! The bodies of the resource routes: `GET /api/v1/system/metrics` (the host's, each
//! instance's and each GPU's CPU and memory over a window, as series for charts, and the latest
//! tick for a live view) and `GET /api/v1/system/info` (what the host is).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far back `GET /api/v1/system/metrics` reads: `15m`, `1h` or `24h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MetricsWindow {
    /// The last 15 minutes.
    #[serde(rename = "15m")]
    Minutes15,
    /// The last hour.
    #[default]
    #[serde(rename = "1h")]
    Hour1,
    /// The last 24 hours.
    #[serde(rename = "24h")]
    Hours24,
}

impl MetricsWindow {
    /// Every window, shortest first.
    pub const ALL: [MetricsWindow; 3] = [Self::Minutes15, Self::Hour1, Self::Hours24];

    /// The window as the query names it.
    ///
    /// ```
    /// assert_eq!(llamactl_api::resources::MetricsWindow::Hours24.as_str(), "24h");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minutes15 => "15m",
            Self::Hour1 => "1h",
            Self::Hours24 => "24h",
        }
    }

    /// Its length in seconds.
    ///
    /// ```
    /// assert_eq!(llamactl_api::resources::MetricsWindow::Minutes15.seconds(), 900);
    /// ```
    pub fn seconds(self) -> u64 {
        match self {
            Self::Minutes15 => 15 * 60,
            Self::Hour1 => 60 * 60,
            Self::Hours24 => 24 * 60 * 60,
        }
    }
}

impl fmt::Display for MetricsWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A window that is not `15m`, `1h` or `24h`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("window: expected 15m, 1h or 24h, got {0:?}")]
pub struct WindowError(pub String);

impl FromStr for MetricsWindow {
    type Err = WindowError;

    /// ```
    /// use llamactl_api::resources::MetricsWindow;
    /// assert_eq!("15m".parse::<MetricsWindow>(), Ok(MetricsWindow::Minutes15));
    /// assert!("2h".parse::<MetricsWindow>().unwrap_err().to_string().starts_with("window:"));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|w| w.as_str() == s).ok_or_else(|| WindowError(s.to_owned()))
    }
}

/// One point of the host's series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostPoint {
    /// When (the start of the point's step).
    pub at: DateTime<Utc>,
    /// CPU use in percent of every core (none for the first sample after a start).
    pub cpu_percent: Option<f64>,
    /// Memory in use (total less available), in bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory available to new programs, in bytes.
    pub memory_available_bytes: Option<u64>,
    /// Memory in all, in bytes.
    pub memory_total_bytes: Option<u64>,
    /// The 1-minute load average.
    pub load1: Option<f64>,
}

/// One point of an instance's series: its whole process group, or its container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstancePoint {
    /// When (the start of the point's step).
    pub at: DateTime<Utc>,
    /// CPU use in percent of one core (200: two busy cores).
    pub cpu_percent: Option<f64>,
    /// Resident memory (a container's: memory in use), in bytes.
    pub rss_bytes: Option<u64>,
}

/// One point of a GPU's series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuPoint {
    /// When (the start of the point's step).
    pub at: DateTime<Utc>,
    /// Utilisation, in percent.
    pub utilization_percent: Option<f64>,
    /// Memory in use, in bytes.
    pub memory_used_bytes: Option<u64>,
    /// Memory in all, in bytes.
    pub memory_total_bytes: Option<u64>,
}

/// The last tick the server took: what a live view (`llamactl top`) shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LatestSample {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The host.
    pub host: Option<HostPoint>,
    /// Each instance that had a process or container then, by name.
    pub instances: BTreeMap<String, InstancePoint>,
    /// Each GPU, by index.
    pub gpus: BTreeMap<String, GpuPoint>,
}

/// `GET /api/v1/system/metrics`: series over a window, one point per `step_seconds` (the
/// average of the samples in that step), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemMetrics {
    /// The window read.
    pub window: MetricsWindow,
    /// Seconds between samples (`resource_history.interval_seconds`).
    pub interval_seconds: u64,
    /// Seconds each point covers (the interval, or more for long windows).
    pub step_seconds: u64,
    /// Whether the server takes samples (`resource_history.enabled`).
    pub enabled: bool,
    /// The host's series.
    pub host: Vec<HostPoint>,
    /// Each instance's series, by name (instances sampled in the window, running or not now).
    pub instances: BTreeMap<String, Vec<InstancePoint>>,
    /// Each GPU's series, by index.
    pub gpus: BTreeMap<String, Vec<GpuPoint>>,
    /// The last tick, not averaged; none before the first.
    pub latest: Option<LatestSample>,
}

/// A GPU of [`SystemInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuDescription {
    /// Its index.
    pub index: u32,
    /// Its product name.
    pub name: String,
    /// Its memory, in bytes.
    pub memory_total_bytes: Option<u64>,
}

/// `GET /api/v1/system/info`: what the host is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemInfo {
    /// The host's name.
    pub hostname: Option<String>,
    /// The operating system (`/etc/os-release`'s `PRETTY_NAME`).
    pub os: Option<String>,
    /// The kernel's release.
    pub kernel: Option<String>,
    /// The architecture (`x86_64`, `aarch64`, ...).
    pub architecture: String,
    /// The CPU's model name.
    pub cpu_model: Option<String>,
    /// Logical CPUs.
    pub cpu_cores: u32,
    /// Physical cores, where known.
    pub cpu_physical_cores: Option<u32>,
    /// Memory in all, in bytes.
    pub memory_total_bytes: u64,
    /// NVIDIA GPUs (from `nvidia-smi`; none without it).
    pub gpus: Vec<GpuDescription>,
    /// The Docker engine's version, when one answers.
    pub docker_version: Option<String>,
    /// Each backend's program: where it was found, or that it was not.
    #[serde(default)]
    pub backends: Vec<BackendCommand>,
    /// What stops instances from running, with what to change.
    #[serde(default)]
    pub problems: Vec<SystemProblem>,
}

/// A backend's program as the server looks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendCommand {
    /// The backend (`llama_cpp`, `mlx_lm`, `vllm`).
    pub backend: String,
    /// The command looked for.
    pub command: String,
    /// Where it was found on this host, if it was (not looked for when the backend runs in
    /// Docker).
    pub path: Option<String>,
    /// The backend's instances run in Docker containers by default.
    pub docker: bool,
    /// The setting that names the command: the config file's key and its variable.
    pub setting: String,
}

/// Something that stops instances from running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemProblem {
    /// What is wrong, for people.
    pub what: String,
    /// What was looked for (a command).
    pub looked_for: String,
    /// What to change.
    pub setting: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_read_and_write_as_the_query_names_them() {
        for window in MetricsWindow::ALL {
            assert_eq!(window.as_str().parse::<MetricsWindow>(), Ok(window));
            assert_eq!(serde_json::to_value(window).unwrap(), window.as_str());
        }
        for wrong in ["", "15M", "1d", "60m", " 1h"] {
            assert_eq!(wrong.parse::<MetricsWindow>(), Err(WindowError(wrong.to_owned())), "{wrong:?}");
        }
    }
}
