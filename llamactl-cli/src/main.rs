//! `llamactl`: the command-line client of llamactl-server. This first version lists and shows
//! instances; creating, starting, stopping and following logs come with the full REST API.
//!
//! Exit codes: 0 ok, 1 error from the server, 2 usage error, 3 cannot reach the server,
//! 4 not found.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

/// Manage llamactl instances.
#[derive(Debug, Parser)]
#[command(name = "llamactl", version, about)]
struct Cli {
    /// Server URL.
    #[arg(long, global = true, env = "LLAMACTL_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Work with instances.
    #[command(subcommand)]
    Instance(InstanceCommand),
}

#[derive(Debug, Subcommand)]
enum InstanceCommand {
    /// List instances.
    ///
    /// Example: llamactl instance list
    #[command(alias = "ls")]
    List,
    /// Show one instance as JSON.
    ///
    /// Example: llamactl instance show qwen-7b
    Show {
        /// Instance name.
        name: String,
    },
}

#[derive(Debug)]
enum Failure {
    Server(String),
    Unreachable(String),
    NotFound(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::Server(_) => 1,
            Self::Unreachable(_) => 3,
            Self::NotFound(_) => 4,
        }
    }
}

async fn get(server: &str, path: &str) -> Result<Value, Failure> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let response = reqwest::get(&url).await.map_err(|e| {
        Failure::Unreachable(format!(
            "cannot reach {server}: {e} (is llamactl-server running? set --server or LLAMACTL_SERVER)"
        ))
    })?;
    let status = response.status();
    let body: Value =
        response.json().await.map_err(|e| Failure::Server(format!("unreadable answer from {url}: {e}")))?;
    let details = || body["details"].as_str().unwrap_or("").to_owned();
    match status.as_u16() {
        200..=299 => Ok(body),
        404 => Err(Failure::NotFound(details())),
        code => Err(Failure::Server(format!("server answered {code}: {}", details()))),
    }
}

fn print_table(instances: &[Value]) {
    let rows: Vec<[String; 5]> = instances
        .iter()
        .map(|i| {
            let text = |v: &Value| {
                v.as_str().map(str::to_owned).unwrap_or_else(|| if v.is_null() { "-".into() } else { v.to_string() })
            };
            [
                text(&i["name"]),
                text(&i["options"]["backend_type"]),
                text(&i["status"]),
                text(&i["port"]),
                text(&i["restart_count"]),
            ]
        })
        .collect();
    let header = ["NAME", "BACKEND", "STATUS", "PORT", "RESTARTS"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Commands::Instance(InstanceCommand::List) => {
            let list = get(&cli.server, "/api/v1/instances").await?;
            print_table(list.as_array().map(Vec::as_slice).unwrap_or_default());
        }
        Commands::Instance(InstanceCommand::Show { name }) => {
            let instance = get(&cli.server, &format!("/api/v1/instances/{name}")).await?;
            println!("{}", serde_json::to_string_pretty(&instance).unwrap_or_default());
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let (Failure::Server(message) | Failure::Unreachable(message) | Failure::NotFound(message)) = &failure;
            eprintln!("error: {message}");
            ExitCode::from(failure.code())
        }
    }
}
