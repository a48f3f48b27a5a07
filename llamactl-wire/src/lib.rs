//! # llamactl-wire
//!
//! The vocabulary that llamactl both stores and sends: validated instance names
//! ([`InstanceName`]), statuses and desired states ([`InstanceStatus`], [`DesiredState`]), the
//! typed reason of every status transition ([`TransitionReason`], [`ExitInfo`]), what an API key
//! may use ([`PermissionMode`]) and the top-level fields of an instance's options
//! ([`INSTANCE_FIELDS`]), how a proxied request ended ([`ActivityOutcome`]), and the status of a
//! llama.cpp router's models ([`SubModelStatus`], [`SubModelReason`]).
//!
//! `llamactl-core` keeps these in its database and re-exports them at its own paths;
//! `llamactl-api` puts them in the REST API's bodies. Their serialised form is therefore both a
//! storage format and an API contract: changing it is a data migration and an API change at
//! once.
//!
//! The crate has no dependencies beyond serde and thiserror, so a client of the API (the
//! `llamactl` command) builds without the supervisor's database, container or process crates.
//!
//! ```
//! use llamactl_wire::{InstanceName, InstanceStatus, TransitionReason};
//!
//! let name: InstanceName = "qwen-7b".parse()?;
//! let status: InstanceStatus = "running".parse()?;
//! assert_eq!((name.as_str(), status.as_str()), ("qwen-7b", "running"));
//! assert_eq!(TransitionReason::IdleTimeout.kind(), "idle_timeout");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod activity;
mod fields;
mod name;
mod permission;
mod reason;
mod signal;
mod status;
mod sub_model;

pub use activity::{ActivityGroupBy, ActivityOutcome, UnknownActivityWord};
pub use fields::INSTANCE_FIELDS;
pub use name::{InstanceName, MAX_NAME_LEN, NameError};
pub use permission::PermissionMode;
pub use reason::{ExitInfo, TransitionReason};
pub use signal::signal_name;
pub use status::{DesiredState, InstanceStatus, UnknownStatus};
pub use sub_model::{SubModelReason, SubModelStatus, UnknownSubModelStatus};
