//! `llamactl-server`: loads the configuration and runs the server until SIGINT or SIGTERM.

use std::path::PathBuf;

/// mimalloc as the server's allocator: a proxied request allocates and frees many small
/// buffers on one thread and its record is freed on another, where glibc's malloc spent about
/// a tenth of the server's CPU time (perf, `scripts/bench.sh activity`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use llamactl_server::config::{self, Config, LogFormat};

/// Runs and supervises llama.cpp, mlx_lm and vLLM instances behind one OpenAI-compatible
/// endpoint.
///
/// Configuration: defaults, then a YAML file (--config, LLAMACTL_CONFIG_PATH, ./llamactl.yaml,
/// ./config.yaml, ~/.config/llamactl/config.yaml, /etc/llamactl/config.yaml), then LLAMACTL_*
/// environment variables.
#[derive(Debug, Parser)]
#[command(name = "llamactl-server", version, about, long_about = None)]
struct Cli {
    /// Configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the OpenAPI document of the REST API.
    ///
    /// Example: llamactl-server openapi > openapi/openapi.json
    Openapi,
    /// Print the effective configuration (secrets removed) and exit.
    Config,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, before the
/// server says it is listening, so a signal sent right after that is never missed.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down");
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(config.server.log_format);
    // The database first: a second server on the same data is refused naming the first, before
    // it could fail on the port they would share.
    let db = llamactl_server::app::open_database(&config).await?;
    let address = (config.server.host.clone(), config.server.port);
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {}:{}", address.0, address.1))?;
    llamactl_server::app::run_with(config, db, listener, shutdown_signal()?).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Openapi)) {
        match llamactl_server::api::openapi().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                return ExitCode::SUCCESS;
            }
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let loaded = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::Config)) {
        println!("{}", serde_json::to_string_pretty(&loaded.config.redacted()).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    if let Some(source) = &loaded.source {
        eprintln!("configuration: {}", source.display());
    }
    match serve(loaded.config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
