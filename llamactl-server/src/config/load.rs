//! Loading the configuration: defaults < YAML file < `LLAMACTL_*` environment.
//!
//! - **Defaults** are [`Config::default()`] (every section is `#[serde(default)]`, so a key
//!   missing from the file keeps its default).
//! - **The YAML file** is the first of: the path given to [`load`]; `LLAMACTL_CONFIG_PATH`;
//!   `./llamactl.yaml`, `./config.yaml`, `~/.config/llamactl/config.yaml`,
//!   `/etc/llamactl/config.yaml` (the first that exists). A path given explicitly or through
//!   `LLAMACTL_CONFIG_PATH` must exist; finding no file in the search is fine. The text goes
//!   through `${VAR}` / `${VAR:-default}` expansion (see `expand.rs`) before it is parsed. A key
//!   without a value (`key:` or `key: ~`) means "not set". A few keys of older Go llamactl
//!   versions are accepted: `instances.configs_dir` (now `instances.instances_dir`),
//!   `instances.log_rotation_max_size_mb` (now `instances.log_rotation_max_size`),
//!   `instances.auto_create_dirs` and `auth.inference_keys` (ignored, with a warning where it
//!   matters).
//! - **Environment variables** are the Go llamactl's `LLAMACTL_*` names, mapped explicitly by
//!   the table `ENV_VARS` in `env.rs` (plus `LLAMACTL_LOG_FORMAT` and `LLAMACTL_DEFAULT_IDLE_TIMEOUT`).
//!   An empty value counts as unset, as in the Go llamactl. `LLAMACTL_*` variables not in the
//!   table (`LLAMACTL_SERVER`, `LLAMACTL_API_KEY`, ... of the CLI) are ignored. Lists are
//!   comma-separated (`LLAMACTL_ALLOWED_ORIGINS`, `LLAMACTL_MANAGEMENT_KEYS`), backend arguments
//!   space-separated, backend environments `KEY=value,KEY=value`, response headers
//!   `Name=value;Name=value`, the port range `8000-9000` or `8000,9000`.
//!
//! Errors stop the start and name the key (dotted path) and where its value came from: an
//! unknown key, a value of the wrong type, a value that makes no sense (port range, timeout), an
//! environment variable that does not parse.
//!
//! Here: the order of the layers, the choice of the file and the origin of an error. The
//! layers and checks are beside it: `yaml_file.rs` (the file as a provider, older Go keys),
//! `env.rs` (the `ENV_VARS` table and how each value is read), `validate.rs` (the meaning
//! checks, by section), `error.rs` ([`ConfigError`]).

use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::{Figment, Metadata, Source};

use super::Config;
use super::expand::expand;

mod env;
mod error;
#[cfg(test)]
mod test_support;
mod validate;
mod yaml_file;

use env::{ENV_PROVIDER_NAME, EnvLayer};
pub use error::ConfigError;
use validate::validate;
use yaml_file::YamlFile;

/// Environment variable naming the configuration file.
const CONFIG_PATH_VAR: &str = "LLAMACTL_CONFIG_PATH";

/// The configuration and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The configuration.
    pub config: Config,
    /// The YAML file used, if any.
    pub source: Option<PathBuf>,
    /// Things worth logging once logging is set up: ignored keys or variables of older Go
    /// llamactl versions.
    pub warnings: Vec<String>,
}

/// Loads the configuration: defaults, then the YAML file (`explicit` if given, else
/// `LLAMACTL_CONFIG_PATH`, else the first of `./llamactl.yaml`, `./config.yaml`,
/// `~/.config/llamactl/config.yaml`, `/etc/llamactl/config.yaml` that exists), then the
/// `LLAMACTL_*` environment variables. See the module documentation for the details.
pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let home = dirs::home_dir();
    load_from(explicit, &|name| std::env::var(name).ok(), &search_paths(&cwd, home.as_deref()))
}

/// The files searched, in order, when no file is named: `cwd` and `home` are injectable for
/// tests.
fn search_paths(cwd: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let mut paths = vec![cwd.join("llamactl.yaml"), cwd.join("config.yaml")];
    if let Some(home) = home {
        paths.push(home.join(".config").join("llamactl").join("config.yaml"));
    }
    paths.push(PathBuf::from("/etc/llamactl/config.yaml"));
    paths
}

/// [`load`] with the environment lookup and the searched files injected.
fn load_from(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    search: &[PathBuf],
) -> Result<LoadedConfig, ConfigError> {
    let mut warnings = Vec::new();

    let file = match choose_file(explicit, env, search) {
        Some((path, origin)) => {
            let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                path: path.clone(),
                origin,
                error,
            })?;
            let text = expand(&text, env).map_err(|error| ConfigError::Expand { path: path.clone(), error })?;
            let file = YamlFile { path, text };
            let (_, file_warnings) =
                file.parse().map_err(|message| ConfigError::Yaml { path: file.path.clone(), message })?;
            warnings.extend(file_warnings);
            // The file alone first: where the environment sets keys of the same section, figment
            // would attribute an unknown key of that section to the environment.
            Figment::from(&file)
                .extract::<Config>()
                .map_err(|e| invalid(&e, Some(&file.path), &EnvLayer::default()))?;
            Some(file)
        }
        None => None,
    };

    let env_layer = EnvLayer::read(env)?;
    warnings.extend(env_layer.warnings.iter().cloned());

    let mut figment = Figment::new();
    if let Some(file) = &file {
        figment = figment.merge(file);
    }
    let figment = figment.merge(&env_layer);
    let config: Config = figment.extract().map_err(|e| invalid(&e, None, &env_layer))?;

    validate(&config).map_err(|(key, message)| {
        // `a.b[1]` was found at `a.b`.
        let path = key.split('[').next().unwrap_or(&key);
        let (file, variable) = origin(figment.find_metadata(path), path, &env_layer);
        ConfigError::Invalid { key, file, variable, message }
    })?;

    let mut config = config;
    config.origin = file.as_ref().map(|f| super::ConfigOrigin { path: f.path.clone(), text: f.text.clone() });
    Ok(LoadedConfig { config, source: file.map(|f| f.path), warnings })
}

/// The file to read and how it was chosen.
fn choose_file(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    search: &[PathBuf],
) -> Option<(PathBuf, &'static str)> {
    if let Some(path) = explicit {
        return Some((path.to_path_buf(), "given explicitly"));
    }
    if let Some(path) = env(CONFIG_PATH_VAR).filter(|p| !p.is_empty()) {
        return Some((PathBuf::from(path), "named by LLAMACTL_CONFIG_PATH"));
    }
    search.iter().find(|p| p.is_file()).map(|p| (p.clone(), "found in the search path"))
}

/// A figment error as a [`ConfigError::Invalid`]. `file`: the file when only the file was
/// extracted.
fn invalid(error: &figment::Error, file: Option<&Path>, env_layer: &EnvLayer) -> ConfigError {
    let key = error.path.join(".");
    let (found_file, variable) = origin(error.metadata.as_ref(), &key, env_layer);
    let file = found_file.or_else(|| if variable.is_none() { file.map(Path::to_path_buf) } else { None });
    let message = match &error.kind {
        Kind::UnknownField(_, []) => "unknown key".to_owned(),
        Kind::UnknownField(_, expected) => format!("unknown key (expected one of: {})", expected.join(", ")),
        Kind::UnknownVariant(value, expected) => {
            format!("unknown value `{value}` (expected one of: {})", expected.join(", "))
        }
        other => other.to_string(),
    };
    ConfigError::Invalid { key, file, variable, message }
}

/// Where the value at `key` came from: the file, or an environment variable.
fn origin(metadata: Option<&Metadata>, key: &str, env_layer: &EnvLayer) -> (Option<PathBuf>, Option<String>) {
    let Some(metadata) = metadata else { return (None, None) };
    if let Some(Source::File(path)) = &metadata.source {
        return (Some(path.clone()), None);
    }
    if metadata.name == ENV_PROVIDER_NAME {
        let variable = env_layer.variable_for(key).unwrap_or("LLAMACTL_*");
        return (None, Some(variable.to_owned()));
    }
    (None, None)
}

#[cfg(test)]
mod tests;
