//! Command-line and environment settings (the Go llamactl's `LLAMACTL_*` names).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use llamactl_core::ManagerConfig;

/// Runs and supervises llama.cpp, mlx_lm and vLLM instances behind one REST API.
#[derive(Debug, Parser)]
#[command(version, about)]
pub(crate) struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LLAMACTL_HOST", default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Port to listen on.
    #[arg(long, env = "LLAMACTL_PORT", default_value_t = 8080)]
    pub(crate) port: u16,
    /// Folder for the database and logs (default: ~/.local/share/llamactl).
    #[arg(long, env = "LLAMACTL_DATA_DIRECTORY")]
    pub(crate) data_dir: Option<PathBuf>,
    /// SQLite database file (default: llamactl.db in the data folder).
    #[arg(long, env = "LLAMACTL_DATABASE_PATH")]
    pub(crate) database_path: Option<PathBuf>,
    /// Ports for instances without a pinned port, as START-END.
    #[arg(long, env = "LLAMACTL_INSTANCE_PORT_RANGE", default_value = "8000-9000", value_parser = parse_range)]
    pub(crate) port_range: (u16, u16),
    /// Most instances running at once (-1: no limit).
    #[arg(long, env = "LLAMACTL_MAX_RUNNING_INSTANCES", default_value_t = -1, allow_negative_numbers = true)]
    pub(crate) max_running_instances: i64,
    /// Command that runs llama.cpp's server.
    #[arg(long, env = "LLAMACTL_LLAMACPP_COMMAND")]
    pub(crate) llamacpp_command: Option<String>,
    /// Command that runs mlx_lm's server.
    #[arg(long, env = "LLAMACTL_MLX_COMMAND")]
    pub(crate) mlx_command: Option<String>,
    /// Command that runs vLLM.
    #[arg(long, env = "LLAMACTL_VLLM_COMMAND")]
    pub(crate) vllm_command: Option<String>,
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let (start, end) = text.split_once('-').ok_or("use START-END, e.g. 8000-9000")?;
    let start: u16 = start.trim().parse().map_err(|_| format!("{start:?} is not a port"))?;
    let end: u16 = end.trim().parse().map_err(|_| format!("{end:?} is not a port"))?;
    if start == 0 || start > end {
        return Err(format!("{start}-{end} is not a range of ports"));
    }
    Ok((start, end))
}

impl Settings {
    pub(crate) fn data_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.data_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(dirs::data_dir().context("no data directory: set LLAMACTL_DATA_DIRECTORY")?.join("llamactl")),
        }
    }

    pub(crate) fn database_path(&self, data_dir: &Path) -> PathBuf {
        self.database_path.clone().unwrap_or_else(|| data_dir.join("llamactl.db"))
    }

    pub(crate) fn manager_config(&self, data_dir: &Path) -> ManagerConfig {
        let mut config = ManagerConfig {
            port_range: self.port_range.0..=self.port_range.1,
            max_running_instances: usize::try_from(self.max_running_instances).ok(),
            logs_dir: Some(data_dir.join("logs")),
            ..ManagerConfig::default()
        };
        config.backends.llama_cpp.command.clone_from(&self.llamacpp_command);
        config.backends.mlx_lm.command.clone_from(&self.mlx_command);
        config.backends.vllm.command.clone_from(&self.vllm_command);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(parse_range("8000-9000"), Ok((8000, 9000)));
        assert!(parse_range("9000-8000").is_err());
        assert!(parse_range("0-10").is_err());
        assert!(parse_range("8000").is_err());
    }

    #[test]
    fn defaults_are_local_and_unlimited() {
        let settings = Settings::parse_from(["llamactl-server"]);
        assert_eq!(settings.host, "127.0.0.1");
        let config = settings.manager_config(Path::new("/data"));
        assert_eq!(config.max_running_instances, None);
        assert_eq!(config.port_range, 8000..=9000);
        assert_eq!(config.logs_dir.as_deref(), Some(Path::new("/data/logs")));
    }
}
