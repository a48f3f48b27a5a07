//! llama.cpp's router mode, with llamactl deciding: a `llama_cpp` instance without a model of
//! its own runs `llama-server` as a router, whose models ("sub-models") each run in a child
//! process. llamactl keeps their status from the router's list, tells a crashed child from an
//! unload, holds a model for each request in flight to it (streams included), makes room under
//! `models_max` by unloading the least recently used idle model that is not pinned, and unloads
//! models idle past their `idle_timeout`. The router itself runs with `--models-max 0
//! --no-models-autoload`, so that it never loads or evicts on its own.
//!
//! - `listing.rs`: the router's `GET /models` read ([`parse_listing`]);
//! - `policy.rs`: the decisions as pure functions ([`observe`], [`needs_room`],
//!   [`eviction_victim`], [`idle_due`], [`retry_delay`]);
//! - `client.rs`: [`RouterClient`], the router's model routes over HTTP;
//! - `models.rs`: [`RouterModels`], the models of one running router and their leases;
//! - `registry.rs`: [`Routers`], every running router instance of a [`Manager`](crate::Manager),
//!   each followed by a background loop while it runs.

mod client;
mod listing;
mod models;
mod policy;
mod registry;

use std::time::Duration;

use chrono::{DateTime, Utc};
use llamactl_wire::{SubModelReason, SubModelStatus};

pub use client::RouterClient;
pub use listing::{ListedModel, parse_listing};
pub use models::{RouterConfig, RouterModels, SubModelLease, SubModelView};
pub use policy::{Candidate, Intent, eviction_victim, idle_due, needs_room, observe, retry_delay};
pub use registry::Routers;

/// A sub-model's status change, broadcast to subscribers of [`Routers::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubModelNotice {
    /// The router instance.
    pub instance: String,
    /// The model's id.
    pub model: String,
    /// Status before (`None`: first seen).
    pub from: Option<SubModelStatus>,
    /// Status after.
    pub to: SubModelStatus,
    /// Why.
    pub reason: SubModelReason,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why a router's model could not be used, loaded or unloaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// The instance is not a llama.cpp router instance.
    #[error("instance {0} is not a llama.cpp router instance (it has a model of its own)")]
    NotARouter(String),
    /// The instance is not running.
    #[error("instance {0} is not running")]
    NotRunning(String),
    /// The router does not list the model.
    #[error("instance {instance} has no model {model:?}")]
    UnknownModel {
        /// The instance.
        instance: String,
        /// The name asked for.
        model: String,
    },
    /// The caller may not load models of this instance (a key without the start right).
    #[error("this key may not load models of instance {instance}; {model} is not loaded")]
    MayNotLoad {
        /// The instance.
        instance: String,
        /// The model.
        model: String,
    },
    /// Loading needs another model unloaded, which the caller may not have done.
    #[error("loading {model} needs {victim} unloaded to make room, and this key may not evict")]
    MayNotEvict {
        /// The model to load.
        model: String,
        /// The model that would go.
        victim: String,
    },
    /// Every place under `models_max` is held by a model that may not be unloaded (requests in
    /// flight, pinned, or still loading).
    #[error("no room to load {model}: models_max {models_max} is reached and {busy:?} may not be unloaded now")]
    NoRoom {
        /// The model that needed room.
        model: String,
        /// The limit.
        models_max: usize,
        /// The models holding the places.
        busy: Vec<String>,
    },
    /// Requests to the model are in flight.
    #[error("model {model} has {in_flight} request(s) in flight; it is unloaded once they end")]
    Busy {
        /// The model.
        model: String,
        /// Requests in flight.
        in_flight: u32,
    },
    /// The model failed recently and waits before it is loaded again.
    #[error("model {model} failed ({reason}); it may be loaded again in {retry_after:?}")]
    Backoff {
        /// The model.
        model: String,
        /// Why it failed.
        reason: String,
        /// How long until it may load.
        retry_after: Duration,
    },
    /// Its process ended before it answered.
    #[error("model {model} did not load: {reason}")]
    LoadFailed {
        /// The model.
        model: String,
        /// Why.
        reason: String,
    },
    /// It did not load or unload in time.
    #[error("model {model} did not finish loading or unloading within {after:?}")]
    Timeout {
        /// The model.
        model: String,
        /// The time waited.
        after: Duration,
    },
    /// The router answered with an error.
    #[error("the router refused ({status}): {message}")]
    Refused {
        /// Its HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The router did not answer.
    #[error("the router did not answer: {0}")]
    Unreachable(String),
}

impl RouterError {
    /// How long a client should wait before trying again, for the errors that pass.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::NoRoom { .. } | Self::Busy { .. } | Self::Timeout { .. } => Some(Duration::from_secs(2)),
            Self::Backoff { retry_after, .. } => Some((*retry_after).max(Duration::from_secs(1))),
            _ => None,
        }
    }
}
