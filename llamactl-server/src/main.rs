//! `llamactl-server`: opens the instance database, supervises instances and serves the REST
//! API. This first version serves health, version and read-only instance listings; the full
//! management API, the OpenAI-compatible proxy, API keys and YAML configuration come next.

mod api;
mod settings;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use llamactl_core::{Database, Manager, SqliteDatabase};

use settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();

    let data_dir = settings.data_dir()?;
    let db_path = settings.database_path(&data_dir);
    let db = Arc::new(SqliteDatabase::open(&db_path).await.with_context(|| format!("opening {}", db_path.display()))?);
    let manager =
        Manager::open(settings.manager_config(&data_dir), db.clone()).await.context("starting the manager")?;

    let listener = tokio::net::TcpListener::bind((settings.host.as_str(), settings.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
    let address = listener.local_addr()?;
    // Where things are, for the person who started the server. A closed stdout is no reason to
    // stop serving, so write errors are ignored.
    let banner = format!(
        "llamactl-server {} listening on http://{address}\n  database:  {}\n  logs:      {}\n  instances: {} defined\n",
        env!("CARGO_PKG_VERSION"),
        db_path.display(),
        data_dir.join("logs").display(),
        manager.list().len()
    );
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());

    axum::serve(listener, api::router(manager.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopping every instance");
    manager.shutdown().await;
    db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
