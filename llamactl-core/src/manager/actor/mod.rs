//! The owner of one instance's state. Every start, stop, restart, idle and eviction decision
//! for an instance is taken here, one at a time, against the current state: there is no other
//! writer, so no decision is ever made from a stale snapshot.
//!
//! This file holds the actor, its event loop and how it records and publishes a change; what
//! it does on each event is in `launch.rs` (start, spawn, readiness), `exit.rs` (a backend
//! that ended by itself, automatic restarts), `stop.rs` (stop, kill, idle stop, eviction,
//! detach), `definition.rs` (new options, deletion) and `adopt.rs` (taking over a backend an
//! earlier manager left running). The restart policy itself is `restart_policy`.

mod adopt;
mod definition;
mod exit;
mod launch;
mod stop;

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::activity::Activity;
use super::adoption::Adoption;
use super::command::Command;
use super::config::InstanceSettings;
use super::context::Context;
use super::mailbox::{self, Mailbox};
use super::state::{InstanceState, StatusNotice};
use crate::db::Transition;
use crate::logs::{LogStore, LogStream};
use crate::ports::PortLease;
use crate::runtime::{BackendRun, RunExit};
use crate::{ExitInfo, InstanceName, InstanceStatus, TransitionReason};

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

/// A pending automatic restart.
#[derive(Debug, Clone, Copy)]
struct RestartDue {
    at: Instant,
    attempt: u32,
    delay: Duration,
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
    /// The pending automatic restart.
    restart_due: Option<RestartDue>,
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
        self.state.options.as_ref().ok().map(|o| self.ctx.config().defaults.apply(o))
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
        let restart_at = self.restart_due.map(|due| due.at);
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

    /// Forgets the run that ended: no process, container or port in the record any more.
    fn clear_process(&mut self, exit: ExitInfo) {
        let runtime = &mut self.state.runtime;
        runtime.forget_run();
        runtime.stopped_at = Some(Utc::now());
        runtime.last_exit = exit;
        self.state.listen = None;
        self.state.serving = None;
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
    ///
    /// A write that fails is logged and the change is published anyway (ARCHITECTURE.md,
    /// invariant 5): the status says what the backend is doing, which the failed write does not
    /// change, and the next transition writes the whole runtime row again.
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

#[cfg(test)]
mod tests;
