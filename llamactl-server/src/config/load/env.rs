//! The `LLAMACTL_*` environment variables as a figment provider: the table of the Go
//! llamactl's names (`ENV_VARS`, grouped by configuration section), how each value is read, and
//! which variable set which key (for error messages).

use std::collections::BTreeMap;

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::error::ConfigError;

/// figment metadata name of the environment provider.
pub(super) const ENV_PROVIDER_NAME: &str = "LLAMACTL_* environment variables";

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
        var("LLAMACTL_ENABLE_DASHBOARD", "server.enable_dashboard", Bool),
        var("LLAMACTL_DASHBOARD_DIR", "server.dashboard_dir", Text),
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
        // activity and resource history
        var("LLAMACTL_ACTIVITY_ENABLED", "activity.enabled", Bool),
        var("LLAMACTL_ACTIVITY_MAX_ROWS", "activity.max_rows", U64),
        var("LLAMACTL_ACTIVITY_MAX_AGE_HOURS", "activity.max_age_hours", U64),
        var("LLAMACTL_ACTIVITY_QUEUE_SIZE", "activity.queue_size", U64),
        var("LLAMACTL_RESOURCE_HISTORY_ENABLED", "resource_history.enabled", Bool),
        var("LLAMACTL_RESOURCE_HISTORY_INTERVAL_SECONDS", "resource_history.interval_seconds", U64),
        var("LLAMACTL_RESOURCE_HISTORY_MAX_AGE_HOURS", "resource_history.max_age_hours", U64),
        // auth
        var("LLAMACTL_REQUIRE_INFERENCE_AUTH", "auth.require_inference_auth", Bool),
        var("LLAMACTL_REQUIRE_MANAGEMENT_AUTH", "auth.require_management_auth", Bool),
        var("LLAMACTL_MANAGEMENT_KEYS", "auth.management_keys", List),
        var("LLAMACTL_SESSION_HOURS", "auth.session_hours", U64),
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
pub(super) struct EnvLayer {
    /// The values, nested by key.
    dict: Dict,
    /// Dotted key -> the variable that set it.
    variables: BTreeMap<&'static str, &'static str>,
    /// Ignored variables that are set.
    pub(super) warnings: Vec<String>,
}

impl EnvLayer {
    pub(super) fn read(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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
    pub(super) fn variable_for(&self, key: &str) -> Option<&'static str> {
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
mod tests;
