//! What an instance's actor is asked to do: the commands its mailbox carries, each with the
//! channel its answer goes back on.

use tokio::sync::oneshot;

use super::error::ManagerError;
use super::slots::SlotReservation;
use super::state::InstanceState;
use crate::{DesiredState, InstanceOptions, TransitionReason};

/// Where a command's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, ManagerError>>;

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
