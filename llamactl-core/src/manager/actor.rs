//! The owner of one instance's state. Every start, stop, restart, idle and eviction decision
//! for an instance is taken here, one at a time, against the current state: there is no other
//! writer, so no decision is ever made from a stale snapshot.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::activity::Activity;
use super::adoption::{Adoption, Plan};
use super::backoff::restart_delay;
use super::config::{InstanceSettings, ManagerConfig};
use super::error::ManagerError;
use super::mailbox::{self, Mailbox};
use super::slots::{SlotReservation, Slots};
use super::state::{InstanceState, StatusNotice};
use crate::backend::Listen;
use crate::db::{Database, Transition};
use crate::docker::DockerEngine;
use crate::logs::{LogStore, LogStream};
use crate::ports::{PortAllocator, PortError, PortLease};
use crate::process::AdoptedProcess;
use crate::readiness::ReadinessProbe;
use crate::runtime::{BackendRun, Launch, LaunchError, RunExit, RunIdentity, launch_process};
use crate::{DesiredState, ExitInfo, InstanceName, InstanceOptions, InstanceStatus, TransitionReason};

/// Lines of a failed backend's output attached to its error.
const FAILURE_LOG_LINES: usize = 20;
/// Longest a single readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

/// A request to an instance's actor.
#[derive(Debug)]
pub(crate) enum Command {
    /// `seen_attempt`: the attempt counter the caller saw when it decided to start; if another
    /// attempt began since, that attempt answers this start too.
    Start {
        reason: TransitionReason,
        slot: SlotReservation,
        seen_attempt: Option<u64>,
        reply: Reply<()>,
    },
    /// `desired: None` keeps the desired state (shutdown: the instance comes back on boot).
    Stop {
        reason: TransitionReason,
        desired: Option<DesiredState>,
        reply: Reply<()>,
    },
    Restart {
        slot: SlotReservation,
        reply: Reply<()>,
    },
    /// Stop to make room for `by`, but only if idle, ready and not pinned.
    Evict {
        by: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Update {
        options: Box<InstanceOptions>,
        reply: Reply<InstanceState>,
    },
    Delete {
        reply: Reply<()>,
    },
    /// Leave the backend running for the next manager (shutdown policy `keep`); the actor ends.
    Detach {
        reply: Reply<()>,
    },
}

/// What the actor shares with every other actor and the manager. Holds nothing that refers
/// back to instance handles, so dropping the manager lets every actor end.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: ManagerConfig,
    pub(crate) db: Arc<dyn Database>,
    pub(crate) ports: PortAllocator,
    pub(crate) slots: Arc<Slots>,
    pub(crate) probe: ReadinessProbe,
    pub(crate) notices: broadcast::Sender<StatusNotice>,
    /// The Docker runtime (connects on first use).
    pub(crate) docker: DockerEngine,
}

/// Records what identifies a run in the runtime record.
pub(crate) fn record_identity(runtime: &mut crate::db::RuntimeRecord, identity: RunIdentity) {
    match identity {
        RunIdentity::Process { identity, command_hash, output } => {
            runtime.pid = Some(identity.pid);
            runtime.process_start_ticks = Some(identity.start_ticks);
            runtime.boot_id = identity.boot_id;
            runtime.container_id = None;
            runtime.command_hash = Some(command_hash);
            runtime.output_path = output;
        }
        RunIdentity::Container { id, options_hash, .. } => {
            runtime.pid = None;
            runtime.process_start_ticks = None;
            runtime.boot_id = None;
            runtime.container_id = Some(id);
            runtime.command_hash = Some(options_hash);
            runtime.output_path = None;
        }
    }
}

/// Tells a waiter when dropped.
struct DoneOnDrop(Option<oneshot::Sender<()>>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.send(());
        }
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A live backend (process or container) and everything that belongs to its run.
#[derive(Debug)]
struct Run {
    process: Box<dyn BackendRun>,
    _port: PortLease,
    /// Fires once the readiness endpoint answers (while starting).
    ready: Option<oneshot::Receiver<()>>,
    probe: Option<AbortOnDrop>,
    startup_deadline: Instant,
    /// This run was started by an automatic restart.
    automatic: bool,
}

enum Event {
    Command(Command),
    Exited(RunExit),
    Ready,
    StartupTimeout,
    IdleCheck,
    RestartDue,
    Closed,
}

pub(crate) struct Actor {
    ctx: Arc<Context>,
    name: InstanceName,
    state: InstanceState,
    publish: watch::Sender<InstanceState>,
    activity: Arc<Activity>,
    logs: Arc<LogStore>,
    rx: mailbox::Receiver,
    /// Weak: the manager's handle owns the mailbox, and its end is this actor's end.
    mailbox: Weak<Mailbox>,
    run: Option<Run>,
    /// A backend an earlier manager left running, to take over first.
    adoption: Option<Adoption>,
    /// When the pending automatic restart is due, with its attempt number and delay.
    restart_due: Option<(Instant, u32, Duration)>,
}

async fn pending_forever<T>() -> T {
    std::future::pending().await
}

async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => pending_forever().await,
    }
}

/// The URL the readiness probe asks, or why there is none.
fn readiness_uri(options: &InstanceOptions, listen: &Listen) -> Result<hyper::Uri, String> {
    let url = format!("{}{}", listen.base_url(), options.backend.as_backend().readiness_path());
    url.parse::<hyper::Uri>().map_err(|error| format!("invalid readiness URL {url:?}: {error}"))
}

impl Actor {
    pub(crate) fn new(
        ctx: Arc<Context>,
        name: InstanceName,
        publish: watch::Sender<InstanceState>,
        activity: Arc<Activity>,
        logs: Arc<LogStore>,
        rx: mailbox::Receiver,
        mailbox: Weak<Mailbox>,
    ) -> Self {
        // The published state is the whole state of a sleeping instance.
        let state = publish.borrow().clone();
        Self { ctx, name, state, publish, activity, logs, rx, mailbox, run: None, adoption: None, restart_due: None }
    }

    /// Takes over `adoption` (a backend an earlier manager left running) before anything else.
    pub(crate) fn adopting(mut self, adoption: Option<Adoption>) -> Self {
        self.adoption = adoption;
        self
    }

    fn settings(&self) -> Option<InstanceSettings> {
        self.state.options.as_ref().ok().map(|o| self.ctx.config.defaults.apply(o))
    }

    pub(crate) async fn run(mut self: Box<Self>) {
        // Every handler's future is boxed: an idle instance's task then holds only the future of
        // the wait for its next event (0.7 KB, plus the 0.7 KB boxed actor) instead of room
        // for the largest handler (10.5 KB). With 10,000 mostly idle instances that is 90 MB.
        if let Some(adoption) = self.adoption.take() {
            Box::pin(self.on_adopted(adoption)).await;
        }
        loop {
            if self.has_nothing_to_do() && self.mailbox.upgrade().is_some_and(|m| m.retire(&self.rx)) {
                return;
            }
            match self.next_event().await {
                Event::Closed => break,
                Event::Command(command) => {
                    if Box::pin(self.handle_command(command)).await {
                        if let Some(mailbox) = self.mailbox.upgrade() {
                            mailbox.close();
                        }
                        break;
                    }
                }
                Event::Exited(exit) => Box::pin(self.on_exit(exit)).await,
                Event::Ready => Box::pin(self.on_ready()).await,
                Event::StartupTimeout => Box::pin(self.on_startup_timeout()).await,
                Event::IdleCheck => Box::pin(self.on_idle_check()).await,
                Event::RestartDue => Box::pin(self.on_restart_due()).await,
            }
        }
        // The run (if any) is dropped here: its process group is killed.
    }

    /// No backend, no pending restart: the actor may sleep until the next command (its state is
    /// published at every change, so the next actor starts from it).
    fn has_nothing_to_do(&self) -> bool {
        self.run.is_none()
            && self.restart_due.is_none()
            && matches!(self.state.runtime.status, InstanceStatus::Stopped | InstanceStatus::Failed)
    }

    async fn next_event(&mut self) -> Event {
        let status = self.state.runtime.status;
        let idle = self.settings().map(|s| s.idle_timeout).unwrap_or_default();
        let idle_at = (status == InstanceStatus::Running && !idle.is_zero()).then(|| {
            let (in_flight, last) = self.activity.snapshot();
            if in_flight > 0 { Instant::now() + idle } else { last + idle }
        });
        let restart_at = self.restart_due.map(|(at, _, _)| at);
        let Self { rx, run, .. } = self;
        let (process, ready, startup_deadline) = match run.as_mut() {
            Some(Run { process, ready, startup_deadline, .. }) => {
                let deadline = ready.is_some().then_some(*startup_deadline);
                (Some(process), ready.as_mut(), deadline)
            }
            None => (None, None, None),
        };
        tokio::select! {
            command = rx.recv() => command.map_or(Event::Closed, |c| Event::Command(*c)),
            exit = async { match process { Some(p) => p.wait().await, None => pending_forever().await } } => Event::Exited(exit),
            () = async {
                match ready {
                    // A dropped sender (probe stopped) is not readiness.
                    Some(ready) => if ready.await.is_err() { pending_forever::<()>().await },
                    None => pending_forever().await,
                }
            } => Event::Ready,
            () = sleep_until_or_never(startup_deadline) => Event::StartupTimeout,
            () = sleep_until_or_never(idle_at) => Event::IdleCheck,
            () = sleep_until_or_never(restart_at) => Event::RestartDue,
        }
    }

    /// Handles one command; `true` when the actor is done (its instance was deleted).
    async fn handle_command(&mut self, command: Command) -> bool {
        match command {
            Command::Start { reason, slot, seen_attempt, reply } => {
                let superseded = seen_attempt.is_some_and(|seen| self.state.attempt > seen);
                let result = match self.state.runtime.status {
                    InstanceStatus::Stopped | InstanceStatus::Failed if !superseded => self.start(reason, slot).await,
                    // Already on its way (or running): one start serves every caller.
                    _ => Ok(()),
                };
                let _ = reply.send(result);
            }
            Command::Stop { reason, desired, reply } => {
                self.stop(reason, desired).await;
                let _ = reply.send(Ok(()));
            }
            Command::Restart { slot, reply } => {
                let result = match self.state.runtime.status {
                    InstanceStatus::Running | InstanceStatus::Starting => {
                        self.stop_run(TransitionReason::UserRestart).await;
                        self.state.runtime.restart_count = 0;
                        self.spawn(TransitionReason::UserRestart, None, false).await
                    }
                    InstanceStatus::Restarting => {
                        self.restart_due = None;
                        self.state.runtime.restart_count = 0;
                        self.spawn(TransitionReason::UserRestart, None, false).await
                    }
                    _ => self.start(TransitionReason::UserRestart, slot).await,
                };
                let _ = reply.send(result);
            }
            Command::Evict { by, reply } => {
                let _ = reply.send(self.evict(by).await);
            }
            Command::Update { options, reply } => {
                let _ = reply.send(self.update(*options).await);
            }
            Command::Delete { reply } => {
                let result = self.delete().await;
                let deleted = result.is_ok();
                let _ = reply.send(result);
                return deleted;
            }
            Command::Detach { reply } => {
                self.detach();
                let _ = reply.send(Ok(()));
                return true;
            }
        }
        false
    }

    /// Checks that the instance can run here at all.
    fn runnable(&self) -> Result<Arc<InstanceOptions>, ManagerError> {
        let unsupported = |reason: String| ManagerError::Unsupported { name: self.name.to_string(), reason };
        let options = match &self.state.options {
            Ok(options) => options.clone(),
            Err(error) => return Err(unsupported(format!("its stored options are invalid: {error}"))),
        };
        if !options.nodes.is_empty() && !options.nodes.iter().any(|n| *n == self.ctx.config.local_node) {
            return Err(unsupported(format!(
                "nodes: assigned to {} and this is node {}; remote nodes are not supported",
                options.nodes.join(", "),
                self.ctx.config.local_node
            )));
        }
        Ok(options)
    }

    async fn start(&mut self, reason: TransitionReason, slot: SlotReservation) -> Result<(), ManagerError> {
        self.runnable()?;
        self.state.runtime.restart_count = 0;
        self.state.runtime.desired_state = DesiredState::Running;
        self.restart_due = None;
        self.spawn(reason, Some(slot), false).await
    }

    /// Spawns a process and enters `starting`. On failure the instance is `failed` with the
    /// reason recorded, and the error says why.
    async fn spawn(
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
        let settings = self.ctx.config.defaults.apply(&options);
        let host = options.backend.host().unwrap_or(&self.ctx.config.backend_host).to_owned();
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
        let output = self.ctx.config.logs_dir.as_ref().map(|dir| dir.join(format!("{}.output", self.name)));
        let launch = Launch {
            name: self.name.as_str(),
            options: &options,
            listen: &listen,
            backends: &self.ctx.config.backends,
            output: output.as_deref(),
        };
        let launched = if self.ctx.config.docker.wanted(&options) {
            self.ctx.docker.launch(launch, self.logs.clone()).await
        } else {
            launch_process(launch, self.logs.clone())
        };
        let process = match launched {
            Ok(process) => process,
            Err(LaunchError { reason, message }) => return Err(self.start_failed(reason, message).await),
        };

        let (ready, probe) = self.start_probe(&options, &listen);
        let runtime = &mut self.state.runtime;
        record_identity(runtime, process.identity());
        runtime.port = Some(listen.port);
        runtime.started_at = Some(Utc::now());
        runtime.ready_at = None;
        runtime.last_error = None;
        self.state.listen = Some(listen);
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
    fn start_probe(
        &self,
        options: &InstanceOptions,
        listen: &Listen,
    ) -> (Option<oneshot::Receiver<()>>, Option<AbortOnDrop>) {
        let (ready_tx, ready_rx) = oneshot::channel();
        let probe = self.ctx.probe.clone();
        let interval = self.ctx.config.readiness_interval;
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

    /// Takes over a backend an earlier manager left running: no new start; a running one serves
    /// at once, a starting one is awaited as after a start.
    async fn on_adopted(&mut self, adoption: Adoption) {
        let Adoption { plan, port, listen, status, done } = adoption;
        // However the takeover ends, the boot waiting for it goes on.
        let _done = DoneOnDrop(done);
        let Ok(options) = self.state.options.clone() else { return };
        let process: Box<dyn BackendRun> = match plan {
            Plan::Process { identity, command_hash, output } => {
                Box::new(AdoptedProcess::adopt(identity, command_hash, output, self.logs.clone()))
            }
            Plan::Container { id, name, options_hash } => {
                let since = self.logs.tail(1).first().map(|line| line.at.timestamp());
                match self.ctx.docker.adopt(id, name, options_hash, self.logs.clone(), since).await {
                    Ok(run) => run,
                    Err(error) => {
                        self.fail(TransitionReason::AdoptionRefused { why: error.clone() }, error).await;
                        return;
                    }
                }
            }
        };
        let settings = self.ctx.config.defaults.apply(&options);
        let (ready, probe) =
            if status == InstanceStatus::Starting { self.start_probe(&options, &listen) } else { (None, None) };
        // A starting backend keeps the rest of its startup time.
        let loading = self.state.runtime.started_at.and_then(|t| (Utc::now() - t).to_std().ok()).unwrap_or_default();
        let startup_deadline = Instant::now() + settings.startup_timeout.saturating_sub(loading);
        let description = match process.identity() {
            RunIdentity::Process { identity, .. } => format!("process {}", identity.pid),
            RunIdentity::Container { name, .. } => format!("container {name}"),
        };
        record_identity(&mut self.state.runtime, process.identity());
        self.state.runtime.port = Some(listen.port);
        self.state.listen = Some(listen);
        self.run = Some(Run { process, _port: port, ready, probe, startup_deadline, automatic: false });
        self.logs.push(LogStream::Manager, format!("took over {description}, left running by an earlier manager"));
        if status == InstanceStatus::Running {
            self.activity.open();
        }
        self.transition(status, TransitionReason::Adopted).await;
    }

    /// Leaves the backend running for the next manager: its record stays as it is (running,
    /// with its process or container), which is what the next manager takes over.
    fn detach(&mut self) {
        self.activity.close();
        if let Some(mut run) = self.run.take() {
            run.process.detach();
            self.logs.push(LogStream::Manager, "manager shutting down: left running for the next manager".to_owned());
        }
        self.restart_due = None;
    }

    async fn on_ready(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.ready = None;
            run.probe = None;
        }
        self.state.runtime.ready_at = Some(Utc::now());
        self.activity.open();
        self.transition(InstanceStatus::Running, TransitionReason::Ready).await;
    }

    /// Ends the current run after its process exited: drains its output, reaps its group, and
    /// returns the last lines it wrote.
    async fn finish_run(&mut self, exit: ExitInfo) -> (String, bool) {
        self.activity.close();
        let mut automatic = false;
        if let Some(mut run) = self.run.take() {
            automatic = run.automatic;
            run.process.finish(self.ctx.config.kill_timeout).await;
        }
        self.clear_process(exit);
        let tail: Vec<String> = self.logs.tail(FAILURE_LOG_LINES).iter().map(|l| l.text.clone()).collect();
        (tail.join("\n"), automatic)
    }

    fn clear_process(&mut self, exit: ExitInfo) {
        let runtime = &mut self.state.runtime;
        runtime.pid = None;
        runtime.process_start_ticks = None;
        runtime.boot_id = None;
        runtime.container_id = None;
        runtime.command_hash = None;
        runtime.output_path = None;
        runtime.port = None;
        runtime.stopped_at = Some(Utc::now());
        runtime.last_exit = exit;
        self.state.listen = None;
    }

    async fn on_exit(&mut self, ended: RunExit) {
        let status = self.state.runtime.status;
        let exit = ended.exit;
        self.logs.push(LogStream::Manager, format!("process exited ({ended})"));
        let (tail, automatic) = self.finish_run(exit).await;
        let Some(settings) = self.settings() else {
            self.fail(TransitionReason::Crashed { exit }, format!("exited ({exit})")).await;
            return;
        };
        let runtime = &mut self.state.runtime;
        if status == InstanceStatus::Running {
            let stable = runtime.ready_at.and_then(|t| (Utc::now() - t).to_std().ok()).unwrap_or_default();
            if stable >= self.ctx.config.restart_reset_after {
                runtime.restart_count = 0;
            }
        }
        let (reason, message) = if ended.oom_killed {
            (
                TransitionReason::OutOfMemory { exit },
                format!("killed for lack of memory ({exit}); last output:\n{tail}"),
            )
        } else if status == InstanceStatus::Starting {
            (TransitionReason::StartupExited { exit }, format!("exited while starting ({exit}); last output:\n{tail}"))
        } else {
            (TransitionReason::Crashed { exit }, format!("crashed ({exit}); last output:\n{tail}"))
        };
        // A failed first start is reported at once; crashes, and failed restarts, are retried.
        let retry = settings.auto_restart && (status == InstanceStatus::Running || automatic);
        if !retry {
            self.fail(reason, message).await;
        } else if runtime.restart_count >= settings.max_restarts {
            let restarts = runtime.restart_count;
            self.fail(TransitionReason::GaveUp { restarts, exit }, message).await;
        } else {
            runtime.restart_count += 1;
            runtime.last_error = Some(message);
            let attempt = runtime.restart_count;
            let delay = restart_delay(settings.restart_delay, attempt, self.ctx.config.max_restart_delay);
            self.restart_due = Some((Instant::now() + delay, attempt, delay));
            self.transition(InstanceStatus::Restarting, reason).await;
        }
    }

    async fn on_restart_due(&mut self) {
        let Some((_, attempt, delay)) = self.restart_due.take() else { return };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        // The slot has been held since the crash; failures are recorded by spawn.
        let _ = self.spawn(TransitionReason::RestartBackoff { attempt, delay_ms }, None, true).await;
    }

    async fn on_startup_timeout(&mut self) {
        let after = self.settings().map(|s| s.startup_timeout).unwrap_or_default();
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.logs.push(LogStream::Manager, format!("not ready after {after:?}; stopping"));
        let exit = self.kill_run().await;
        let (tail, _) = self.finish_run(exit.exit).await;
        let message = format!("readiness endpoint did not answer within {after:?}; last output:\n{tail}");
        self.fail(TransitionReason::HealthTimeout { after_ms }, message).await;
    }

    async fn on_idle_check(&mut self) {
        let Some(idle) = self.settings().map(|s| s.idle_timeout) else { return };
        if !idle.is_zero() && self.activity.close_if_idle(idle) {
            self.stop(TransitionReason::IdleTimeout, Some(DesiredState::Stopped)).await;
        }
    }

    async fn evict(&mut self, by: String) -> Result<(), String> {
        if self.state.runtime.status != InstanceStatus::Running {
            return Err(format!("{} is {}", self.name, self.state.runtime.status));
        }
        let idle = self.settings().map(|s| s.idle_timeout).unwrap_or_default();
        if idle.is_zero() {
            return Err(format!("{} is pinned (idle_timeout 0)", self.name));
        }
        if !self.activity.close_if_idle(Duration::ZERO) {
            return Err(format!("{} has requests in flight", self.name));
        }
        self.stop(TransitionReason::Evicted { by }, Some(DesiredState::Stopped)).await;
        Ok(())
    }

    /// SIGTERM, grace, SIGKILL on the current run (its process group or container).
    async fn kill_run(&mut self) -> RunExit {
        let (grace, kill) = (self.ctx.config.stop_grace, self.ctx.config.kill_timeout);
        match self.run.as_mut() {
            Some(run) => {
                let (exit, killed) = run.process.stop(grace, kill).await;
                if killed {
                    self.logs.push(LogStream::Manager, format!("did not exit within {grace:?} of SIGTERM; killed"));
                }
                exit
            }
            None => RunExit::default(),
        }
    }

    /// Stops the process of a starting or running instance, passing through `stopping`.
    async fn stop_run(&mut self, reason: TransitionReason) -> ExitInfo {
        self.activity.close();
        self.transition(InstanceStatus::Stopping, reason).await;
        let exit = self.kill_run().await.exit;
        self.run = None;
        self.clear_process(exit);
        exit
    }

    async fn stop(&mut self, reason: TransitionReason, desired: Option<DesiredState>) {
        if let Some(desired) = desired {
            self.state.runtime.desired_state = desired;
        }
        match self.state.runtime.status {
            InstanceStatus::Running | InstanceStatus::Starting | InstanceStatus::Stopping => {
                let exit = self.stop_run(reason.clone()).await;
                self.logs.push(LogStream::Manager, format!("stopped ({exit})"));
                self.transition(InstanceStatus::Stopped, reason).await;
            }
            InstanceStatus::Restarting | InstanceStatus::Failed => {
                self.restart_due = None;
                self.transition(InstanceStatus::Stopped, reason).await;
            }
            InstanceStatus::Stopped => {
                if desired.is_some() {
                    self.persist_runtime().await;
                    self.publish();
                }
            }
        }
    }

    async fn update(&mut self, options: InstanceOptions) -> Result<InstanceState, ManagerError> {
        let stored = self.ctx.db.save(&self.name, &options).await?;
        self.ctx.slots.set_group(self.name.as_str(), options.group.as_deref());
        self.state.set_options(Ok(Arc::new(options)));
        self.state.updated_at = stored.updated_at;
        self.publish();
        if matches!(self.state.runtime.status, InstanceStatus::Running | InstanceStatus::Starting) {
            self.stop_run(TransitionReason::OptionsChanged).await;
            self.state.runtime.restart_count = 0;
            // The new options may be unrunnable; spawn records that as the status.
            let _ = self.spawn(TransitionReason::OptionsChanged, None, false).await;
        }
        Ok(self.state.clone())
    }

    async fn delete(&mut self) -> Result<(), ManagerError> {
        self.stop(TransitionReason::UserStop, Some(DesiredState::Stopped)).await;
        if !self.ctx.db.delete(self.name.as_str()).await? {
            return Err(ManagerError::NotFound(self.name.to_string()));
        }
        Ok(())
    }

    /// Records a failure: status `failed`, the reason, and an error message.
    async fn fail(&mut self, reason: TransitionReason, message: String) {
        self.run = None;
        self.activity.close();
        self.state.runtime.last_error = Some(message);
        self.state.runtime.stopped_at = Some(Utc::now());
        self.transition(InstanceStatus::Failed, reason).await;
    }

    fn publish(&self) {
        self.publish.send_replace(self.state.clone());
    }

    async fn persist_runtime(&self) {
        if let Err(error) = self.ctx.db.save_runtime(self.name.as_str(), &self.state.runtime).await {
            tracing::error!(instance = %self.name, %error, "cannot persist runtime state");
        }
    }

    /// Changes the status: records it durably (runtime row and event), then publishes it, so
    /// that whatever an observer sees is already on disk.
    async fn transition(&mut self, to: InstanceStatus, reason: TransitionReason) {
        let from = self.state.runtime.status;
        let at = Utc::now();
        self.state.runtime.status = to;
        self.state.runtime.last_reason = Some(reason.clone());
        if !to.holds_slot() {
            self.ctx.slots.release(self.name.as_str());
        }
        let transition = Transition { from, to, reason: reason.clone(), at };
        if let Err(error) = self.ctx.db.record_transition(self.name.as_str(), &self.state.runtime, &transition).await {
            tracing::error!(instance = %self.name, %error, "cannot persist status transition");
        }
        self.publish();
        tracing::info!(instance = %self.name, %from, %to, %reason, "status");
        if from != to {
            self.logs.push(LogStream::Manager, format!("{from} -> {to} ({reason})"));
        }
        let _ = self.ctx.notices.send(StatusNotice { name: self.name.to_string(), from, to, reason, at });
    }
}
