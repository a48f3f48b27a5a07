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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::docker::{BackendDocker, DockerSettings};
    use crate::logs::LogStore;
    use crate::process::ProcessIdentity;
    use crate::runtime::{AdoptError, RunIdentity};

    fn options(json: &str) -> InstanceOptions {
        InstanceOptions::from_json(json).unwrap()
    }

    fn runtimes(settings: DockerSettings) -> Runtimes {
        // An address nothing answers on: no test here may reach an engine.
        let settings = DockerSettings { host: Some("tcp://127.0.0.1:9".into()), ..settings };
        Runtimes::new(DockerEngine::new(settings, "test-manager"))
    }

    fn logs() -> Arc<LogStore> {
        Arc::new(LogStore::new(None, 10, Default::default()))
    }

    #[test]
    fn the_instance_or_its_backend_settings_choose_the_runtime() {
        let llama = r#"{"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf"}"#;
        let plain = options(&format!("{llama}}}"));
        let boxed = options(&format!(r#"{llama},"docker_enabled":true}}"#));
        let unboxed = options(&format!(r#"{llama},"docker_enabled":false}}"#));
        let default = runtimes(DockerSettings::default());
        assert_eq!(default.kind_for(&plain), RuntimeKind::Process);
        assert_eq!(default.kind_for(&boxed), RuntimeKind::Docker);
        assert_eq!(default.kind_for(&unboxed), RuntimeKind::Process);
        let enabled = DockerSettings::default();
        let enabled = runtimes(DockerSettings {
            llama_cpp: BackendDocker { enabled: true, ..enabled.llama_cpp.clone() },
            ..enabled
        });
        assert_eq!(enabled.kind_for(&plain), RuntimeKind::Docker);
        assert_eq!(enabled.kind_for(&unboxed), RuntimeKind::Process, "the instance's own choice wins");
        for kind in [RuntimeKind::Process, RuntimeKind::Docker] {
            assert_eq!(enabled.get(kind).kind(), kind);
        }
        assert_eq!(enabled.for_options(&plain).kind(), RuntimeKind::Docker);
    }

    #[tokio::test]
    async fn a_runtime_refuses_to_take_over_a_run_that_is_not_its_own() {
        let runtimes = runtimes(DockerSettings::default());
        let container =
            RunIdentity::Container { id: "c0ffee".into(), name: "llamactl-a".into(), options_hash: "h".into() };
        let process = |output: Option<&str>| RunIdentity::Process {
            identity: ProcessIdentity { pid: i32::MAX, start_ticks: 1, boot_id: None },
            command_hash: "h".into(),
            output: output.map(Into::into),
        };
        let local = runtimes.get(RuntimeKind::Process);
        let error = local.adopt(container, logs()).await.unwrap_err();
        assert_eq!(
            error,
            AdoptError::OtherRuntime { run: "container llamactl-a".into(), runtime: RuntimeKind::Process }
        );
        assert_eq!(local.adopt(process(None), logs()).await.unwrap_err(), AdoptError::NoOutputFile);
        let docker = runtimes.get(RuntimeKind::Docker);
        let error = docker.adopt(process(Some("/tmp/a.output")), logs()).await.unwrap_err();
        assert_eq!(error.to_string(), format!("process {} is not run by the Docker runtime", i32::MAX));
    }
}
