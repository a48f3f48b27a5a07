//! The manager's view of one instance: its mailbox, its published state, its activity and its
//! log; and how commands reach its actor (waking one when none is awake).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::activity::Activity;
use super::actor::Actor;
use super::adoption::Adoption;
use super::command::Command;
use super::context::Context;
use super::error::ManagerError;
use super::mailbox::{self, Mailbox};
use super::state::{InstanceState, InstanceView};
use crate::logs::LogStore;
use crate::{InstanceName, InstanceStatus};

pub(super) fn view_of<'a>(
    handle: &'a Handle,
    state: &'a InstanceState,
    now: Instant,
    wall: DateTime<Utc>,
) -> InstanceView<'a> {
    let (in_flight, last) = handle.activity.snapshot();
    let last_activity = (state.runtime.status == InstanceStatus::Running).then(|| {
        let ago = chrono::Duration::from_std(now.saturating_duration_since(last)).unwrap_or_default();
        wall - ago
    });
    InstanceView { name: &handle.name, state, in_flight, last_activity, logs: &handle.logs }
}

/// The manager's view of one instance: its mailbox and what its actor publishes. The actor
/// runs only while the instance has something to do (see [`mailbox`]).
#[derive(Debug)]
pub(super) struct Handle {
    pub(super) name: InstanceName,
    pub(super) ctx: Arc<Context>,
    pub(super) mailbox: Arc<Mailbox>,
    /// The state, as last published; the actor (when one is awake) holds the other senders.
    pub(super) state: watch::Sender<InstanceState>,
    pub(super) activity: Arc<Activity>,
    pub(super) logs: Arc<LogStore>,
}

impl Handle {
    /// Sends a command and waits for the actor's answer.
    pub(super) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ManagerError>>) -> Command,
    ) -> Result<T, ManagerError> {
        let (reply, answer) = oneshot::channel();
        self.post(Box::new(make(reply)))?;
        answer.await.map_err(|_| ManagerError::NotFound(self.name.to_string()))?
    }

    /// Posts a command, waking an actor if none is awake.
    pub(super) fn post(&self, command: Box<Command>) -> Result<(), ManagerError> {
        self.mailbox.post(command, || self.wake(None)).map_err(|_| ManagerError::NotFound(self.name.to_string()))
    }

    /// Starts an actor from the published state; returns its mailbox's sender.
    pub(super) fn wake(&self, adoption: Option<Adoption>) -> mailbox::Sender {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let actor = Actor::new(
            self.ctx.clone(),
            self.name.clone(),
            self.state.clone(),
            self.activity.clone(),
            self.logs.clone(),
            rx,
            Arc::downgrade(&self.mailbox),
        )
        .adopting(adoption);
        // Boxed: an async fn's argument would otherwise take its room twice in the task.
        tokio::spawn(Box::new(actor).run());
        tx
    }

    pub(super) fn group(&self) -> Option<String> {
        self.state.borrow().options.as_ref().ok().and_then(|o| o.group.clone())
    }
}
