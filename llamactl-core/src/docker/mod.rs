//! Backends as Docker containers, driven through the Docker Engine API (bollard), never the
//! `docker` command: the request that creates a container ([`spec`]), the runtime
//! ([`DockerEngine`]: the engine connection, launch and takeover), the Engine API calls it makes
//! (`api`, the only file that calls bollard's requests) and a running container
//! ([`RunningContainer`]). How a container is run is an instance option: [`DockerRunOptions`]
//! and its parts are defined in [`crate::options::docker`] and re-exported here.
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
mod settings;
pub mod spec;

/// The former home of the run options, kept so that `docker::options::...` paths still work.
pub use crate::options::docker as options;

pub use crate::options::docker::{ByteSize, DockerNetwork, DockerRunOptions, GpuRequest};
pub use api::LabelledContainer;
pub use container::RunningContainer;
pub use engine::{DockerEngine, EngineUnreachable};
pub use settings::{BackendDocker, DockerSettings, config_key};
