//! Starting a backend: checking that the instance can run here, leasing its port, launching it
//! through its runtime, and probing its readiness until it is `running` (or its startup time is
//! over).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{AbortOnDrop, Actor, Run};
use crate::backend::Listen;
use crate::logs::LogStream;
use crate::manager::error::ManagerError;
use crate::manager::slots::SlotReservation;
use crate::manager::state::Serving;
use crate::ports::PortError;
use crate::runtime::{Launch, LaunchError};
use crate::{DesiredState, InstanceOptions, InstanceStatus, TransitionReason};

/// Longest a single readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The URL the readiness probe asks, or why there is none.
fn readiness_uri(options: &InstanceOptions, listen: &Listen) -> Result<hyper::Uri, String> {
    let url = format!("{}{}", listen.base_url(), options.backend.as_backend().readiness_path());
    url.parse::<hyper::Uri>().map_err(|error| format!("invalid readiness URL {url:?}: {error}"))
}

impl Actor {
    /// The file a local process of this instance writes its output to (`None`: no logs folder).
    pub(super) fn output_path(&self) -> Option<std::path::PathBuf> {
        self.ctx.config().logs_dir.as_ref().map(|dir| dir.join(format!("{}.output", self.name)))
    }

    /// Checks that the instance can run here at all.
    fn runnable(&self) -> Result<Arc<InstanceOptions>, ManagerError> {
        let unsupported = |reason: String| ManagerError::Unsupported { name: self.name.to_string(), reason };
        let options = match &self.state.options {
            Ok(options) => options.clone(),
            Err(error) => return Err(unsupported(format!("its stored options are invalid: {error}"))),
        };
        if !options.nodes.is_empty() && !options.nodes.iter().any(|n| *n == self.ctx.config().local_node) {
            return Err(unsupported(format!(
                "nodes: assigned to {} and this is node {}; remote nodes are not supported",
                options.nodes.join(", "),
                self.ctx.config().local_node
            )));
        }
        Ok(options)
    }

    /// A start asked for (by a user, on demand, at boot): a new series of restarts.
    pub(super) async fn start(&mut self, reason: TransitionReason, slot: SlotReservation) -> Result<(), ManagerError> {
        self.runnable()?;
        self.state.runtime.restart_count = 0;
        self.state.runtime.desired_state = DesiredState::Running;
        self.restart_due = None;
        self.spawn(reason, Some(slot), false).await
    }

    /// Spawns a process and enters `starting`. On failure the instance is `failed` with the
    /// reason recorded, and the error says why.
    pub(super) async fn spawn(
        &mut self,
        reason: TransitionReason,
        slot: Option<SlotReservation>,
        automatic: bool,
    ) -> Result<(), ManagerError> {
        if let Some(slot) = slot {
            slot.commit();
        }
        self.state.attempt += 1;
        let options = match self.runnable() {
            Ok(options) => options,
            Err(error) => {
                self.fail(TransitionReason::Refused { error: error.to_string() }, error.to_string()).await;
                return Err(error);
            }
        };
        let settings = self.ctx.config().defaults.apply(&options);
        let host = options.backend.host().unwrap_or(&self.ctx.config().backend_host).to_owned();
        let pinned = options.backend.pinned_port();
        let port = match self.ctx.ports.lease(self.name.as_str(), pinned, &host) {
            Ok(port) => port,
            Err(error) => {
                let reason = match &error {
                    PortError::InUse { port, .. } | PortError::Conflict { port, .. } => {
                        TransitionReason::PortUnavailable { port: *port }
                    }
                    PortError::Exhausted { .. } => TransitionReason::Refused { error: error.to_string() },
                };
                self.fail(reason, error.to_string()).await;
                return Err(error.into());
            }
        };
        let listen = Listen { host, port: port.port() };
        // Options stored before validation covered it may give a readiness URL that cannot be
        // built: the probe could never run, so the start fails now instead of at its timeout.
        if let Err(error) = readiness_uri(&options, &listen) {
            return Err(self.start_failed(TransitionReason::Refused { error: error.clone() }, error).await);
        }
        let output = self.output_path();
        let launch = Launch {
            name: self.name.as_str(),
            options: &options,
            listen: &listen,
            backends: &self.ctx.config().backends,
            output: output.as_deref(),
        };
        let process = match self.ctx.runtime.for_options(&options).launch(launch, self.logs.clone()).await {
            Ok(process) => process,
            Err(LaunchError { reason, message }) => return Err(self.start_failed(reason, message).await),
        };

        let (ready, probe) = self.start_probe(&options, &listen);
        let runtime = &mut self.state.runtime;
        process.identity().record_in(runtime);
        runtime.port = Some(listen.port);
        runtime.started_at = Some(Utc::now());
        runtime.ready_at = None;
        runtime.last_error = None;
        self.state.listen = Some(listen);
        self.state.serving = Some(Serving::of(&options));
        self.run = Some(Run {
            process,
            _port: port,
            ready,
            probe,
            startup_deadline: Instant::now() + settings.startup_timeout,
            automatic,
        });
        self.transition(InstanceStatus::Starting, reason).await;
        Ok(())
    }

    /// A start that could not spawn its backend: logged, recorded as `failed`, and the error
    /// for the caller.
    async fn start_failed(&mut self, reason: TransitionReason, message: String) -> ManagerError {
        self.logs.push(LogStream::Manager, format!("cannot start: {message}"));
        self.fail(reason.clone(), message.clone()).await;
        ManagerError::StartFailed { name: self.name.to_string(), reason, detail: message, retry_after: None }
    }

    /// Probes the readiness endpoint until it answers; the receiver fires then.
    pub(super) fn start_probe(
        &self,
        options: &InstanceOptions,
        listen: &Listen,
    ) -> (Option<oneshot::Receiver<()>>, Option<AbortOnDrop>) {
        let (ready_tx, ready_rx) = oneshot::channel();
        let probe = self.ctx.probe.clone();
        let interval = self.ctx.config().readiness_interval;
        match readiness_uri(options, listen) {
            Ok(uri) => {
                let task = tokio::spawn(async move {
                    while !probe.check(&uri, PROBE_TIMEOUT).await {
                        tokio::time::sleep(interval).await;
                    }
                    let _ = ready_tx.send(());
                });
                (Some(ready_rx), Some(AbortOnDrop(task)))
            }
            Err(error) => {
                // Refused before a spawn; for a backend taken over, the startup timeout reports it.
                tracing::error!(instance = %self.name, %error, "invalid readiness URL");
                (Some(ready_rx), None)
            }
        }
    }

    /// The readiness endpoint answered: `running`, and requests may enter.
    pub(super) async fn on_ready(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.ready = None;
            run.probe = None;
        }
        self.state.runtime.ready_at = Some(Utc::now());
        self.activity.open();
        self.transition(InstanceStatus::Running, TransitionReason::Ready).await;
    }

    /// Not ready within `startup_timeout`: the backend is stopped and the instance `failed`.
    pub(super) async fn on_startup_timeout(&mut self) {
        let after = self.settings().map(|s| s.startup_timeout).unwrap_or_default();
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.logs.push(LogStream::Manager, format!("not ready after {after:?}; stopping"));
        let exit = self.kill_run().await;
        let (tail, _) = self.finish_run(exit.exit).await;
        let message = format!("readiness endpoint did not answer within {after:?}; last output:\n{tail}");
        self.fail(TransitionReason::HealthTimeout { after_ms }, message).await;
    }
}
