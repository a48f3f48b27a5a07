//! The Docker Engine API calls the runtime makes, through bollard, and nothing else: each call
//! with the error handling it needs (a container that is already gone counts as removed), and
//! the engine's errors as [`ApiError`]. What to do with the answers is the engine's
//! ([`DockerEngine`](super::DockerEngine)) and the running container's business.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;

use super::spec::{self, ContainerSpec, LABEL_INSTANCE, LABEL_MANAGER, LABEL_OPTIONS_HASH};
use crate::ExitInfo;
use crate::logs::{LineSplitter, LogStore, LogStream};
use crate::resources::ContainerReading;
use crate::resources::container::memory_in_use;
use crate::runtime::RunExit;

/// Seconds any single engine request may take before it counts as failed (a stop waits for
/// its grace period inside one request, so this is longer than any grace period).
const REQUEST_TIMEOUT_SECONDS: u64 = 600;

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

/// An engine request that failed: the engine's HTTP status, if it answered, and what it said
/// (with every cause, for errors that are not the engine's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: Option<u16>,
    pub(crate) message: String,
}

impl From<DockerError> for ApiError {
    fn from(error: DockerError) -> Self {
        match error {
            DockerError::DockerResponseServerError { status_code, message } => {
                Self { status: Some(status_code), message: format!("{message} (HTTP {status_code})") }
            }
            other => {
                let mut message = other.to_string();
                let mut source = std::error::Error::source(&other);
                while let Some(cause) = source {
                    message = format!("{message}: {cause}");
                    source = cause.source();
                }
                Self { status: None, message }
            }
        }
    }
}

/// A client for the engine at `address` (`unix://`, `tcp://`, `http://` or `https://`; TLS
/// for `https://`, and for `tcp://` when `tls` says so, with `ca.pem`, `cert.pem` and `key.pem`
/// from `cert_dir`). Nothing is sent yet.
pub(crate) fn connect(address: &str, tls: bool, cert_dir: Option<&Path>) -> Result<Docker, String> {
    let version = bollard::API_DEFAULT_VERSION;
    let client = if address.starts_with("unix://") {
        Docker::connect_with_unix(address, REQUEST_TIMEOUT_SECONDS, version)
    } else if address.starts_with("https://") || (address.starts_with("tcp://") && tls) {
        // One TLS provider in the whole program: ring, installed unless the program did.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = cert_dir.ok_or_else(|| "no folder with ca.pem, cert.pem and key.pem".to_owned())?;
        Docker::connect_with_ssl(
            address,
            &dir.join("key.pem"),
            &dir.join("cert.pem"),
            &dir.join("ca.pem"),
            REQUEST_TIMEOUT_SECONDS,
            version,
        )
    } else if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(address, REQUEST_TIMEOUT_SECONDS, version)
    } else {
        return Err("unsupported address: use unix://PATH, tcp://HOST:PORT or https://HOST:PORT".into());
    };
    client.map_err(|e| ApiError::from(e).message)
}

/// Agrees with the engine on the API version (the first request to it).
pub(crate) async fn negotiate_version(client: Docker) -> Result<Docker, ApiError> {
    Ok(client.negotiate_version().await?)
}

/// The engine's version (`GET /version`).
pub(crate) async fn engine_version(client: &Docker) -> Result<String, ApiError> {
    Ok(client.version().await?.version.unwrap_or_default())
}

/// One reading of the container's stats (`GET /containers/{id}/stats?stream=false&one-shot=true`:
/// the engine answers at once, without waiting for a second reading of its own; the CPU
/// percentage comes from two of these, see [`crate::resources::container::cpu_percent`]).
pub(crate) async fn container_stats(client: &Docker, container: &str) -> Result<ContainerReading, ApiError> {
    let options = StatsOptionsBuilder::default().stream(false).one_shot(true).build();
    let mut answers = client.stats(container, Some(options));
    let Some(stats) = answers.next().await.transpose()? else {
        return Err(ApiError { status: None, message: format!("no stats for container {container}") });
    };
    let cpu = stats.cpu_stats.unwrap_or_default();
    let memory = stats.memory_stats.unwrap_or_default();
    Ok(ContainerReading {
        cpu_total_ns: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
        system_ns: cpu.system_cpu_usage,
        online_cpus: cpu.online_cpus.unwrap_or(0),
        memory_bytes: memory.usage.map(|usage| memory_in_use(usage, &memory.stats.unwrap_or_default())),
    })
}

/// The containers, running or not, labelled as made by `manager_id`.
pub(crate) async fn labelled_containers(client: &Docker, manager_id: &str) -> Result<Vec<LabelledContainer>, ApiError> {
    let filters = HashMap::from([("label".to_owned(), vec![format!("{LABEL_MANAGER}={manager_id}")])]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    let found = client.list_containers(Some(options)).await?;
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

/// The labels of the container called `name`, or `None` if there is no such container.
pub(crate) async fn labels_of(client: &Docker, name: &str) -> Result<Option<HashMap<String, String>>, ApiError> {
    match client.inspect_container(name, None).await {
        Ok(existing) => Ok(Some(existing.config.and_then(|c| c.labels).unwrap_or_default())),
        Err(error) => match ApiError::from(error) {
            ApiError { status: Some(404), .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// Creates the container `spec` describes; returns its id.
pub(crate) async fn create_container(client: &Docker, spec: &ContainerSpec) -> Result<String, ApiError> {
    let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
    Ok(client.create_container(Some(options), spec::create_body(spec)).await?.id)
}

/// Starts a created container.
pub(crate) async fn start_container(client: &Docker, id: &str) -> Result<(), ApiError> {
    Ok(client.start_container(id, None).await?)
}

/// Force-removes `container` (with its anonymous volumes); gone already is fine.
pub(crate) async fn remove_container(client: &Docker, container: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
    match client.remove_container(container, Some(options)).await.map_err(ApiError::from) {
        Ok(()) => Ok(()),
        Err(ApiError { status: Some(404), .. }) => Ok(()),
        // Already being removed by an earlier request.
        Err(ApiError { status: Some(409), message }) if message.contains("already in progress") => Ok(()),
        Err(error) => Err(format!("cannot remove container {container}: {}", error.message)),
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
    if let Err(error) = client.kill_container(container, Some(options)).await.map_err(ApiError::from)
        && error.status != Some(404)
        && error.status != Some(409)
    {
        tracing::warn!(container, error = %error.message, "cannot kill container");
    }
}

/// Waits for the container to stop running and returns its exit code and whether the kernel
/// killed it for lack of memory. Falls back to polling if the wait request fails.
pub(crate) async fn wait_exit(client: &Docker, container: &str) -> RunExit {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut waiting = client.wait_container(container, Some(options));
    let waited = match waiting.next().await {
        Some(Ok(_)) | Some(Err(DockerError::DockerContainerWaitError { .. })) => true,
        Some(Err(error)) => {
            tracing::warn!(container, error = %ApiError::from(error).message, "waiting for the container failed; polling");
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
                return RunExit {
                    exit: ExitInfo { code, signal: None },
                    oom_killed: state.oom_killed.unwrap_or(false),
                };
            }
            // Removed already (by a stop) or the engine went away: the exit is unknown.
            Err(error) => {
                tracing::warn!(container, error = %ApiError::from(error).message, "cannot read the container's exit");
                return RunExit::default();
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
                tracing::debug!(container, error = %ApiError::from(error).message, "container log stream ended");
                break;
            }
        }
    }
    out.flush(|line| logs.push(LogStream::Stdout, line));
    err.flush(|line| logs.push(LogStream::Stderr, line));
}
