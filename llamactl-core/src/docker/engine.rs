//! The connection to a Docker engine, and what the manager asks of it: start a backend's
//! container, watch it, stop it, remove it, and find the containers an earlier manager left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

use super::container::RunningContainer;
use super::options::DockerNetwork;
use super::settings::DockerSettings;
use super::spec::{self, ContainerNetwork, ContainerSpec, LABEL_INSTANCE, LABEL_MANAGER, LABEL_OPTIONS_HASH};
use crate::backend::{Listen, build_command, shell_quote};
use crate::logs::{LineSplitter, LogStore, LogStream};
use crate::options::BackendOptions;
use crate::runtime::{BackendRun, Launch, LaunchError};
use crate::{InstanceName, TransitionReason};
use bollard::container::LogOutput;

/// Seconds any single engine request may take before it counts as failed (a stop waits for
/// its grace period inside one request, so this is longer than any grace period).
const REQUEST_TIMEOUT_SECONDS: u64 = 600;
/// Longest a container's creation and start may take.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The local engine's socket when neither the configuration nor `DOCKER_HOST` names one.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A container found on the engine with this manager's label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledContainer {
    /// Container id.
    pub id: String,
    /// Container name (without Docker's leading `/`).
    pub name: String,
    /// The instance it belongs to.
    pub instance: String,
    /// Engine state: `running`, `exited`, `created`, ...
    pub state: String,
    /// Hash of the options it was created with (its label).
    pub options_hash: String,
}

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

fn message_of(error: &DockerError) -> String {
    match error {
        DockerError::DockerResponseServerError { status_code, message } => format!("{message} (HTTP {status_code})"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    }
}

fn status_of(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
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

    fn connect_now(&self) -> Result<Docker, EngineUnreachable> {
        let address = self.address();
        let unreachable = |message: String| EngineUnreachable { address: address.clone(), message };
        let version = bollard::API_DEFAULT_VERSION;
        let tls_wanted =
            self.settings.tls_verify || std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let client = if address.starts_with("unix://") {
            Docker::connect_with_unix(&address, REQUEST_TIMEOUT_SECONDS, version)
        } else if address.starts_with("https://") || (address.starts_with("tcp://") && tls_wanted) {
            // One TLS provider in the whole program: ring, installed unless the program did.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let dir =
                self.cert_dir().ok_or_else(|| unreachable("no folder with ca.pem, cert.pem and key.pem".into()))?;
            Docker::connect_with_ssl(
                &address,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                REQUEST_TIMEOUT_SECONDS,
                version,
            )
        } else if address.starts_with("tcp://") || address.starts_with("http://") {
            Docker::connect_with_http(&address, REQUEST_TIMEOUT_SECONDS, version)
        } else {
            return Err(unreachable(
                "unsupported address: use unix://PATH, tcp://HOST:PORT or https://HOST:PORT".into(),
            ));
        };
        client.map_err(|e| unreachable(message_of(&e)))
    }

    /// The engine client, connecting (and agreeing on the API version) on first use.
    pub async fn client(&self) -> Result<&Docker, EngineUnreachable> {
        self.client
            .get_or_try_init(|| async {
                let client = self.connect_now()?;
                client
                    .negotiate_version()
                    .await
                    .map_err(|e| EngineUnreachable { address: self.address(), message: message_of(&e) })
            })
            .await
    }

    /// The containers carrying this manager's label, running or not.
    pub async fn labelled_containers(&self) -> Result<Vec<LabelledContainer>, EngineUnreachable> {
        let client = self.client().await?;
        let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGER}={}", self.manager_id)])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let found = client
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineUnreachable { address: self.address(), message: message_of(&e) })?;
        Ok(found
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                LabelledContainer {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .map(|n| n.trim_start_matches('/').to_owned())
                        .unwrap_or_default(),
                    instance: labels.get(LABEL_INSTANCE).cloned().unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    options_hash: labels.get(LABEL_OPTIONS_HASH).cloned().unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Force-removes a container; a container that is already gone counts as removed.
    pub async fn remove(&self, container: &str) -> Result<(), String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        remove_container(client, container).await
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
        let options_json = serde_json::to_string(options).unwrap_or_default();
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

    /// Creates and starts the instance's container, its output followed into `logs`. An engine
    /// that does not answer within a minute fails the launch rather than holding the instance.
    pub async fn launch(&self, launch: Launch<'_>, logs: Arc<LogStore>) -> Result<Box<dyn BackendRun>, LaunchError> {
        let spec = self.container_spec(launch)?;
        match tokio::time::timeout(LAUNCH_TIMEOUT, self.create_and_start(launch, &spec, logs)).await {
            Ok(result) => result,
            Err(_) => {
                // Whatever was created is removed, in the background.
                if let Ok(client) = self.client().await {
                    let client = client.clone();
                    let name = spec.name.clone();
                    tokio::spawn(async move { remove_container(&client, &name).await });
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
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = match client.create_container(Some(options), spec::create_body(spec)).await {
            Ok(created) => created,
            Err(error) if status_of(&error) == Some(404) => {
                return Err(spawn_failed(format!(
                    "image {} is not on the Docker engine at {}: get it with `docker pull {0}` (or `docker load` it on machines without a registry), or set another image ({})",
                    spec.image,
                    self.address(),
                    message_of(&error)
                )));
            }
            Err(error) => {
                return Err(spawn_failed(format!("cannot create container {}: {}", spec.name, message_of(&error))));
            }
        };
        if let Err(error) = client.start_container(&created.id, None).await {
            let message = message_of(&error);
            let _ = remove_container(client, &created.id).await;
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
        Ok(Box::new(RunningContainer::follow(client.clone(), created.id, spec.name.clone(), options_hash, logs, None)))
    }

    /// Takes over a running container of this manager: its exit watched and its output
    /// followed from `since` (unix seconds).
    pub(crate) async fn adopt(
        &self,
        id: String,
        name: String,
        options_hash: String,
        logs: Arc<LogStore>,
        since: Option<i64>,
    ) -> Result<Box<dyn BackendRun>, String> {
        let client = self.client().await.map_err(|e| e.to_string())?;
        Ok(Box::new(RunningContainer::follow(client.clone(), id, name, options_hash, logs, since)))
    }

    /// Makes `name` free: removes a container of ours by that name (left by an earlier run), and
    /// refuses to touch one that is not ours.
    async fn clear_name(&self, client: &Docker, name: &str, instance: &str) -> Result<(), String> {
        let existing = match client.inspect_container(name, None).await {
            Ok(existing) => existing,
            Err(error) if status_of(&error) == Some(404) => return Ok(()),
            Err(error) => return Err(format!("cannot inspect container {name}: {}", message_of(&error))),
        };
        let labels = existing.config.and_then(|c| c.labels).unwrap_or_default();
        if labels.get(LABEL_MANAGER).map(String::as_str) != Some(self.manager_id.as_str()) {
            return Err(format!(
                "a container named {name} exists and was not made by this llamactl; remove or rename it (docker rm {name})"
            ));
        }
        tracing::warn!(container = name, instance, "removing an earlier container of this instance");
        remove_container(client, name).await
    }
}

/// Force-removes `container` (with its anonymous volumes); gone already is fine.
pub(crate) async fn remove_container(client: &Docker, container: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match client.remove_container(container, Some(options)).await {
        Ok(()) => Ok(()),
        Err(error) if status_of(&error) == Some(404) => Ok(()),
        // Already being removed by an earlier request.
        Err(error) if status_of(&error) == Some(409) && message_of(&error).contains("already in progress") => Ok(()),
        Err(error) => Err(format!("cannot remove container {container}: {}", message_of(&error))),
    }
}

/// `docker stop` with `grace`, bounded by `bound`; `false` if it did not complete.
pub(crate) async fn stop_container(client: &Docker, container: &str, grace: Duration, bound: Duration) -> bool {
    let seconds = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
    let options = StopContainerOptionsBuilder::default().t(seconds).build();
    matches!(tokio::time::timeout(bound, client.stop_container(container, Some(options))).await, Ok(Ok(())))
}

/// SIGKILL to the container's processes.
pub(crate) async fn kill_container(client: &Docker, container: &str) {
    let options = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
    if let Err(error) = client.kill_container(container, Some(options)).await
        && status_of(&error) != Some(404)
        && status_of(&error) != Some(409)
    {
        tracing::warn!(container, error = %message_of(&error), "cannot kill container");
    }
}

/// Waits for the container to stop running and returns its exit code and whether the kernel
/// killed it for lack of memory. Falls back to polling if the wait request fails.
pub(crate) async fn wait_exit(client: &Docker, container: &str) -> crate::runtime::RunExit {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut waiting = client.wait_container(container, Some(options));
    let waited = match waiting.next().await {
        Some(Ok(_)) | Some(Err(DockerError::DockerContainerWaitError { .. })) => true,
        Some(Err(error)) => {
            tracing::warn!(container, error = %message_of(&error), "waiting for the container failed; polling");
            false
        }
        None => false,
    };
    loop {
        match client.inspect_container(container, None).await {
            Ok(inspected) => {
                let state = inspected.state.unwrap_or_default();
                if !waited && state.running == Some(true) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                let code = state.exit_code.and_then(|c| i32::try_from(c).ok());
                return crate::runtime::RunExit {
                    exit: crate::ExitInfo { code, signal: None },
                    oom_killed: state.oom_killed.unwrap_or(false),
                };
            }
            // Removed already (by a stop) or the engine went away: the exit is unknown.
            Err(error) => {
                tracing::warn!(container, error = %message_of(&error), "cannot read the container's exit");
                return crate::runtime::RunExit::default();
            }
        }
    }
}

/// Follows the container's output into `logs`, line by line, until the container ends;
/// `since` (unix seconds) skips what was logged before.
pub(crate) async fn follow_logs(client: Docker, container: String, logs: Arc<LogStore>, since: Option<i64>) {
    let mut options = LogsOptionsBuilder::default().follow(true).stdout(true).stderr(true);
    if let Some(since) = since {
        options = options.since(i32::try_from(since).unwrap_or(i32::MAX));
    }
    let mut stream = client.logs(&container, Some(options.build()));
    let (mut out, mut err) = (LineSplitter::default(), LineSplitter::default());
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.feed(&message, |line| logs.push(LogStream::Stdout, line));
            }
            Ok(LogOutput::StdErr { message }) => err.feed(&message, |line| logs.push(LogStream::Stderr, line)),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(error) => {
                tracing::debug!(container, error = %message_of(&error), "container log stream ended");
                break;
            }
        }
    }
    out.flush(|line| logs.push(LogStream::Stdout, line));
    err.flush(|line| logs.push(LogStream::Stderr, line));
}

impl DockerEngine {
    /// The container name an instance gets (for tests and tools).
    pub fn container_name_of(&self, instance: &InstanceName) -> String {
        spec::container_name(&self.manager_id, instance.as_str())
    }
}
