//! The bodies of a llama.cpp router instance's model routes:
//! `GET /api/v1/instances/{name}/models` and `POST .../models/{model}/load|unload`.

use chrono::{DateTime, Utc};
use llamactl_wire::{SubModelReason, SubModelStatus};
use serde::{Deserialize, Serialize};

/// One model of a router instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubModelInfo {
    /// Its id: what the router calls it (send `instance/id`, or the id where it is unique).
    pub id: String,
    /// Other names requests may use.
    pub aliases: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Where the router found it: `models_dir`, `preset` or `cache`.
    pub source: Option<String>,
    /// `unloaded`, `loading`, `loaded`, `sleeping` or `failed`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "loaded"))]
    pub status: SubModelStatus,
    /// Why it has that status (`{"kind": "evicted", "by": "beta"}`, `{"kind": "crashed",
    /// "exit_code": 137}`, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reason: SubModelReason,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The exit code of its last process, as the router reports it.
    pub exit_code: Option<i32>,
    /// Requests in flight to it (streams included), and waiting for it to load.
    pub in_flight: u32,
    /// When its last request ended.
    pub last_used: Option<DateTime<Utc>>,
    /// Never unloaded by llamactl on its own (`sub_models.<id>.pinned`).
    pub pinned: bool,
    /// Unloaded after this many seconds without requests (`sub_models.<id>.idle_timeout`).
    pub idle_timeout_seconds: Option<u64>,
}

/// `GET /api/v1/instances/{name}/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubModelList {
    /// The instance.
    pub instance: String,
    /// Whether the instance runs (a stopped router's models are those it listed when it last
    /// ran, all unloaded).
    pub running: bool,
    /// The router's `models_max` as llamactl enforces it (`None`: no limit).
    pub models_max: Option<usize>,
    /// Its models, by id.
    pub items: Vec<SubModelInfo>,
}

/// One entry of `GET /api/v1/instances/{name}/models/events`: a model's status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubModelEventInfo {
    /// Increasing id (page with `after_id`).
    pub id: i64,
    /// The router instance.
    pub instance: String,
    /// The model's id.
    pub model: String,
    /// Status before (`null`: first seen).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "loading"))]
    pub from: Option<SubModelStatus>,
    /// Status after.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "loaded"))]
    pub to: SubModelStatus,
    /// Why (`{"kind": "ready"}`, `{"kind": "evicted", "by": "beta"}`, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reason: SubModelReason,
    /// When.
    pub at: DateTime<Utc>,
}
