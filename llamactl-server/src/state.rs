//! What every handler shares.

use std::sync::Arc;

use llamactl_core::db::{ActivityStore, SubModelEventStore};
use llamactl_core::router::Routers;
use llamactl_core::{ApiKeyStore, Manager};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::activity::Activity;
use crate::auth::Authenticator;
use crate::auth::session::Sessions;
use crate::config::Config;
use crate::declared::Reloader;
use crate::proxy::Proxy;
use crate::resource_history::ResourceHistory;

/// The state behind every route. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The instance manager.
    pub manager: Manager,
    /// The inference API keys (the same store as the manager's database).
    pub keys: Arc<dyn ApiKeyStore>,
    /// The configuration the server started with (its declarations, templates and reload
    /// settings in force are the reloader's).
    pub config: Arc<Config>,
    /// Reloads of the configuration file: plans, applies, and the last one.
    pub reloader: Arc<Reloader>,
    /// Key verification.
    pub auth: Arc<Authenticator>,
    /// The dashboard's sign-ins.
    pub sessions: Arc<Sessions>,
    /// The records of proxied requests (the same store as the manager's database).
    pub history: Arc<dyn ActivityStore>,
    /// The events log of router instances' models (the same store as the manager's database).
    pub model_events: Arc<dyn SubModelEventStore>,
    /// The recorder of proxied requests, when recording is on.
    pub activity: Option<Arc<Activity>>,
    /// The reverse proxy.
    pub proxy: Arc<Proxy>,
    /// The running llama.cpp router instances and their models.
    pub routers: Routers,
    /// Cancelled when the server begins to shut down: long-lived streams (events, logs) end,
    /// so that they do not hold the shutdown for its whole grace period.
    pub stopping: CancellationToken,
    /// The resource history (samples of the host and the instances) and its last tick.
    pub resources: Arc<ResourceHistory>,
    /// Prometheus metrics, when recording is on.
    pub metrics: Option<PrometheusHandle>,
}
