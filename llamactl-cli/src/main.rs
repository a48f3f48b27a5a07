//! `llamactl`: the command-line client of llamactl-server.
//!
//! Exit codes: 0 ok, 1 error from the server, 2 usage error, 3 cannot reach the server,
//! 4 not found. Errors are one line on standard error (`error: ...`), followed, when an
//! instance did not come up, by the last lines of its log.

mod cli;
mod commands;
mod error;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use llamactl_api::{Client, ClientError};

use crate::cli::{Cli, Command};
use crate::commands::{activity, config, inflight, instance, key, misc, top};
use crate::error::CliError;
use crate::output::Printer;

async fn run(cli: Cli, printer: Printer) -> Result<(), CliError> {
    if let Command::Completion { shell } = cli.command {
        misc::completion(shell);
        return Ok(());
    }
    let connection = settings::connection(&cli)?;
    let client = match &connection.ca_cert {
        None => Client::new(&connection.server, connection.api_key),
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| CliError::Usage(format!("--ca-cert: cannot read {}: {e}", path.display())))?;
            Client::with_ca_certificates(&connection.server, connection.api_key, &pem)
        }
    };
    let client = client.map_err(|e| match (e, &connection.ca_cert) {
        (ClientError::Certificate(message), Some(path)) => {
            CliError::Usage(format!("--ca-cert: {}: {message}", path.display()))
        }
        (other, _) => CliError::Usage(format!("--server: {other}")),
    })?;
    match cli.command {
        Command::Instance(command) => instance::run(&client, &printer, command).await,
        Command::Key(command) => key::run(&client, &printer, command).await,
        Command::Activity(flags) => activity::run(&client, &printer, &flags).await,
        Command::Top { interval, once } => top::run(&client, &printer, interval, once).await,
        Command::Inflight { command } => inflight::run(&client, &printer, command).await,
        Command::Models => misc::models(&client, &printer).await,
        Command::Status => misc::status(&client, &printer).await,
        Command::Config(command) => config::run(&client, &printer, command).await,
        Command::Completion { .. } => Ok(()),
    }
}

fn main() -> ExitCode {
    // The TLS provider for https:// servers, before any client exists.
    llamactl_api::install_tls_provider();
    // clap prints its own usage errors and exits with 2 (0 for --help and --version).
    let cli = Cli::parse();
    let printer = Printer::new(cli.output, cli.no_color, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, printer)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The backend's last lines first, each ended (the last one too), so that the
            // error is the last line, on its own.
            if let CliError::NotReady { log, .. } = &error
                && !log.trim().is_empty()
            {
                eprintln!("last lines of its log:");
                for line in log.lines() {
                    eprintln!("  {line}");
                }
            }
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
