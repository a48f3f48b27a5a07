//! The runtimes of one manager, and the one decision of which runtime runs an instance.

use super::{Runtime, RuntimeKind};
use crate::InstanceOptions;
use crate::docker::DockerEngine;
use crate::process::LocalProcesses;

/// Every runtime a manager runs backends with. Which one runs an instance is decided here and
/// nowhere else ([`kind_for`](Self::kind_for)); the supervisor then launches and takes over
/// through the [`Runtime`] it is given, without knowing which it is.
///
/// ```
/// use llamactl_core::InstanceOptions;
/// use llamactl_core::docker::{DockerEngine, DockerSettings};
/// use llamactl_core::runtime::{RuntimeKind, Runtimes};
///
/// // Nothing is contacted until a container is launched.
/// let runtimes = Runtimes::new(DockerEngine::new(DockerSettings::default(), "manager-1"));
/// let local = InstanceOptions::from_json(r#"{"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf"}}"#)?;
/// assert_eq!(runtimes.kind_for(&local), RuntimeKind::Process);
/// let boxed = InstanceOptions::from_json(
///     r#"{"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf"},"docker_enabled":true}"#,
/// )?;
/// assert_eq!(runtimes.for_options(&boxed).kind(), RuntimeKind::Docker);
/// # Ok::<(), llamactl_core::OptionsError>(())
/// ```
#[derive(Debug)]
pub struct Runtimes {
    process: LocalProcesses,
    docker: DockerEngine,
}

impl Runtimes {
    /// Local processes, and containers on `docker` (connected on first use).
    pub fn new(docker: DockerEngine) -> Self {
        Self { process: LocalProcesses, docker }
    }

    /// Which runtime runs an instance with `options`: a container when its options or its
    /// backend's Docker settings ask for one ([`DockerSettings::wanted`]), else a local
    /// process.
    ///
    /// [`DockerSettings::wanted`]: crate::docker::DockerSettings::wanted
    pub fn kind_for(&self, options: &InstanceOptions) -> RuntimeKind {
        if self.docker.settings().wanted(options) { RuntimeKind::Docker } else { RuntimeKind::Process }
    }

    /// The runtime of `kind`.
    pub fn get(&self, kind: RuntimeKind) -> &dyn Runtime {
        match kind {
            RuntimeKind::Process => &self.process,
            RuntimeKind::Docker => &self.docker,
        }
    }

    /// The runtime that runs an instance with `options` (see [`kind_for`](Self::kind_for)).
    pub fn for_options(&self, options: &InstanceOptions) -> &dyn Runtime {
        self.get(self.kind_for(options))
    }

    /// The Docker runtime (its manager id labels this manager's containers).
    pub fn docker(&self) -> &DockerEngine {
        &self.docker
    }
}
