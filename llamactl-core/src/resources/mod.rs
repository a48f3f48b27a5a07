//! What the host and each running instance use: CPU, memory, load and GPUs, read from procfs,
//! the Docker engine and `nvidia-smi`, and what the host is ([`SystemInfo`]).
//!
//! Readings are cumulative counters; a percentage is a pure function of two readings
//! ([`host::cpu_percent`], [`process_group::cpu_percent`], [`container::cpu_percent`]). A
//! [`Sampler`] keeps the previous readings and turns each tick into
//! [`ResourceSample`](crate::db::ResourceSample)s for the
//! [`ResourceHistoryStore`](crate::db::ResourceHistoryStore).

pub mod container;
pub mod gpu;
pub mod host;
pub mod process_group;
pub mod sampler;
pub mod system_info;

pub use container::ContainerReading;
pub use gpu::{GpuParseError, GpuReading};
pub use host::{CpuTimes, HostReading};
pub use process_group::GroupReading;
pub use sampler::{SampleTarget, Sampler, Tick};
pub use system_info::{GpuInfo, SystemInfo};

/// A reading that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// A file of `/proc` could not be read or parsed.
    #[error("cannot read {what}: {message}")]
    Proc {
        /// What was read (`/proc/stat`, ...).
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// `nvidia-smi` failed, timed out or printed what cannot be read.
    #[error("nvidia-smi: {0}")]
    Gpu(String),
}

impl ResourceError {
    fn proc(what: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Proc { what, message: error.to_string() }
    }
}
