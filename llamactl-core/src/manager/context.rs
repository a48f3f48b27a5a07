//! What every actor shares with every other actor and with the manager.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::config::ManagerConfig;
use super::slots::Slots;
use super::state::StatusNotice;
use crate::db::Database;
use crate::ports::PortAllocator;
use crate::readiness::ReadinessProbe;
use crate::runtime::Runtimes;

/// What the actor shares with every other actor and the manager. Holds nothing that refers
/// back to instance handles, so dropping the manager lets every actor end.
#[derive(Debug)]
pub(crate) struct Context {
    /// The configuration in force; replaced whole by `Manager::reconfigure`.
    pub(crate) config: std::sync::RwLock<Arc<ManagerConfig>>,
    pub(crate) db: Arc<dyn Database>,
    pub(crate) ports: PortAllocator,
    pub(crate) slots: Arc<Slots>,
    pub(crate) probe: ReadinessProbe,
    pub(crate) notices: broadcast::Sender<StatusNotice>,
    /// What runs backends (local processes, the Docker engine, which connects on first use),
    /// and which of them runs an instance.
    pub(crate) runtime: Runtimes,
}

impl Context {
    /// The configuration in force now.
    pub(crate) fn config(&self) -> Arc<ManagerConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
