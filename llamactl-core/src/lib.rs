//! # llamactl-core
//!
//! The library behind llamactl: typed options for llama.cpp, mlx_lm, vLLM and custom
//! OpenAI-compatible servers, persistence behind two traits — [`Database`] for instances and
//! [`ApiKeyStore`] for the server's API keys, both implemented by [`SqliteDatabase`] and, for
//! tests, by [`MemoryDatabase`] — and a [`Manager`] that supervises instances as local
//! processes or Docker containers ([`docker`]): readiness, automatic restart, idle timeout,
//! on-demand start, running limits with LRU eviction, and logs.
//!
//! It knows nothing of HTTP servers or command-line parsing; `llamactl-server` and
//! `llamactl-cli` put those on top.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use llamactl_core::{Database, InstanceOptions, Manager, ManagerConfig, SqliteDatabase};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = Arc::new(SqliteDatabase::open("llamactl.db").await?);
//! let manager = Manager::open(ManagerConfig::default(), db.clone()).await?;
//! let options = InstanceOptions::from_json(
//!     r#"{"backend_type":"llama_cpp","backend_options":{"model":"/models/tiny.gguf"}}"#,
//! )?;
//! manager.create("tiny".parse()?, options).await?;
//! let lease = manager.ensure_ready("tiny", Duration::from_secs(60)).await?;
//! println!("ready at {}", lease.base_url());
//! drop(lease);
//! manager.shutdown().await;
//! db.close().await; // releases the file's lock
//! # Ok(()) }
//! ```
//!
//! Tests of code built on the manager can give it a [`MemoryDatabase`] instead (no file, no
//! SQL). Another implementation of the traits can check itself with the conformance suite in
//! `testing::conformance` (feature `testing`).

#![warn(missing_docs)]

pub mod backend;
pub mod db;
pub mod docker;
pub mod logs;
pub mod manager;
pub mod options;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod resources;
pub mod router;
pub mod runtime;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{
    ApiKeyStore, Database, DbError, EventQuery, ImportedInstance, InstanceEvent, MemoryDatabase, RuntimeRecord,
    SqliteDatabase, StoredInstance, Transition,
};
pub use manager::{InstanceInfo, Lease, Manager, ManagerConfig, ManagerError};
// The vocabulary core stores and the REST API sends, defined in `llamactl-wire` so that API
// clients need not depend on core.
pub use llamactl_wire::{
    DesiredState, ExitInfo, InstanceName, InstanceStatus, MAX_NAME_LEN, NameError, SubModelReason, SubModelStatus,
    TransitionReason, UnknownStatus,
};
pub use options::{BackendOptions, BackendType, InstanceOptions, OptionsError};

/// The README's examples are compiled as documentation tests, so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

#[cfg(test)]
mod tests {
    use crate::ExitInfo;

    /// `llamactl-wire` names signals from its own table of Linux's (it has no system crate):
    /// its names must be the ones this system gives.
    #[test]
    fn exit_signals_are_named_as_the_system_names_them() {
        for number in -1..=70 {
            let expected = match nix::sys::signal::Signal::try_from(number) {
                Ok(signal) => format!("signal {number} ({})", signal.as_str()),
                Err(_) => format!("signal {number}"),
            };
            assert_eq!(ExitInfo { code: None, signal: Some(number) }.to_string(), expected);
        }
    }
}
