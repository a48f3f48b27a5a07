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
//!   the table `ENV_VARS` (plus `LLAMACTL_LOG_FORMAT` and `LLAMACTL_DEFAULT_IDLE_TIMEOUT`).
//!   An empty value counts as unset, as in the Go llamactl. `LLAMACTL_*` variables not in the
//!   table (`LLAMACTL_SERVER`, `LLAMACTL_API_KEY`, ... of the CLI) are ignored. Lists are
//!   comma-separated (`LLAMACTL_ALLOWED_ORIGINS`, `LLAMACTL_MANAGEMENT_KEYS`), backend arguments
//!   space-separated, backend environments `KEY=value,KEY=value`, response headers
//!   `Name=value;Name=value`, the port range `8000-9000` or `8000,9000`.
//!
//! Errors stop the start and name the key (dotted path) and where its value came from: an
//! unknown key, a value of the wrong type, a value that makes no sense (port range, timeout), an
//! environment variable that does not parse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::value::{Dict, Empty, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde_norway::Value as Yaml;

use super::Config;
use super::expand::{ExpandError, expand};
use llamactl_core::docker::DockerRunOptions;

/// Environment variable naming the configuration file.
const CONFIG_PATH_VAR: &str = "LLAMACTL_CONFIG_PATH";
/// figment metadata name of the file provider.
const FILE_PROVIDER_NAME: &str = "YAML file";
/// figment metadata name of the environment provider.
const ENV_PROVIDER_NAME: &str = "LLAMACTL_* environment variables";

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

/// The smallest `server.max_header_bytes` allowed: below it, ordinary requests (a browser's
/// headers, a bearer key) would be refused.
const MIN_HEADER_BYTES: usize = 4096;

/// Meaning checks serde cannot do. Returns the key and what is wrong.
fn validate(config: &Config) -> Result<(), (String, String)> {
    let [start, end] = config.instances.port_range;
    if start == 0 {
        return Err((
            "instances.port_range".into(),
            format!("the range [{start}, {end}] starts at 0; ports start at 1"),
        ));
    }
    if start > end {
        return Err(("instances.port_range".into(), format!("the range [{start}, {end}] ends before it starts")));
    }
    let server = &config.server;
    for (key, value) in [
        ("server.max_connections", server.max_connections as u64),
        ("server.header_read_timeout_seconds", server.header_read_timeout_seconds),
        ("server.keep_alive_timeout_seconds", server.keep_alive_timeout_seconds),
    ] {
        if value == 0 {
            return Err((key.into(), "must be at least 1".to_owned()));
        }
    }
    if server.max_header_bytes < MIN_HEADER_BYTES {
        return Err((
            "server.max_header_bytes".into(),
            format!("{} is too small for ordinary requests; give at least {MIN_HEADER_BYTES}", server.max_header_bytes),
        ));
    }
    if config.instances.on_demand_start_timeout == 0 {
        return Err(("instances.on_demand_start_timeout".into(), "must be at least 1 second".to_owned()));
    }
    for (key, backend) in [
        ("backends.llama-cpp.docker", &config.backends.llama_cpp),
        ("backends.vllm.docker", &config.backends.vllm),
        ("backends.mlx.docker", &config.backends.mlx),
    ] {
        let docker = &backend.docker;
        if key == "backends.mlx.docker" && docker.enabled {
            return Err(("backends.mlx.docker.enabled".to_owned(), "mlx_lm has no Docker mode".to_owned()));
        }
        if let Err(message) = DockerRunOptions::from_run_args(&docker.args) {
            return Err((format!("{key}.args"), message));
        }
        if let Ok(run) = docker.run_options()
            && let Err((field, message)) = run.validate()
        {
            // `docker.volumes[1]` in the instance's terms is `<backend>.docker.volumes[1]` here.
            return Err((format!("{key}.{}", field.trim_start_matches("docker.")), message));
        }
    }
    // An empty key would let in anyone who sends an empty one; it is usually a `${VAR}` whose
    // variable is not set (expanded to nothing, as a shell does).
    if let Some(position) = config.auth.management_keys.iter().position(|k| k.trim().is_empty()) {
        return Err((
            "auth.management_keys".into(),
            format!("key {} is empty (is the variable it names unset?); remove it or give a key", position + 1),
        ));
    }
    Ok(())
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

// ---------------------------------------------------------------------------------------------
// The YAML file

/// figment provider of a configuration file's (expanded) YAML text.
#[derive(Debug)]
struct YamlFile {
    /// The file, for error messages.
    path: PathBuf,
    /// Its text after `${...}` expansion.
    text: String,
}

impl YamlFile {
    /// The file's keys, with the older Go llamactl keys rewritten, and warnings about them.
    fn parse(&self) -> Result<(Dict, Vec<String>), String> {
        let mut yaml: Yaml = serde_norway::from_str(&self.text).map_err(|e| format!("invalid YAML: {e}"))?;
        yaml.apply_merge().map_err(|e| format!("invalid YAML merge key (`<<`): {e}"))?;
        let mut dict = match yaml {
            Yaml::Null => Dict::new(),
            Yaml::Mapping(mapping) => convert_mapping(mapping)?,
            other => return Err(format!("expected a mapping of configuration keys, found {}", yaml_kind(&other))),
        };
        let warnings = go_compat(&mut dict);
        Ok((dict, warnings))
    }
}

impl Provider for YamlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(FILE_PROVIDER_NAME, Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let (dict, _) = self.parse().map_err(figment::Error::from)?;
        Ok(Profile::Default.collect(dict))
    }
}

fn yaml_kind(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A YAML mapping as a figment dictionary. Keys without a value are left out: they mean "not
/// set" (as for the Go llamactl, whose YAML decoder leaves a field alone on `null`).
fn convert_mapping(mapping: serde_norway::Mapping) -> Result<Dict, String> {
    let mut dict = Dict::new();
    for (key, value) in mapping {
        if value.is_null() {
            continue;
        }
        let key = match key {
            Yaml::String(s) => s,
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            other => return Err(format!("unsupported key: {} (keys must be strings)", yaml_kind(&other))),
        };
        dict.insert(key, convert(value)?);
    }
    Ok(dict)
}

fn convert(value: Yaml) -> Result<Value, String> {
    Ok(match value {
        Yaml::Null => Value::from(Empty::None),
        Yaml::Bool(b) => Value::from(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Yaml::String(s) => Value::from(s),
        Yaml::Sequence(items) => Value::from(items.into_iter().map(convert).collect::<Result<Vec<_>, _>>()?),
        Yaml::Mapping(mapping) => Value::from(convert_mapping(mapping)?),
        Yaml::Tagged(tagged) => convert(tagged.value)?,
    })
}

/// Keys of older Go llamactl versions: renamed ones are moved to their current name, obsolete
/// ones removed. Returns warnings for what is ignored.
fn go_compat(dict: &mut Dict) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(Value::Dict(_, instances)) = dict.get_mut("instances") {
        for (old, new) in [("configs_dir", "instances_dir"), ("log_rotation_max_size_mb", "log_rotation_max_size")] {
            if let Some(value) = instances.remove(old) {
                if instances.contains_key(new) {
                    warnings.push(format!("instances.{old} is ignored: instances.{new} (its new name) is set too"));
                } else {
                    instances.insert(new.to_owned(), value);
                }
            }
        }
        if let Some(value) = instances.remove("auto_create_dirs")
            && !matches!(value, Value::Bool(_, true))
        {
            warnings.push("instances.auto_create_dirs is not supported and is ignored".to_owned());
        }
    }
    if let Some(Value::Dict(_, auth)) = dict.get_mut("auth")
        && let Some(keys) = auth.remove("inference_keys")
        && !matches!(&keys, Value::Array(_, items) if items.is_empty())
    {
        warnings.push(
            "auth.inference_keys is ignored (as by the Go llamactl): inference keys are created through the API"
                .to_owned(),
        );
    }
    warnings
}

// ---------------------------------------------------------------------------------------------
// The environment

/// How an environment variable's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvKind {
    /// Taken as it is.
    Text,
    /// true/false/1/0 (also t/f, any case, like Go's `strconv.ParseBool`).
    Bool,
    /// Integer types.
    U16,
    U32,
    U64,
    I64,
    /// `8000-9000` or `8000,9000`.
    PortRange,
    /// Comma-separated list (items trimmed, empty items dropped).
    List,
    /// Space-separated arguments.
    Args,
    /// `KEY=value,KEY=value`, merged into the file's map.
    Pairs,
    /// `Name=value;Name=value`, merged into the file's map.
    Headers,
    /// `plain` or `json`.
    LogFormat,
    ShutdownPolicy,
    /// Not supported: ignored with this warning.
    Ignored(&'static str),
}

/// One `LLAMACTL_*` variable: its name, the dotted key it sets, how its value is read.
#[derive(Debug)]
struct EnvVar {
    name: &'static str,
    key: &'static str,
    kind: EnvKind,
}

const fn var(name: &'static str, key: &'static str, kind: EnvKind) -> EnvVar {
    EnvVar { name, key, kind }
}

/// The environment variables, in the order they are applied: an alias comes before the
/// current name, so that the current name wins when both are set.
const ENV_VARS: &[EnvVar] = {
    use EnvKind::*;
    &[
        // server
        var("LLAMACTL_HOST", "server.host", Text),
        var("LLAMACTL_PORT", "server.port", U16),
        var("LLAMACTL_ALLOWED_ORIGINS", "server.allowed_origins", List),
        var("LLAMACTL_ENABLE_SWAGGER", "server.enable_swagger", Bool),
        var("LLAMACTL_LOG_FORMAT", "server.log_format", LogFormat),
        var("LLAMACTL_MAX_CONNECTIONS", "server.max_connections", U64),
        var("LLAMACTL_HEADER_READ_TIMEOUT_SECONDS", "server.header_read_timeout_seconds", U64),
        var("LLAMACTL_KEEP_ALIVE_TIMEOUT_SECONDS", "server.keep_alive_timeout_seconds", U64),
        var("LLAMACTL_MAX_HEADER_BYTES", "server.max_header_bytes", U64),
        var("LLAMACTL_SHUTDOWN_POLICY", "instances.shutdown_policy", ShutdownPolicy),
        // folders
        var("LLAMACTL_DATA_DIRECTORY", "data_dir", Text),
        var("LLAMACTL_LOG_DIR", "instances.logs_dir", Text),
        var("LLAMACTL_LOGS_DIRECTORY", "instances.logs_dir", Text),
        var("LLAMACTL_LOGS_DIR", "instances.logs_dir", Text),
        var("LLAMACTL_INSTANCES_DIRECTORY", "instances.instances_dir", Text),
        var("LLAMACTL_INSTANCES_DIR", "instances.instances_dir", Text),
        var(
            "LLAMACTL_AUTO_CREATE_DATA_DIR",
            "",
            Ignored("LLAMACTL_AUTO_CREATE_DATA_DIR is not supported and is ignored"),
        ),
        // instances
        var("LLAMACTL_INSTANCE_PORT_RANGE", "instances.port_range", PortRange),
        var("LLAMACTL_MAX_INSTANCES", "instances.max_instances", I64),
        var("LLAMACTL_MAX_RUNNING_INSTANCES", "instances.max_running_instances", I64),
        var("LLAMACTL_ENABLE_LRU_EVICTION", "instances.enable_lru_eviction", Bool),
        var("LLAMACTL_DEFAULT_IDLE_TIMEOUT", "instances.default_idle_timeout", U64),
        var("LLAMACTL_DEFAULT_AUTO_RESTART", "instances.default_auto_restart", Bool),
        var("LLAMACTL_DEFAULT_MAX_RESTARTS", "instances.default_max_restarts", U32),
        var("LLAMACTL_DEFAULT_RESTART_DELAY", "instances.default_restart_delay", U64),
        var("LLAMACTL_DEFAULT_ON_DEMAND_START", "instances.default_on_demand_start", Bool),
        var("LLAMACTL_ON_DEMAND_START_TIMEOUT", "instances.on_demand_start_timeout", U64),
        var("LLAMACTL_TIMEOUT_CHECK_INTERVAL", "instances.timeout_check_interval", U64),
        var("LLAMACTL_LOG_ROTATION_ENABLED", "instances.log_rotation_enabled", Bool),
        var("LLAMACTL_LOG_ROTATION_MAX_SIZE_MB", "instances.log_rotation_max_size", U64),
        var("LLAMACTL_LOG_ROTATION_MAX_SIZE", "instances.log_rotation_max_size", U64),
        var("LLAMACTL_LOG_ROTATION_COMPRESS", "instances.log_rotation_compress", Bool),
        // backends: llama.cpp
        var("LLAMACTL_LLAMA_EXECUTABLE", "backends.llama-cpp.command", Text),
        var("LLAMACTL_LLAMACPP_COMMAND", "backends.llama-cpp.command", Text),
        var("LLAMACTL_LLAMACPP_ARGS", "backends.llama-cpp.args", Args),
        var("LLAMACTL_LLAMACPP_ENV", "backends.llama-cpp.environment", Pairs),
        var("LLAMACTL_LLAMACPP_RESPONSE_HEADERS", "backends.llama-cpp.response_headers", Headers),
        var("LLAMACTL_LLAMACPP_DOCKER_ENABLED", "backends.llama-cpp.docker.enabled", Bool),
        var("LLAMACTL_LLAMACPP_DOCKER_IMAGE", "backends.llama-cpp.docker.image", Text),
        var("LLAMACTL_LLAMACPP_DOCKER_ARGS", "backends.llama-cpp.docker.args", Args),
        var("LLAMACTL_LLAMACPP_DOCKER_ENV", "backends.llama-cpp.docker.environment", Pairs),
        // backends: vLLM
        var("LLAMACTL_VLLM_COMMAND", "backends.vllm.command", Text),
        var("LLAMACTL_VLLM_ARGS", "backends.vllm.args", Args),
        var("LLAMACTL_VLLM_ENV", "backends.vllm.environment", Pairs),
        var("LLAMACTL_VLLM_RESPONSE_HEADERS", "backends.vllm.response_headers", Headers),
        var("LLAMACTL_VLLM_DOCKER_ENABLED", "backends.vllm.docker.enabled", Bool),
        var("LLAMACTL_VLLM_DOCKER_IMAGE", "backends.vllm.docker.image", Text),
        var("LLAMACTL_VLLM_DOCKER_ARGS", "backends.vllm.docker.args", Args),
        var("LLAMACTL_VLLM_DOCKER_ENV", "backends.vllm.docker.environment", Pairs),
        var("LLAMACTL_DOCKER_HOST", "docker.host", Text),
        var("LLAMACTL_DOCKER_TLS_VERIFY", "docker.tls_verify", Bool),
        var("LLAMACTL_DOCKER_CERT_PATH", "docker.cert_path", Text),
        // backends: MLX
        var("LLAMACTL_MLX_COMMAND", "backends.mlx.command", Text),
        var("LLAMACTL_MLX_ARGS", "backends.mlx.args", Args),
        var("LLAMACTL_MLX_ENV", "backends.mlx.environment", Pairs),
        var("LLAMACTL_MLX_RESPONSE_HEADERS", "backends.mlx.response_headers", Headers),
        // database
        var("LLAMACTL_DATABASE_PATH", "database.path", Text),
        var("LLAMACTL_DATABASE_MAX_OPEN_CONNECTIONS", "database.max_open_connections", U32),
        var("LLAMACTL_DATABASE_MAX_IDLE_CONNECTIONS", "database.max_idle_connections", U32),
        var("LLAMACTL_DATABASE_CONN_MAX_LIFETIME", "database.connection_max_lifetime", Text),
        // auth
        var("LLAMACTL_REQUIRE_INFERENCE_AUTH", "auth.require_inference_auth", Bool),
        var("LLAMACTL_REQUIRE_MANAGEMENT_AUTH", "auth.require_management_auth", Bool),
        var("LLAMACTL_MANAGEMENT_KEYS", "auth.management_keys", List),
        var(
            "LLAMACTL_INFERENCE_KEYS",
            "",
            Ignored(
                "LLAMACTL_INFERENCE_KEYS is ignored (as by the Go llamactl): inference keys are created through the API",
            ),
        ),
        // nodes
        var("LLAMACTL_LOCAL_NODE", "local_node", Text),
    ]
};

/// The environment's part of the configuration: a figment provider.
#[derive(Debug, Default)]
struct EnvLayer {
    /// The values, nested by key.
    dict: Dict,
    /// Dotted key -> the variable that set it.
    variables: BTreeMap<&'static str, &'static str>,
    /// Ignored variables that are set.
    warnings: Vec<String>,
}

impl EnvLayer {
    fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        for var in ENV_VARS {
            let Some(raw) = env(var.name).filter(|v| !v.is_empty()) else { continue };
            if let EnvKind::Ignored(warning) = var.kind {
                layer.warnings.push(warning.to_owned());
                continue;
            }
            let value = parse_env(var.kind, &raw).map_err(|expected| ConfigError::Env {
                variable: var.name.to_owned(),
                value: (!matches!(var.kind, EnvKind::Pairs | EnvKind::Headers)).then_some(raw),
                expected,
            })?;
            insert(&mut layer.dict, var.key, value);
            layer.variables.insert(var.key, var.name);
        }
        Ok(layer)
    }

    /// The variable that set `key` or a key containing it.
    fn variable_for(&self, key: &str) -> Option<&'static str> {
        self.variables.iter().find_map(|(set, variable)| {
            let inside = key == *set || key.strip_prefix(set).is_some_and(|rest| rest.starts_with('.'));
            inside.then_some(*variable)
        })
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_PROVIDER_NAME)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Puts `value` at the dotted `key` of `dict`, creating the sections on the way.
fn insert(dict: &mut Dict, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            dict.insert(key.to_owned(), value);
        }
        Some((section, rest)) => {
            let entry = dict.entry(section.to_owned()).or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// Reads an environment value; the error is what was expected.
fn parse_env(kind: EnvKind, raw: &str) -> Result<Value, &'static str> {
    let trimmed = raw.trim();
    Ok(match kind {
        EnvKind::Text | EnvKind::Ignored(_) => Value::from(raw),
        EnvKind::Bool => Value::from(parse_bool(trimmed).ok_or("a boolean (true, false, 1 or 0)")?),
        EnvKind::U16 => Value::from(trimmed.parse::<u16>().map_err(|_| "an integer from 0 to 65535")?),
        EnvKind::U32 => Value::from(trimmed.parse::<u32>().map_err(|_| "an integer from 0 to 4294967295")?),
        EnvKind::U64 => Value::from(trimmed.parse::<u64>().map_err(|_| "a non-negative integer")?),
        EnvKind::I64 => Value::from(trimmed.parse::<i64>().map_err(|_| "an integer")?),
        EnvKind::PortRange => {
            let [start, end] = parse_port_range(trimmed).ok_or("a port range such as 8000-9000 or 8000,9000")?;
            Value::from(vec![start, end])
        }
        EnvKind::List => {
            Value::from(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>())
        }
        EnvKind::Args => Value::from(raw.split_whitespace().map(str::to_owned).collect::<Vec<_>>()),
        EnvKind::Pairs => Value::from(parse_pairs(raw, ',').ok_or("KEY=value pairs separated by commas")?),
        EnvKind::Headers => Value::from(parse_pairs(raw, ';').ok_or("Name=value pairs separated by semicolons")?),
        EnvKind::LogFormat => match trimmed.to_ascii_lowercase().as_str() {
            format @ ("plain" | "json") => Value::from(format),
            _ => return Err("plain or json"),
        },
        EnvKind::ShutdownPolicy => match trimmed.to_ascii_lowercase().as_str() {
            policy @ ("stop" | "keep") => Value::from(policy),
            _ => return Err("stop or keep"),
        },
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Some(true),
        "false" | "f" | "0" => Some(false),
        _ => None,
    }
}

/// `8000-9000` or `8000,9000` (the Go llamactl's formats).
fn parse_port_range(s: &str) -> Option<[u16; 2]> {
    let (start, end) = s.split_once('-').or_else(|| s.split_once(','))?;
    Some([start.trim().parse().ok()?, end.trim().parse().ok()?])
}

/// `KEY=value<sep>KEY=value`; empty items are skipped, an item without `=` or with an empty key
/// is an error.
fn parse_pairs(s: &str, separator: char) -> Option<BTreeMap<String, String>> {
    let mut pairs = BTreeMap::new();
    for item in s.split(separator).map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item.split_once('=')?;
        let key = key.trim();
        if key.is_empty() {
            return None;
        }
        pairs.insert(key.to_owned(), value.trim().to_owned());
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::LogFormat;
    use super::*;

    /// An environment lookup over fixed pairs.
    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, text).unwrap();
        path
    }

    fn load_file(text: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, Result<LoadedConfig, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "config.yaml", text);
        let result = load_from(Some(&path), &env_of(vars), &[]);
        (dir, path, result)
    }

    #[test]
    fn no_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let search = search_paths(dir.path(), Some(&dir.path().join("home")));
        // Leave out /etc/llamactl/config.yaml, which may exist on the machine running the tests.
        let loaded = load_from(None, &no_env, &search[..3]).unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.source, None);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn search_paths_are_the_go_ones() {
        let paths = search_paths(Path::new("/work"), Some(Path::new("/home/u")));
        let expected = [
            "/work/llamactl.yaml",
            "/work/config.yaml",
            "/home/u/.config/llamactl/config.yaml",
            "/etc/llamactl/config.yaml",
        ];
        assert_eq!(paths, expected.iter().map(PathBuf::from).collect::<Vec<_>>());
        assert_eq!(search_paths(Path::new("/work"), None).len(), 3);
    }

    #[test]
    fn explicit_file_is_used() {
        let (_dir, path, result) = load_file("server:\n  port: 9999\n", &[]);
        let loaded = result.unwrap();
        assert_eq!(loaded.config.server.port, 9999);
        assert_eq!(loaded.config.server.host, "127.0.0.1", "keys not in the file keep their default");
        assert_eq!(loaded.source, Some(path));
    }

    #[test]
    fn explicit_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.yaml");
        let err = load_from(Some(&missing), &no_env, &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&missing.display().to_string()) && text.contains("given explicitly"), "{text}");
    }

    #[test]
    fn explicit_file_wins_over_config_path_variable_and_search() {
        let dir = tempfile::tempdir().unwrap();
        let explicit = write(dir.path(), "explicit.yaml", "server: {port: 1}\n");
        let named = write(dir.path(), "named.yaml", "server: {port: 2}\n");
        let searched = write(dir.path(), "llamactl.yaml", "server: {port: 3}\n");
        let env = env_of(&[(CONFIG_PATH_VAR, named.to_str().unwrap())]);
        let search = [searched.clone()];

        let loaded = load_from(Some(&explicit), &env, &search).unwrap();
        assert_eq!((loaded.config.server.port, loaded.source), (1, Some(explicit)));
        let loaded = load_from(None, &env, &search).unwrap();
        assert_eq!((loaded.config.server.port, loaded.source), (2, Some(named)));
        let loaded = load_from(None, &no_env, &search).unwrap();
        assert_eq!((loaded.config.server.port, loaded.source), (3, Some(searched)));
    }

    #[test]
    fn config_path_variable_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let searched = write(dir.path(), "llamactl.yaml", "");
        let env = env_of(&[(CONFIG_PATH_VAR, missing.to_str().unwrap())]);
        let err = load_from(None, &env, &[searched]).unwrap_err();
        assert!(err.to_string().contains("LLAMACTL_CONFIG_PATH"), "{err}");
        // Empty counts as unset.
        let env = env_of(&[(CONFIG_PATH_VAR, "")]);
        assert!(load_from(None, &env, &[]).is_ok());
    }

    #[test]
    fn search_takes_the_first_existing_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("cwd");
        let home = dir.path().join("home");
        fs::create_dir_all(&cwd).unwrap();
        let search = search_paths(&cwd, Some(&home));
        let search = &search[..3];

        let home_file = write(&home, ".config/llamactl/config.yaml", "local_node: home\n");
        let loaded = load_from(None, &no_env, search).unwrap();
        assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("home", Some(home_file)));

        let config_yaml = write(&cwd, "config.yaml", "local_node: config\n");
        let loaded = load_from(None, &no_env, search).unwrap();
        assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("config", Some(config_yaml)));

        let llamactl_yaml = write(&cwd, "llamactl.yaml", "local_node: llamactl\n");
        let loaded = load_from(None, &no_env, search).unwrap();
        assert_eq!((loaded.config.local_node.as_str(), loaded.source), ("llamactl", Some(llamactl_yaml)));

        // A folder with the file's name is not a file.
        let dir2 = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir2.path().join("llamactl.yaml")).unwrap();
        let loaded = load_from(None, &no_env, &search_paths(dir2.path(), None)[..2]).unwrap();
        assert_eq!(loaded.source, None);
    }

    #[test]
    fn placeholders_are_expanded_in_the_file() {
        let text = "server:\n  host: ${HOST}\n  port: ${PORT:-7000}\nlocal_node: \"${NODE:-main}-x\"\ndata_dir: ${UNSET_DIR:-/srv/llamactl}\n";
        let (_dir, _path, result) = load_file(text, &[("HOST", "0.0.0.0"), ("NODE", "")]);
        let config = result.unwrap().config;
        assert_eq!(config.server.host, "0.0.0.0");
        assert_eq!(config.server.port, 7000);
        assert_eq!(config.local_node, "main-x");
        assert_eq!(config.data_dir, Some(PathBuf::from("/srv/llamactl")));

        let (_dir, _path, result) = load_file("server:\n  port: ${PORT:-7000}\n", &[("PORT", "7100")]);
        assert_eq!(result.unwrap().config.server.port, 7100);
    }

    #[test]
    fn bad_placeholder_names_file_and_line() {
        let (_dir, path, result) = load_file("server:\n  host: ${HOST\n", &[]);
        let err = result.unwrap_err();
        assert!(matches!(err, ConfigError::Expand { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()) && text.contains("line 2"), "{text}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = "server:\n  host: 10.0.0.1\n  port: 9000\n  allowed_origins: [a]\ninstances:\n  max_instances: 4\n  default_auto_restart: true\nbackends:\n  llama-cpp:\n    command: /opt/llama-server\n    environment: {A: file, B: file}\n";
        let vars = [
            ("LLAMACTL_PORT", "3000"),
            ("LLAMACTL_ALLOWED_ORIGINS", "http://a.example, http://b.example,"),
            ("LLAMACTL_MAX_INSTANCES", "20"),
            ("LLAMACTL_DEFAULT_AUTO_RESTART", "false"),
            ("LLAMACTL_LLAMACPP_ENV", "B=env,C=env"),
            ("LLAMACTL_VLLM_DOCKER_ENABLED", "1"),
            ("LLAMACTL_VLLM_DOCKER_IMAGE", "vllm/vllm-openai:v1"),
            ("LLAMACTL_LLAMACPP_ARGS", "--threads  8 -ngl 99"),
            ("LLAMACTL_MANAGEMENT_KEYS", "k1,k2"),
            ("LLAMACTL_REQUIRE_INFERENCE_AUTH", "FALSE"),
            ("LLAMACTL_DATA_DIRECTORY", "/data"),
            ("LLAMACTL_LOGS_DIRECTORY", "/logs-old-name"),
            ("LLAMACTL_LOG_FORMAT", "json"),
            ("LLAMACTL_DATABASE_PATH", "/db/llamactl.db"),
            ("LLAMACTL_LOCAL_NODE", "worker"),
            ("LLAMACTL_HOST", ""),
            ("LLAMACTL_SERVER", "http://ignored"),
            ("LLAMACTL_API_KEY", "ignored"),
        ];
        let (_dir, _path, result) = load_file(text, &vars);
        let loaded = result.unwrap();
        let c = &loaded.config;
        assert_eq!(c.server.host, "10.0.0.1", "an empty variable counts as unset");
        assert_eq!(c.server.port, 3000);
        assert_eq!(c.server.allowed_origins, ["http://a.example", "http://b.example"]);
        assert_eq!(c.server.log_format, LogFormat::Json);
        assert_eq!(c.instances.max_instances, 20);
        assert!(!c.instances.default_auto_restart);
        assert_eq!(c.backends.llama_cpp.command.as_deref(), Some("/opt/llama-server"));
        assert_eq!(c.backends.llama_cpp.args, ["--threads", "8", "-ngl", "99"]);
        let environment: Vec<_> =
            c.backends.llama_cpp.environment.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(environment, [("A", "file"), ("B", "env"), ("C", "env")], "maps are merged, the environment wins");
        assert!(c.backends.vllm.docker.enabled);
        assert_eq!(c.backends.vllm.docker.image.as_deref(), Some("vllm/vllm-openai:v1"));
        assert_eq!(c.auth.management_keys, ["k1", "k2"]);
        assert!(!c.auth.require_inference_auth);
        assert_eq!(c.data_dir, Some(PathBuf::from("/data")));
        assert_eq!(c.instances.logs_dir, Some(PathBuf::from("/logs-old-name")));
        assert_eq!(c.database.path, Some(PathBuf::from("/db/llamactl.db")));
        assert_eq!(c.local_node, "worker");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn environment_without_a_file() {
        let env = env_of(&[("LLAMACTL_PORT", "1234"), ("LLAMACTL_ENABLE_SWAGGER", "f")]);
        let loaded = load_from(None, &env, &[]).unwrap();
        assert_eq!(loaded.config.server.port, 1234);
        assert!(!loaded.config.server.enable_swagger);
        assert_eq!(loaded.source, None);
    }

    #[test]
    fn current_name_wins_over_alias() {
        let env = env_of(&[("LLAMACTL_LOGS_DIR", "/new"), ("LLAMACTL_LOGS_DIRECTORY", "/old")]);
        let loaded = load_from(None, &env, &[]).unwrap();
        assert_eq!(loaded.config.instances.logs_dir, Some(PathBuf::from("/new")));
    }

    #[test]
    fn go_style_port_ranges_in_the_environment() {
        for (value, expected) in
            [("5000-6000", [5000, 6000]), ("5000,6000", [5000, 6000]), (" 7000 - 7001 ", [7000, 7001])]
        {
            let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", value)]);
            let loaded = load_from(None, &env, &[]).unwrap();
            assert_eq!(loaded.config.instances.port_range, expected, "{value}");
            assert_eq!(loaded.config.manager_config().port_range, expected[0]..=expected[1]);
        }
        for value in ["5000", "a-b", "5000-70000", "1-2-3", "5000;6000"] {
            let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", value)]);
            let err = load_from(None, &env, &[]).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("LLAMACTL_INSTANCE_PORT_RANGE") && text.contains("port range"), "{value}: {text}");
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable_and_the_type() {
        for (name, value, expected) in [
            ("LLAMACTL_PORT", "eighty", "integer"),
            ("LLAMACTL_PORT", "70000", "65535"),
            ("LLAMACTL_ENABLE_SWAGGER", "yes please", "boolean"),
            ("LLAMACTL_MAX_INSTANCES", "1.5", "integer"),
            ("LLAMACTL_DEFAULT_MAX_RESTARTS", "-1", "integer"),
            ("LLAMACTL_LOG_FORMAT", "xml", "plain or json"),
            ("LLAMACTL_VLLM_ENV", "NOEQUALS", "KEY=value"),
        ] {
            let env = env_of(&[(name, value)]);
            let err = load_from(None, &env, &[]).unwrap_err();
            assert!(matches!(err, ConfigError::Env { .. }), "{err:?}");
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(expected), "{name}={value}: {text}");
        }
        // Values that may hold secrets are not repeated.
        let err = load_from(None, &env_of(&[("LLAMACTL_VLLM_ENV", "HF_TOKEN")]), &[]).unwrap_err();
        assert!(!err.to_string().contains("HF_TOKEN"), "{err}");
    }

    #[test]
    fn every_environment_variable_sets_an_existing_key() {
        let samples = |kind| -> &'static [&'static str] {
            match kind {
                EnvKind::Text => &["/x"],
                EnvKind::Bool => &["true", "false"],
                EnvKind::U16 | EnvKind::U32 | EnvKind::U64 | EnvKind::I64 => &["4096", "8192"],
                EnvKind::PortRange => &["8000-8100"],
                EnvKind::List => &["a,b"],
                // Valid both as backend arguments and as `docker run` arguments.
                EnvKind::Args => &["--rm --init"],
                EnvKind::Pairs => &["A=1,B=2"],
                EnvKind::Headers => &["X-A=1;X-B=2"],
                EnvKind::LogFormat => &["json"],
                EnvKind::ShutdownPolicy => &["keep"],
                EnvKind::Ignored(_) => &["x"],
            }
        };
        for var in ENV_VARS {
            let mut changed = false;
            for sample in samples(var.kind) {
                let env = env_of(&[(var.name, sample)]);
                let loaded = load_from(None, &env, &[]).unwrap_or_else(|e| panic!("{}: {e}", var.name));
                if let EnvKind::Ignored(_) = var.kind {
                    assert_eq!(loaded.warnings.len(), 1, "{}", var.name);
                    assert_eq!(loaded.config, Config::default());
                    changed = true;
                } else {
                    assert!(loaded.warnings.is_empty(), "{}", var.name);
                    changed |= loaded.config != Config::default();
                }
            }
            assert!(changed, "{} changes nothing", var.name);
        }
    }

    #[test]
    fn unknown_key_in_the_file_names_key_and_file() {
        let text = "instances:\n  max_runing_instances: 2\n";
        // Also with the environment setting another key of the same section.
        for vars in [&[][..], &[("LLAMACTL_MAX_INSTANCES", "3")][..]] {
            let (_dir, path, result) = load_file(text, vars);
            let err = result.unwrap_err();
            let ConfigError::Invalid { key, file, variable, .. } = &err else { panic!("{err:?}") };
            assert_eq!(key, "instances.max_runing_instances");
            assert_eq!(file.as_ref(), Some(&path));
            assert_eq!(variable, &None);
            let text = err.to_string();
            assert!(text.contains("instances.max_runing_instances"), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("unknown key") && text.contains("max_running_instances"), "{text}");
        }

        let (_dir, path, result) = load_file("serverr:\n  port: 1\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("`serverr`") && text.contains(&path.display().to_string()), "{text}");
    }

    #[test]
    fn invalid_value_type_names_key_and_file() {
        for (text, key) in [
            ("server:\n  port: abc\n", "server.port"),
            ("server:\n  port: 70000\n", "server.port"),
            ("instances:\n  port_range: [8000]\n", "instances.port_range"),
            ("auth:\n  require_management_auth: \"maybe\"\n", "auth.require_management_auth"),
            ("server:\n  log_format: xml\n", "server.log_format"),
            ("server:\n  allowed_origins: [a, [b]]\n", "server.allowed_origins.1"),
            ("server: 5\n", "server"),
        ] {
            let (_dir, path, result) = load_file(text, &[("LLAMACTL_HOST", "0.0.0.0")]);
            let err = result.unwrap_err();
            let ConfigError::Invalid { key: found, file, .. } = &err else { panic!("{text}: {err:?}") };
            assert_eq!(found, key, "{text}");
            assert_eq!(file.as_ref(), Some(&path), "{text}");
            let message = err.to_string();
            assert!(message.contains(key) && message.contains(&path.display().to_string()), "{message}");
        }
    }

    #[test]
    fn syntax_errors_and_non_mappings_name_the_file() {
        for text in ["server: [unclosed\n", "- a\n- b\n", "just text\n", "a: 1\na: 2\n"] {
            let (_dir, path, result) = load_file(text, &[]);
            let err = result.unwrap_err();
            assert!(matches!(err, ConfigError::Yaml { .. }), "{text}: {err:?}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn empty_file_and_empty_values_mean_defaults() {
        for text in ["", "# only a comment\n", "server:\nbackends:\n  llama-cpp:\n    command:\n"] {
            let (_dir, _path, result) = load_file(text, &[]);
            assert_eq!(result.unwrap().config, Config::default(), "{text:?}");
        }
    }

    #[test]
    fn meaning_is_validated_with_key_and_origin() {
        let (_dir, path, result) = load_file("instances:\n  port_range: [9000, 8000]\n", &[]);
        let err = result.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("instances.port_range") && text.contains(&path.display().to_string()), "{text}");

        let (_dir, _path, result) = load_file("instances:\n  port_range: [0, 8000]\n", &[]);
        assert!(result.unwrap_err().to_string().contains("instances.port_range"));

        let (_dir, _path, result) = load_file("instances:\n  port_range: [8000, 8000]\n", &[]);
        assert_eq!(result.unwrap().config.instances.port_range, [8000, 8000], "a single port is a range");

        let env = env_of(&[("LLAMACTL_INSTANCE_PORT_RANGE", "9000-8000")]);
        let err = load_from(None, &env, &[]).unwrap_err();
        let ConfigError::Invalid { key, variable, file, .. } = &err else { panic!("{err:?}") };
        assert_eq!(
            (key.as_str(), variable.as_deref(), file),
            ("instances.port_range", Some("LLAMACTL_INSTANCE_PORT_RANGE"), &None)
        );
        assert!(err.to_string().contains("LLAMACTL_INSTANCE_PORT_RANGE"), "{err}");

        let (_dir, path, result) = load_file("instances:\n  on_demand_start_timeout: 0\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("instances.on_demand_start_timeout") && text.contains(&path.display().to_string()),
            "{text}"
        );
        let env = env_of(&[("LLAMACTL_ON_DEMAND_START_TIMEOUT", "0")]);
        let text = load_from(None, &env, &[]).unwrap_err().to_string();
        assert!(text.contains("LLAMACTL_ON_DEMAND_START_TIMEOUT"), "{text}");

        let (_dir, path, result) = load_file("auth:\n  management_keys: [\"k1\", \"${UNSET_MANAGEMENT_KEY}\"]\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains("auth.management_keys")
                && text.contains("key 2 is empty")
                && text.contains(&path.display().to_string()),
            "{text}"
        );
    }

    #[test]
    fn connection_limits_load_from_file_and_environment_and_are_validated() {
        let defaults = Config::default().server;
        assert_eq!(
            (
                defaults.max_connections,
                defaults.header_read_timeout_seconds,
                defaults.keep_alive_timeout_seconds,
                defaults.max_header_bytes
            ),
            (4096, 10, 60, 65_536)
        );
        let text = "server:\n  max_connections: 100\n  header_read_timeout_seconds: 3\n  keep_alive_timeout_seconds: 7\n  max_header_bytes: 8192\n";
        let (_dir, _path, result) = load_file(text, &[("LLAMACTL_MAX_CONNECTIONS", "200")]);
        let server = result.unwrap().config.server;
        assert_eq!(
            (server.max_connections, server.header_read_timeout_seconds, server.keep_alive_timeout_seconds),
            (200, 3, 7),
            "the environment wins over the file"
        );
        assert_eq!(server.max_header_bytes, 8192);
        for (key, text) in [
            ("server.max_connections", "server:\n  max_connections: 0\n"),
            ("server.header_read_timeout_seconds", "server:\n  header_read_timeout_seconds: 0\n"),
            ("server.keep_alive_timeout_seconds", "server:\n  keep_alive_timeout_seconds: 0\n"),
            ("server.max_header_bytes", "server:\n  max_header_bytes: 100\n"),
        ] {
            let (_dir, path, result) = load_file(text, &[]);
            let err = result.unwrap_err();
            let ConfigError::Invalid { key: found, file, .. } = &err else { panic!("{text}: {err:?}") };
            assert_eq!((found.as_str(), file.as_deref()), (key, Some(path.as_path())), "{err}");
        }
        let env = env_of(&[("LLAMACTL_KEEP_ALIVE_TIMEOUT_SECONDS", "0")]);
        let text = load_from(None, &env, &[]).unwrap_err().to_string();
        assert!(text.contains("LLAMACTL_KEEP_ALIVE_TIMEOUT_SECONDS"), "{text}");
    }

    /// The Go llamactl's documented configuration, with all sections.
    const GO_CONFIG: &str = r#"
server:
  host: "0.0.0.0"                # Server host to bind to
  port: 8080
  allowed_origins: ["*"]
  allowed_headers: ["*"]
  enable_swagger: false
  response_headers:
    X-Accel-Buffering: "no"

backends:
  llama-cpp:
    command: "llama-server"
    args: []
    environment: {}
    docker:
      enabled: false
      image: "ghcr.io/ggml-org/llama.cpp:server"
      args: ["run", "--rm", "--network", "host", "--gpus", "all"]
      environment: {}
    response_headers: {}
  vllm:
    command: "vllm"
    args: ["serve"]
    environment: {CUDA_VISIBLE_DEVICES: "0"}
    docker:
      enabled: false
      image: "vllm/vllm-openai:latest"
      args: ["run", "--rm", "--network", "host", "--gpus", "all", "--shm-size", "1g"]
      environment: {}
    response_headers: {}
  mlx:
    command: "mlx_lm.server"
    args: []
    environment: {}
    response_headers: {}

data_dir: ${HOME:-/root}/.local/share/llamactl

instances:
  port_range: [8000, 9000]
  configs_dir: /var/lib/llamactl/instances
  logs_dir: /var/log/llamactl
  auto_create_dirs: true
  max_instances: -1
  max_running_instances: -1
  enable_lru_eviction: true
  default_auto_restart: true
  default_max_restarts: 3
  default_restart_delay: 5
  default_on_demand_start: true
  on_demand_start_timeout: 120
  timeout_check_interval: 5
  log_rotation_enabled: true
  log_rotation_max_size_mb: 50
  log_rotation_compress: false

database:
  path: /var/lib/llamactl/llamactl.db
  max_open_connections: 25
  max_idle_connections: 5
  connection_max_lifetime: 5m

auth:
  require_inference_auth: true
  inference_keys: []
  require_management_auth: true
  management_keys: ["${MGMT_KEY}"]

local_node: "main"
nodes:
  main:
  worker1:
    address: "http://192.168.1.10:8080"
    api_key: "worker1-api-key"
"#;

    #[test]
    fn go_llamactl_configuration_loads() {
        let (_dir, _path, result) = load_file(GO_CONFIG, &[("HOME", "/home/me"), ("MGMT_KEY", "sk-management")]);
        let loaded = result.unwrap();
        let c = &loaded.config;
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(c.server.host, "0.0.0.0");
        assert_eq!(c.server.allowed_headers, ["*"]);
        assert_eq!(c.server.response_headers.get("X-Accel-Buffering").map(String::as_str), Some("no"));
        assert!(!c.server.enable_swagger);
        assert_eq!(c.backends.vllm.args, ["serve"]);
        assert_eq!(c.backends.vllm.environment.get("CUDA_VISIBLE_DEVICES").map(String::as_str), Some("0"));
        assert_eq!(c.backends.llama_cpp.docker.image.as_deref(), Some("ghcr.io/ggml-org/llama.cpp:server"));
        assert_eq!(c.backends.mlx.command.as_deref(), Some("mlx_lm.server"));
        assert_eq!(c.data_dir, Some(PathBuf::from("/home/me/.local/share/llamactl")));
        assert_eq!(c.instances.instances_dir, Some(PathBuf::from("/var/lib/llamactl/instances")), "configs_dir");
        assert_eq!(c.instances.log_rotation_max_size, 50, "log_rotation_max_size_mb");
        assert_eq!(c.instances.max_instances, -1);
        assert_eq!(c.instances.on_demand_start_timeout, 120);
        assert_eq!(c.database.connection_max_lifetime, "5m");
        assert_eq!(c.auth.management_keys, ["sk-management"]);
        assert_eq!(c.local_node, "main");
        assert_eq!(c.nodes.len(), 1, "`main:` without a value is not set");
        assert_eq!(c.nodes["worker1"].address, "http://192.168.1.10:8080");
        assert_eq!(c.nodes["worker1"].api_key.as_deref(), Some("worker1-api-key"));
    }

    #[test]
    fn older_go_keys_that_matter_give_warnings() {
        let text = "instances:\n  auto_create_dirs: false\n  configs_dir: /a\n  instances_dir: /b\nauth:\n  inference_keys: [sk-1]\n";
        let (_dir, _path, result) = load_file(text, &[("LLAMACTL_INFERENCE_KEYS", "sk-2")]);
        let loaded = result.unwrap();
        assert_eq!(loaded.config.instances.instances_dir, Some(PathBuf::from("/b")));
        let warnings = loaded.warnings.join("\n");
        for word in ["auto_create_dirs", "configs_dir", "auth.inference_keys", "LLAMACTL_INFERENCE_KEYS"] {
            assert!(warnings.contains(word), "{word}: {warnings}");
        }
    }

    #[test]
    fn yaml_anchors_and_merge_keys() {
        let text = "backends:\n  llama-cpp: &base\n    args: [--a]\n    environment: {X: '1'}\n  vllm:\n    <<: *base\n    command: vllm\n";
        let (_dir, _path, result) = load_file(text, &[]);
        let c = result.unwrap().config;
        assert_eq!(c.backends.vllm.args, ["--a"]);
        assert_eq!(c.backends.vllm.command.as_deref(), Some("vllm"));
        assert_eq!(c.backends.vllm.environment, c.backends.llama_cpp.environment);
    }

    #[test]
    fn go_docker_run_arguments_become_container_settings() {
        use llamactl_core::docker::{DockerNetwork, GpuRequest};
        let text = "backends:\n  llama-cpp:\n    docker:\n      enabled: true\n      image: ghcr.io/ggml-org/llama.cpp:server-cuda\n      \
                    args: [run, --rm, --network, host, --gpus, all, -v, /srv/models:/models:ro, --shm-size, 1g]\n      \
                    environment: {CUDA_VISIBLE_DEVICES: '0'}\n  vllm:\n    docker:\n      volumes: ['/srv/hf:/root/.cache/huggingface']\n      \
                    gpus: [0, 1]\ndocker:\n  host: tcp://10.0.0.5:2375\n";
        let (_dir, _path, result) = load_file(text, &[]);
        let config = result.unwrap().config;
        let docker = config.manager_config().docker;
        assert_eq!(docker.host.as_deref(), Some("tcp://10.0.0.5:2375"));
        let llama = &docker.llama_cpp;
        assert!(llama.enabled);
        assert_eq!(llama.run.image.as_deref(), Some("ghcr.io/ggml-org/llama.cpp:server-cuda"));
        assert_eq!(llama.run.entrypoint, Some(vec!["/app/llama-server".to_owned()]), "the default entrypoint stays");
        assert_eq!(llama.run.network, Some(DockerNetwork::Host));
        assert_eq!(llama.run.gpus, Some(GpuRequest::All));
        assert_eq!(llama.run.volumes, ["/srv/models:/models:ro"]);
        assert_eq!(llama.run.shm_size.map(|s| s.bytes()), Some(1 << 30));
        assert_eq!(llama.run.environment["CUDA_VISIBLE_DEVICES"], "0");
        let vllm = &docker.vllm;
        assert!(!vllm.enabled);
        assert_eq!(vllm.run.image.as_deref(), Some("vllm/vllm-openai:latest"));
        assert_eq!(vllm.run.gpus, Some(GpuRequest::Devices(vec!["0".into(), "1".into()])));
        let env = env_of(&[("LLAMACTL_DOCKER_HOST", "unix:///run/user/1000/docker.sock")]);
        let config = load_from(None, &env, &[]).unwrap().config;
        assert_eq!(config.docker.host.as_deref(), Some("unix:///run/user/1000/docker.sock"));
    }

    #[test]
    fn docker_settings_llamactl_cannot_apply_stop_the_start_naming_the_key() {
        let (_dir, path, result) = load_file("backends:\n  vllm:\n    docker:\n      args: [run, --privileged]\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("backends.vllm.docker.args") && text.contains("--privileged"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");

        let (_dir, _path, result) =
            load_file("backends:\n  llama-cpp:\n    docker:\n      volumes: ['/a:/m', '/b:/m']\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("backends.llama-cpp.docker.volumes[1]"), "{text}");

        let (_dir, _path, result) = load_file("backends:\n  mlx:\n    docker:\n      enabled: true\n", &[]);
        let text = result.unwrap_err().to_string();
        assert!(text.contains("backends.mlx.docker.enabled") && text.contains("no Docker mode"), "{text}");

        let env = env_of(&[("LLAMACTL_LLAMACPP_DOCKER_ARGS", "run --ipc host")]);
        let text = load_from(None, &env, &[]).unwrap_err().to_string();
        assert!(text.contains("LLAMACTL_LLAMACPP_DOCKER_ARGS") && text.contains("--ipc"), "{text}");
    }
}
