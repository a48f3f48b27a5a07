//! The bodies of the configuration reload routes: `POST /api/v1/config/reload` (with
//! `?dry_run=true`: the plan only) and `GET /api/v1/config/reload` (the last one).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a reload does to one declared instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Newly declared: created (stopped, like any new instance).
    Create,
    /// Changed in what it runs (command line, environment, runtime), and running: its
    /// requests in flight finish, new ones wait, and it restarts.
    UpdateRestart,
    /// Changed without a restart: only llamactl's own settings (description, lifecycle,
    /// group, a router's sub-models), a router's presets (re-read in place), or it does not run.
    UpdateNoRestart,
    /// No longer declared: stopped and deleted.
    Delete,
    /// Declared as it is.
    Unchanged,
}

impl Action {
    /// The action as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::UpdateRestart => "update_restart",
            Self::UpdateNoRestart => "update_no_restart",
            Self::Delete => "delete",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One declared instance's line in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstancePlan {
    /// The instance.
    pub name: String,
    /// What happens to it.
    pub action: Action,
    /// The file that declares it (for a deletion: the file that did).
    pub file: String,
    /// The options that change, by dotted path (`backend_options.ctx_size`).
    pub changes: Vec<String>,
}

/// When a changed global setting takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// At once, by this reload.
    AppliedLive,
    /// Only when the server starts again; until then the old value stays in force.
    NeedsServerRestart,
}

/// One changed global setting in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingPlan {
    /// Dotted key: `instances.port_range`.
    pub key: String,
    /// When it takes effect.
    pub effect: Effect,
}

/// How carrying out one instance's line went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Applied {
    /// The instance.
    pub name: String,
    /// What was done.
    pub action: Action,
    /// Why it could not be done, if it could not.
    pub error: Option<String>,
}

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The server's start.
    Boot,
    /// `POST /api/v1/config/reload`.
    Api,
    /// SIGHUP.
    Signal,
    /// A change of a watched file.
    Watch,
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dry run: planned, nothing changed.
    Planned,
    /// Planned and carried out (each instance's line in `applied` says how it went).
    Applied,
    /// Refused before anything changed: `error` says why.
    Failed,
}

impl Outcome {
    /// The outcome as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Applied => "applied",
            Self::Failed => "failed",
        }
    }
}

/// One reload: its plan and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReloadReport {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// What started it.
    pub trigger: Trigger,
    /// Only planned.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed (file, line and key where they can be told).
    pub error: Option<String>,
    /// The configuration file read.
    pub file: Option<String>,
    /// Per declared instance: what happens to it.
    pub instances: Vec<InstancePlan>,
    /// Per changed global setting: when it takes effect.
    pub settings: Vec<SettingPlan>,
    /// Per instance: how carrying out its line went (empty for dry runs and failures).
    pub applied: Vec<Applied>,
}
