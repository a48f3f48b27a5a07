//! Backends as Docker containers, driven through the Docker Engine API (bollard), never the
//! `docker` command: how a container is run ([`options`]), the request that creates it
//! ([`spec`]), the runtime ([`DockerEngine`]: the engine connection, launch and takeover), the
//! Engine API calls it makes (`api`, the only file that calls bollard's requests) and a running
//! container ([`RunningContainer`]).
//!
//! A container gets a deterministic name (`llamactl-<instance>-<manager id>`) and labels
//! (manager id, instance, options hash). In the default bridge network the backend's port is
//! published on the host address the instance listens on (127.0.0.1 unless its options say
//! otherwise), so instances never collide and are not exposed beyond the host. A stop is the
//! engine's stop with the grace period, then a kill, then removal; a container is never left
//! behind, and those an earlier manager left are removed at boot (found by label).

mod api;
mod container;
mod engine;
pub mod options;
mod settings;
pub mod spec;

pub use api::LabelledContainer;
pub use container::RunningContainer;
pub use engine::{DockerEngine, EngineUnreachable};
pub use options::{ByteSize, DockerNetwork, DockerRunOptions, GpuRequest};
pub use settings::{BackendDocker, DockerSettings, config_key};
