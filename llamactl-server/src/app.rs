//! Putting the server together and running it: database, legacy import, manager, keys,
//! routes and layers; `run` serves them (see [`crate::serve`]) until the shutdown signal.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use llamactl_core::db::ActivityStore;
use llamactl_core::router::Routers;
use llamactl_core::{ApiKeyStore, BackendType, Database, DbError, Manager, SqliteDatabase};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::activity::Activity;
use crate::auth::session::Sessions;
use crate::auth::{Authenticator, keys};
use crate::config::{BackendConfig, Config};
use crate::declared::{Reloader, Trigger};
use crate::legacy_import::import_legacy_instances;
use crate::proxy::Proxy;
use crate::resource_history::ResourceHistory;
use crate::state::AppState;

/// How often llamactl reads each running router's model list (and unloads idle models).
const ROUTER_POLL: Duration = Duration::from_secs(1);
/// File in the data folder holding the generated management key.
pub const MANAGEMENT_KEY_FILE: &str = "management.key";
/// File in the data folder holding the dashboard's open sessions (digests only).
pub const SESSIONS_FILE: &str = "sessions.json";

/// What the server prints when it starts: where it listens and where its data is.
#[derive(Debug, Clone)]
pub struct Startup {
    /// The address it listens on.
    pub address: SocketAddr,
    /// The database file.
    pub database: PathBuf,
    /// The logs folder.
    pub logs: PathBuf,
    /// Instances defined.
    pub instances: usize,
    /// A management key generated because none was configured, and the file that keeps it.
    pub generated_key: Option<(String, PathBuf)>,
    /// Legacy instance files imported at this start.
    pub imported: Vec<String>,
    /// The dashboard is served.
    pub dashboard: bool,
}

impl std::fmt::Display for Startup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "llamactl-server {} listening on http://{}", env!("CARGO_PKG_VERSION"), self.address)?;
        writeln!(f, "  database:  {}", self.database.display())?;
        writeln!(f, "  logs:      {}", self.logs.display())?;
        writeln!(f, "  instances: {} defined", self.instances)?;
        if !self.imported.is_empty() {
            writeln!(f, "  imported:  {} legacy instance files ({})", self.imported.len(), self.imported.join(", "))?;
        }
        if let Some((key, file)) = &self.generated_key {
            writeln!(f, "  management key: {key}")?;
            writeln!(f, "    (generated because auth.management_keys is empty; kept in {})", file.display())?;
            if self.dashboard {
                writeln!(f, "    sign in to the dashboard with it")?;
            }
        }
        if self.dashboard {
            writeln!(f, "  dashboard: http://{}/", self.address)?;
        }
        writeln!(f, "  API docs:  http://{}/swagger-ui", self.address)
    }
}

/// Management keys in force, and the one generated (with its file) if none was configured.
struct ManagementKeys {
    keys: Vec<String>,
    generated: Option<(String, PathBuf)>,
}

/// The management keys to use: the configured ones, else the one kept in the data folder,
/// else a new one (written there, readable by the owner only).
fn management_keys(config: &Config, data_dir: &Path) -> anyhow::Result<ManagementKeys> {
    if !config.auth.management_keys.is_empty() || !config.auth.require_management_auth {
        return Ok(ManagementKeys { keys: config.auth.management_keys.clone(), generated: None });
    }
    let file = data_dir.join(MANAGEMENT_KEY_FILE);
    if let Ok(existing) = std::fs::read_to_string(&file) {
        let key = existing.trim().to_owned();
        if !key.is_empty() {
            return Ok(ManagementKeys { keys: vec![key.clone()], generated: Some((key, file)) });
        }
    }
    let key = format!("llamactl-mgmt-{}", &keys::generate().secret[keys::KEY_PREFIX.len()..]);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options.open(&file).with_context(|| format!("cannot write {}", file.display()))?;
    writeln!(out, "{key}").with_context(|| format!("cannot write {}", file.display()))?;
    Ok(ManagementKeys { keys: vec![key.clone()], generated: Some((key, file)) })
}

/// How often the recorder folds the histogram samples recorded since into its summaries.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed once; later servers in the same process
/// share it).
///
/// A recorder installed this way keeps every histogram sample until the next scrape or
/// upkeep: without one, memory grows by about 20 bytes per proxied request when nobody
/// scrapes `/metrics` (measured: +30 MiB over 1.7 million requests). A thread of its own
/// runs the upkeep every few seconds.
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                let upkeep = handle.clone();
                let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
                if let Err(error) = spawned {
                    tracing::warn!(%error, "metrics upkeep not started; histograms grow until scraped");
                }
                Some(handle)
            }
            Err(error) => {
                tracing::warn!(%error, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

fn header_pairs(map: &std::collections::BTreeMap<String, String>) -> Vec<(HeaderName, HeaderValue)> {
    map.iter()
        .filter_map(|(name, value)| {
            Some((HeaderName::try_from(name.as_str()).ok()?, HeaderValue::try_from(value).ok()?))
        })
        .collect()
}

fn backend_headers(config: &Config) -> HashMap<BackendType, Vec<(HeaderName, HeaderValue)>> {
    let of = |b: &BackendConfig| header_pairs(&b.response_headers);
    HashMap::from([
        (BackendType::LlamaCpp, of(&config.backends.llama_cpp)),
        (BackendType::MlxLm, of(&config.backends.mlx)),
        (BackendType::Vllm, of(&config.backends.vllm)),
    ])
}

/// A running server's parts, for [`run`] and for tests that drive the app in process.
#[derive(Debug)]
pub struct Assembled {
    /// The router with every layer.
    pub router: Router,
    /// The shared state.
    pub state: AppState,
    /// The database.
    pub db: Arc<SqliteDatabase>,
    /// What to print.
    pub startup: Startup,
}

/// Opens the server's database (creating the data folder), which is then this server's alone
/// until it stops or dies: a second server on the same database is refused here, naming the
/// first (its pid and, once it listens, its address).
pub async fn open_database(config: &Config) -> anyhow::Result<Arc<SqliteDatabase>> {
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create the data folder {}", data_dir.display()))?;
    let database = config.database_path();
    match SqliteDatabase::open(&database).await {
        Ok(db) => Ok(Arc::new(db)),
        Err(DbError::InUse { path, holder }) => Err(anyhow::anyhow!(
            "another llamactl-server uses the database {path} ({holder}); stop it first, or give this one \
             its own data folder (data_dir, LLAMACTL_DATA_DIRECTORY) or database (database.path, LLAMACTL_DATABASE_PATH)"
        )),
        Err(error) => Err(error).with_context(|| format!("cannot open the database {}", database.display())),
    }
}

/// Opens the data, imports legacy instance files, starts the manager and builds the routes.
pub async fn assemble(config: Config, address: SocketAddr) -> anyhow::Result<Assembled> {
    let db = open_database(&config).await?;
    assemble_with(config, db, address).await
}

/// [`assemble`] on a database already opened with [`open_database`].
pub async fn assemble_with(config: Config, db: Arc<SqliteDatabase>, address: SocketAddr) -> anyhow::Result<Assembled> {
    let data_dir = config.data_dir();
    let database = config.database_path();
    // Whoever is refused this database next can tell where this server listens.
    db.describe_holder(&format!("llamactl-server at http://{address}"))
        .context("cannot write the database's lock file")?;
    let report = import_legacy_instances(db.as_ref(), &config.instances_dir()).await?;
    let ManagementKeys { keys: management, generated: generated_key } = management_keys(&config, &data_dir)?;
    let manager = Manager::open(config.manager_config(), db.clone()).await.context("cannot start the manager")?;
    let config = Arc::new(config);
    let reloader = Reloader::new(manager.clone(), config.clone());
    let auth = Arc::new(Authenticator::new(
        &management,
        config.auth.require_management_auth,
        config.auth.require_inference_auth,
        db.clone(),
    ));
    let proxy = Arc::new(Proxy::new(
        config.instances.on_demand_queue_size,
        config.on_demand_timeout(),
        config.server.max_body_bytes,
        backend_headers(&config),
    ));
    let keys: Arc<dyn ApiKeyStore> = db.clone();
    let history: Arc<dyn ActivityStore> = db.clone();
    // The metrics recorder first: the activity's counters are taken from it.
    let metrics = metrics_handle();
    reloader.reconcile_at_boot().await.map_err(|error| anyhow::anyhow!("the declared instances: {error}"))?;
    let startup = Startup {
        address,
        database,
        logs: config.logs_dir(),
        instances: manager.list().len(),
        generated_key,
        imported: report.imported.clone(),
        dashboard: config.server.enable_dashboard,
    };
    let activity = if config.activity.enabled {
        Some(Activity::start(history.clone(), &config.activity).await.context("cannot read the request records")?)
    } else {
        None
    };
    let resources = Arc::new(ResourceHistory::new(db.clone(), config.resource_history.clone()));
    if config.resource_history.enabled {
        tokio::spawn(resources.clone().run(manager.clone()));
    }
    let sessions = Arc::new(Sessions::open(
        Some(config.data_dir().join(SESSIONS_FILE)),
        Duration::from_secs(config.auth.session_hours.saturating_mul(3600)),
    ));
    let routers = Routers::start(manager.clone(), ROUTER_POLL, Some(db.clone()));
    let state = AppState {
        manager,
        routers,
        stopping: CancellationToken::new(),
        model_events: db.clone(),
        keys,
        history,
        activity,
        config: config.clone(),
        reloader,
        auth,
        sessions,
        proxy,
        resources,
        metrics,
    };
    tokio::spawn(crate::api::system::count_transitions(state.clone()));
    let router = with_layers(crate::api::router(state.clone()), &config);
    Ok(Assembled { router, state, db, startup })
}

fn with_layers(router: Router, config: &Config) -> Router {
    let extra = Arc::new(header_pairs(&config.server.response_headers));
    // Bodies are read by the handlers with this limit, which answer 413 in the API's form.
    let mut router = router.layer(axum::extract::DefaultBodyLimit::max(config.server.max_body_bytes));
    if !extra.is_empty() {
        router = router.layer(axum::middleware::from_fn(move |request: Request, next: Next| {
            let extra = extra.clone();
            async move {
                let mut response: Response = next.run(request).await;
                for (name, value) in extra.iter() {
                    response.headers_mut().insert(name.clone(), value.clone());
                }
                response
            }
        }));
    }
    if !config.server.allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> =
            config.server.allowed_origins.iter().filter_map(|o| HeaderValue::try_from(o.as_str()).ok()).collect();
        let any = config.server.allowed_origins.iter().any(|o| o == "*");
        let headers: Vec<HeaderName> =
            config.server.allowed_headers.iter().filter_map(|h| HeaderName::try_from(h.as_str()).ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(if any { AllowOrigin::any() } else { AllowOrigin::list(origins) })
            .allow_methods(tower_http::cors::Any)
            .allow_headers(headers);
        router = router.layer(cors);
    }
    router
}

/// Runs the server on `listener` until `shutdown` completes: then it stops accepting, lets
/// in-flight requests finish (up to `server.shutdown_timeout_seconds`), stops every instance
/// and records their statuses.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    run_with(config, db, listener, shutdown).await
}

/// [`run`] on a database already opened with [`open_database`] (the binary opens it before it
/// listens, so that a second server is refused for the database, not for the port).
pub async fn run_with(
    config: Config,
    db: Arc<SqliteDatabase>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(config.server.shutdown_timeout_seconds);
    let limits = crate::serve::Limits::of(&config.server);
    let address = listener.local_addr()?;
    let Assembled { router, state, db, startup } = assemble_with(config, db, address).await?;
    // Before the server says it is up: a SIGHUP sent after that reloads, never kills it.
    let hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    // A closed stdout is no reason to stop serving.
    let _ = std::io::stdout().write_all(startup.to_string().as_bytes());
    let _ = std::io::stdout().flush();

    let stop = state.stopping.clone();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    tokio::spawn(reload_on_hangup(hangups, state.reloader.clone(), stop.clone()));
    tokio::spawn(crate::declared::watch::watch_files(state.reloader.clone(), stop.clone()));
    tokio::select! {
        () = crate::serve::serve(listener, router, limits, stop.clone()) => {}
        () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "requests still running after the shutdown grace period are cut");
        }
    }
    tracing::info!("stopping every instance");
    state.routers.shutdown();
    state.manager.shutdown().await;
    db.close().await;
    Ok(())
}

/// Reloads the configuration at every SIGHUP until the server stops.
async fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, reloader: Arc<Reloader>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                reloader.reload(Trigger::Signal, false).await;
            }
        }
    }
}
