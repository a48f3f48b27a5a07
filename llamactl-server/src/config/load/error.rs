//! [`ConfigError`]: why the configuration could not be loaded, naming the key and where its
//! value came from.

use std::path::{Path, PathBuf};

use crate::config::expand::ExpandError;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read (for a path given explicitly or through
    /// `LLAMACTL_CONFIG_PATH`: it does not exist).
    #[error("cannot read the configuration file {} ({origin}): {error}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// How the file was chosen.
        origin: &'static str,
        /// The failure.
        #[source]
        error: std::io::Error,
    },
    /// A `${...}` placeholder in the file is malformed.
    #[error("configuration file {}: {error}", .path.display())]
    Expand {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number.
        #[source]
        error: ExpandError,
    },
    /// The file is not valid YAML, or not a mapping of keys.
    #[error("configuration file {}: {message}", .path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What is wrong (with line and column when the parser knows them).
        message: String,
    },
    /// An unknown key, a value of the wrong type, or a value that makes no sense.
    #[error("invalid configuration: {}", describe_invalid(.key, .file.as_deref(), .variable.as_deref(), .message))]
    Invalid {
        /// Dotted path of the key, e.g. `instances.port_range` (empty: the whole configuration).
        key: String,
        /// The file the value came from, if it came from the file.
        file: Option<PathBuf>,
        /// The environment variable the value came from, if it came from the environment.
        variable: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An environment variable's value does not parse.
    #[error("environment variable {variable}: {}expected {expected}", .value.as_ref().map(|v| format!("invalid value {v:?}, ")).unwrap_or_default())]
    Env {
        /// The variable.
        variable: String,
        /// Its value (left out for variables that may hold secrets).
        value: Option<String>,
        /// What was expected.
        expected: &'static str,
    },
}

fn describe_invalid(key: &str, file: Option<&Path>, variable: Option<&str>, message: &str) -> String {
    let key = if key.is_empty() { String::new() } else { format!("`{key}` ") };
    match (file, variable) {
        (Some(file), _) => format!("{key}in {}: {message}", file.display()),
        (None, Some(variable)) => format!("{key}from environment variable {variable}: {message}"),
        (None, None) => format!("{key}(default value): {message}"),
    }
}
