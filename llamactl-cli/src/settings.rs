//! Where the server is and which key to send: flag, then environment (both through clap), then
//! the command line's configuration file, then the default.

use std::path::PathBuf;

use serde::Deserialize;

use crate::cli::Cli;
use crate::error::CliError;

/// The default server.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// `~/.config/llamactl/cli.yaml`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    server: Option<String>,
    api_key: Option<String>,
    ca_cert: Option<PathBuf>,
}

/// The server URL and key to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Server URL.
    pub server: String,
    /// API key.
    pub api_key: Option<String>,
    /// Extra certificate authorities (PEM file).
    pub ca_cert: Option<PathBuf>,
}

fn default_file() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("llamactl").join("cli.yaml"))
}

/// Resolves the connection for `cli`.
pub fn connection(cli: &Cli) -> Result<Connection, CliError> {
    let explicit = cli.config.is_some();
    let file = cli.config.clone().or_else(default_file);
    let settings = match file {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
            serde_norway::from_str::<FileSettings>(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?
        }
        Some(path) if explicit => return Err(CliError::Usage(format!("{} does not exist", path.display()))),
        _ => FileSettings::default(),
    };
    Ok(Connection {
        server: cli.server.clone().or(settings.server).unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
        api_key: cli.api_key.clone().or(settings.api_key),
        ca_cert: cli.ca_cert.clone().or(settings.ca_cert),
    })
}
