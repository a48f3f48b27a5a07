//! The connection to a Docker engine, and what the manager asks of it: start a backend's
//! container, watch it, stop it, remove it, and find the containers an earlier manager left.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use tokio::sync::OnceCell;

use super::api::{self, ApiError, LabelledContainer};
use super::container::RunningContainer;
use super::settings::DockerSettings;
use super::spec::{self, ContainerNetwork, ContainerSpec, LABEL_MANAGER, LABEL_OPTIONS_HASH};
use crate::backend::{Listen, build_command, shell_quote};
use crate::logs::{LogStore, LogStream};
use crate::options::BackendOptions;
use crate::options::docker::DockerNetwork;
use crate::runtime::{AdoptError, BackendRun, Launch, LaunchError, RunIdentity, Runtime, RuntimeKind};
use crate::{InstanceName, TransitionReason};

/// Longest a container's creation and start may take.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The local engine's socket when neither the configuration nor `DOCKER_HOST` names one.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The Docker runtime: an engine connection made on first use (and retried after a failure, so
/// an engine that comes up later is found), and this manager's identity for its labels.
#[derive(Debug)]
pub struct DockerEngine {
    settings: DockerSettings,
    manager_id: String,
    client: OnceCell<Docker>,
}

/// Why the engine cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Docker engine at {address} is unreachable: {message}")]
pub struct EngineUnreachable {
    /// The address tried.
    pub address: String,
    /// What failed.
    pub message: String,
}

impl DockerEngine {
    /// A runtime for `settings`, labelling containers with `manager_id`. Nothing is contacted
    /// until it is used.
    pub fn new(settings: DockerSettings, manager_id: impl Into<String>) -> Self {
        Self { settings, manager_id: manager_id.into(), client: OnceCell::new() }
    }

    /// This manager's identity, as its containers' label carries it.
    pub fn manager_id(&self) -> &str {
        &self.manager_id
    }

    /// The engine address in use: the configured one, else `DOCKER_HOST`, else the local socket.
    pub fn address(&self) -> String {
        self.settings
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned())
    }

    fn cert_dir(&self) -> Option<PathBuf> {
        self.settings
            .cert_path
            .clone()
            .or_else(|| std::env::var_os("DOCKER_CERT_PATH").map(PathBuf::from))
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
    }

    /// The settings it runs containers with.
    pub fn settings(&self) -> &DockerSettings {
        &self.settings
    }

    fn unreachable(&self, message: String) -> EngineUnreachable {
        EngineUnreachable { address: self.address(), message }
    }

    /// The engine client, connecting (and agreeing on the API version) on first use.
    pub async fn client(&self) -> Result<&Docker, EngineUnreachable> {
        self.client
            .get_or_try_init(|| async {
                let tls =
                    self.settings.tls_verify || std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
                let client = api::connect(&self.address(), tls, self.cert_dir().as_deref())
                    .map_err(|message| self.unreachable(message))?;
                api::negotiate_version(client).await.map_err(|e| self.unreachable(e.message))
            })
            .await
    }

    /// The engine's version (what `docker version` calls the server's).
    ///
    /// ```no_run
    /// # async fn f(engine: &llamactl_core::docker::DockerEngine) -> Result<(), llamactl_core::docker::EngineUnreachable> {
    /// println!("Docker {}", engine.version().await?);
    /// # Ok(()) }
    /// ```
    pub async fn version(&self) -> Result<String, EngineUnreachable> {
        let client = self.client().await?;
        api::engine_version(client).await.map_err(|e| self.unreachable(e.message))
    }

    /// One reading of a container's CPU time and memory (the engine's one-shot stats); the
    /// error says what the engine answered (a container that is gone, say).
    ///
    /// ```no_run
    /// # async fn f(engine: &llamactl_core::docker::DockerEngine) -> Result<(), String> {
    /// let reading = engine.container_reading("llamactl-a-1").await?;
    /// println!("{:?} bytes", reading.memory_bytes);
    /// # Ok(()) }
    /// ```
    pub async fn container_reading(&self, container: &str) -> Result<crate::resources::ContainerReading, String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        api::container_stats(client, container).await.map_err(|e| e.message)
    }

    /// The containers carrying this manager's label, running or not.
    pub async fn labelled_containers(&self) -> Result<Vec<LabelledContainer>, EngineUnreachable> {
        let client = self.client().await?;
        api::labelled_containers(client, &self.manager_id).await.map_err(|e| self.unreachable(e.message))
    }

    /// Force-removes a container; a container that is already gone counts as removed.
    pub async fn remove(&self, container: &str) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        api::remove_container(client, container).await
    }

    /// Removes every container this manager left (at boot, before anything starts), and
    /// returns them.
    pub async fn remove_leftovers(&self) -> Result<Vec<LabelledContainer>, EngineUnreachable> {
        let leftovers = self.labelled_containers().await?;
        for container in &leftovers {
            tracing::warn!(container = %container.name, instance = %container.instance, state = %container.state,
                "removing a container left by an earlier manager");
            if let Err(error) = self.remove(&container.id).await {
                tracing::error!(container = %container.name, %error, "cannot remove leftover container");
            }
        }
        Ok(leftovers)
    }

    /// The resolved container for `launch`: image, entrypoint, command, environment, labels,
    /// network and mounts from the backend's settings overlaid with the instance's own.
    pub fn container_spec(&self, launch: Launch<'_>) -> Result<ContainerSpec, LaunchError> {
        let options = launch.options;
        let backend_type = options.backend.backend_type();
        let Some(configured) = self.settings.for_backend(backend_type) else {
            return Err(LaunchError::refused(format!("docker_enabled: {backend_type} has no Docker mode")));
        };
        let own = options.docker.clone().unwrap_or_default();
        let run = configured.run.overlay(&own);
        let network = run.network.unwrap_or(DockerNetwork::Bridge);
        // In a bridge network the backend listens on every address of the container; the
        // engine publishes its port on the host address clients use.
        let inside = match network {
            DockerNetwork::Host => launch.listen.clone(),
            DockerNetwork::Bridge => Listen { host: "0.0.0.0".into(), port: launch.listen.port },
        };
        let Some(command) = build_command(launch.name, options, launch.backends, &inside) else {
            return Err(LaunchError::refused("no command to run"));
        };
        let entrypoint = match (&options.backend, run.entrypoint.clone()) {
            (_, Some(entrypoint)) => Some(entrypoint),
            // A custom backend's command is the program inside its image.
            (BackendOptions::Custom(custom), None) => custom.command.clone().map(|c| vec![c]),
            (_, None) => None,
        };
        let Some(image) = run.image.clone() else {
            return Err(LaunchError::refused(format!(
                "docker.image: no image for a {backend_type} container; give one in the instance's docker options or in backends.{}.docker.image",
                super::settings::config_key(backend_type)
            )));
        };
        // Configured environment, then the backend's, then the instance's own: the instance wins.
        let mut env = run.environment.clone();
        env.extend(command.environment);
        // The fingerprint covers what runs only: a new description or idle timeout does not
        // make the container look changed at the next adoption.
        let options_json = serde_json::to_string(&options.run_part()).unwrap_or_default();
        Ok(ContainerSpec {
            name: spec::container_name(&self.manager_id, launch.name),
            image,
            entrypoint,
            cmd: command.args,
            env,
            labels: spec::labels(&self.manager_id, launch.name, &options_json),
            network: match network {
                DockerNetwork::Host => ContainerNetwork::Host,
                DockerNetwork::Bridge => ContainerNetwork::Publish {
                    host_ip: launch.listen.host.clone(),
                    host_port: launch.listen.port,
                    container_port: launch.listen.port,
                },
            },
            volumes: run.volumes.clone(),
            gpus: run.gpus.clone(),
            shm_size: run.shm_size.map(|s| s.bytes()),
            memory: run.memory.map(|s| s.bytes()),
        })
    }

    async fn create_and_start(
        &self,
        launch: Launch<'_>,
        spec: &ContainerSpec,
        logs: Arc<LogStore>,
    ) -> Result<Box<dyn BackendRun>, LaunchError> {
        let spawn_failed =
            |message: String| LaunchError { reason: TransitionReason::SpawnFailed { error: message.clone() }, message };
        let client = self.client().await.map_err(|e| spawn_failed(e.to_string()))?;
        self.clear_name(client, &spec.name, launch.name).await.map_err(spawn_failed)?;
        logs.push(
            LogStream::Manager,
            format!(
                "starting container {} from {}: {}",
                spec.name,
                shell_quote(&spec.image),
                spec.cmd.iter().map(|arg| shell_quote(arg)).collect::<Vec<_>>().join(" ")
            ),
        );
        let id = match api::create_container(client, spec).await {
            Ok(id) => id,
            Err(ApiError { status: Some(404), message }) => {
                return Err(spawn_failed(format!(
                    "image {} is not on the Docker engine at {}: get it with `docker pull {0}` (or `docker load` it on machines without a registry), or set another image ({message})",
                    spec.image,
                    self.address(),
                )));
            }
            Err(error) => {
                return Err(spawn_failed(format!("cannot create container {}: {}", spec.name, error.message)));
            }
        };
        if let Err(ApiError { message, .. }) = api::start_container(client, &id).await {
            let _ = api::remove_container(client, &id).await;
            let port = match &spec.network {
                ContainerNetwork::Publish { host_port, .. } => Some(*host_port),
                ContainerNetwork::Host => None,
            };
            let taken = message.contains("port is already allocated") || message.contains("address already in use");
            return Err(match port {
                Some(port) if taken => LaunchError {
                    reason: TransitionReason::PortUnavailable { port },
                    message: format!("cannot publish port {port} of container {}: {message}", spec.name),
                },
                _ => spawn_failed(format!("cannot start container {}: {message}", spec.name)),
            });
        }
        let options_hash = spec.labels.get(LABEL_OPTIONS_HASH).cloned().unwrap_or_default();
        Ok(Box::new(RunningContainer::follow(client.clone(), id, spec.name.clone(), options_hash, logs, None)))
    }

    /// Makes `name` free: removes a container of ours by that name (left by an earlier run), and
    /// refuses to touch one that is not ours.
    async fn clear_name(&self, client: &Docker, name: &str, instance: &str) -> Result<(), String> {
        let labels = match api::labels_of(client, name).await {
            Ok(Some(labels)) => labels,
            Ok(None) => return Ok(()),
            Err(error) => return Err(format!("cannot inspect container {name}: {}", error.message)),
        };
        if labels.get(LABEL_MANAGER).map(String::as_str) != Some(self.manager_id.as_str()) {
            return Err(format!(
                "a container named {name} exists and was not made by this llamactl; remove or rename it (docker rm {name})"
            ));
        }
        tracing::warn!(container = name, instance, "removing an earlier container of this instance");
        api::remove_container(client, name).await
    }

    /// The container name an instance gets (for tests and tools).
    pub fn container_name_of(&self, instance: &InstanceName) -> String {
        spec::container_name(&self.manager_id, instance.as_str())
    }
}

#[async_trait]
impl Runtime for DockerEngine {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Docker
    }

    /// Creates and starts the instance's container, its output followed into `logs`. An engine
    /// that does not answer within a minute fails the launch rather than holding the instance.
    async fn launch(&self, launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError> {
        let spec = self.container_spec(launch)?;
        match tokio::time::timeout(LAUNCH_TIMEOUT, self.create_and_start(launch, &spec, logs)).await {
            Ok(result) => result,
            Err(_) => {
                // Whatever was created is removed, in the background.
                if let Ok(client) = self.client().await {
                    let client = client.clone();
                    let name = spec.name.clone();
                    tokio::spawn(async move { api::remove_container(&client, &name).await });
                }
                let message = format!(
                    "the Docker engine at {} did not create and start container {} within {LAUNCH_TIMEOUT:?}",
                    self.address(),
                    spec.name
                );
                Err(LaunchError { reason: TransitionReason::SpawnFailed { error: message.clone() }, message })
            }
        }
    }

    /// Takes over a running container of this manager: its exit watched and its output
    /// followed from the time of the last line in `logs`.
    async fn adopt(&self, run: RunIdentity, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, AdoptError> {
        let RunIdentity::Container { id, name, options_hash } = run else {
            return Err(AdoptError::OtherRuntime { run: run.to_string(), runtime: RuntimeKind::Docker });
        };
        let client = self.client().await.map_err(|e| AdoptError::Unavailable(e.to_string()))?;
        let since = logs.tail(1).first().map(|line| line.at.timestamp());
        Ok(Box::new(RunningContainer::follow(client.clone(), id, name, options_hash, logs, since)))
    }
}
