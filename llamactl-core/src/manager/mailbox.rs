//! An instance's mailbox. Its actor runs only while it has something to do — a backend, a
//! pending restart, a command — so that thousands of stopped instances hold no task: a command
//! for a sleeping instance wakes a new actor from the state last published, and an actor with
//! nothing left to do goes back to sleep.
//!
//! Every post and every retirement happens under the mailbox's lock, so a command is never
//! posted to an actor that has just decided to retire: either the actor sees the command and
//! stays, or the command finds the mailbox asleep and wakes a new actor. At most one actor is
//! awake per mailbox.

use std::sync::Mutex;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, error::SendError};

use super::command::Command;

/// Where an actor's commands go. Unbounded: every sender waits for its answer, so the queue is
/// bounded by the callers waiting on the instance.
pub(crate) type Sender = UnboundedSender<Box<Command>>;
/// What an actor reads its commands from.
pub(crate) type Receiver = UnboundedReceiver<Box<Command>>;

#[derive(Debug)]
enum Slot {
    /// No actor: the published state is the whole state.
    Asleep,
    /// An actor reads from the other end.
    Awake(Sender),
    /// The instance is gone (deleted, or left to the next manager): commands are refused.
    Closed,
}

/// The mailbox of one instance (see the module documentation).
#[derive(Debug)]
pub(crate) struct Mailbox(Mutex<Slot>);

/// The mailbox is closed: the instance is gone.
#[derive(Debug)]
pub(crate) struct Closed;

impl Mailbox {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(Slot::Asleep))
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts `command`, waking an actor with `wake` (which returns its sender) if none is awake.
    pub(crate) fn post(&self, command: Box<Command>, wake: impl FnOnce() -> Sender) -> Result<(), Closed> {
        let mut slot = self.slot();
        let mut command = command;
        let mut wake = Some(wake);
        loop {
            match &*slot {
                Slot::Closed => return Err(Closed),
                Slot::Awake(tx) => match tx.send(command) {
                    Ok(()) => return Ok(()),
                    // The actor ended without retiring (it panicked): a new one takes over.
                    Err(SendError(back)) => {
                        command = back;
                        *slot = Slot::Asleep;
                    }
                },
                Slot::Asleep => match wake.take() {
                    Some(wake) => *slot = Slot::Awake(wake()),
                    None => return Err(Closed),
                },
            }
        }
    }

    /// Wakes an actor with `wake` if none is awake (to take over a running backend at boot).
    pub(crate) fn wake(&self, wake: impl FnOnce() -> Sender) {
        let mut slot = self.slot();
        if matches!(*slot, Slot::Asleep) {
            *slot = Slot::Awake(wake());
        }
    }

    /// Whether an actor is awake.
    pub(crate) fn is_awake(&self) -> bool {
        matches!(*self.slot(), Slot::Awake(_))
    }

    /// The actor reading `rx` goes to sleep, unless a command is waiting for it.
    pub(crate) fn retire(&self, rx: &Receiver) -> bool {
        let mut slot = self.slot();
        if !rx.is_empty() {
            return false;
        }
        *slot = Slot::Asleep;
        true
    }

    /// Refuses every later command.
    pub(crate) fn close(&self) {
        *self.slot() = Slot::Closed;
    }
}
