//! Instance options: the static configuration of an instance, in the Go llamactl's JSON form.
//!
//! ```json
//! {
//!   "backend_type": "llama_cpp",
//!   "backend_options": {"model": "/models/q.gguf", "c": 4096, "ngl": 0},
//!   "auto_restart": true, "max_restarts": 3, "restart_delay": 5,
//!   "on_demand_start": true, "idle_timeout": 10,
//!   "environment": {"CUDA_VISIBLE_DEVICES": "0"}
//! }
//! ```
//!
//! Parsing ([`InstanceOptions::from_json_value`]) checks types and names the field at fault;
//! [`InstanceOptions::validate`] checks meaning (ranges, required fields). Fields this version
//! does not know are kept verbatim and written back, so nothing in a stored definition is lost;
//! [`InstanceOptions::reject_unknown_fields`] turns them into errors for API input.

mod custom;
pub mod docker;
mod duration;
mod error;
pub mod flags;
mod live_change;
pub(crate) mod llama_cpp;
mod mlx_lm;
mod parse_command;
mod sub_models;
mod validate;
pub use validate::MAX_DESCRIPTION_CHARS;
mod vllm;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub use custom::CustomOptions;
pub use duration::{DefaultUnit, MAX_OPTION_DURATION};
pub use error::OptionsError;
pub use flags::{ExtraArgs, FlashAttention, GpuLayers};
pub use live_change::{OptionsChange, options_change};
pub use llama_cpp::LlamaCppOptions;
pub use mlx_lm::MlxLmOptions;
pub use parse_command::{ParseCommandError, parse_command};
pub use sub_models::{EVERY_MODEL, SubModelOptions, SubModelSettings, sub_model_settings};
pub use vllm::VllmOptions;

/// A short description of a JSON value's type and content, for error messages.
pub(crate) fn describe(value: &Value) -> String {
    let text = value.to_string();
    let shown =
        if text.chars().count() > 40 { format!("{}...", text.chars().take(40).collect::<String>()) } else { text };
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    };
    format!("{kind} {shown}")
}

/// Which server program an instance runs.
///
/// ```
/// use llamactl_core::BackendType;
/// assert_eq!("mlx_lm".parse::<BackendType>().unwrap(), BackendType::MlxLm);
/// assert_eq!(BackendType::Vllm.default_command(), Some("vllm"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendType {
    /// llama.cpp's `llama-server`.
    LlamaCpp,
    /// `mlx_lm.server`.
    MlxLm,
    /// `vllm serve`.
    Vllm,
    /// Any OpenAI-compatible server with a given command line.
    Custom,
}

impl BackendType {
    /// All backend types.
    pub const ALL: [BackendType; 4] = [Self::LlamaCpp, Self::MlxLm, Self::Vllm, Self::Custom];

    /// The name used in JSON (`llama_cpp`, `mlx_lm`, `vllm`, `custom`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LlamaCpp => "llama_cpp",
            Self::MlxLm => "mlx_lm",
            Self::Vllm => "vllm",
            Self::Custom => "custom",
        }
    }

    /// The program run when configuration does not name another one (`None` for custom).
    pub fn default_command(self) -> Option<&'static str> {
        match self {
            Self::LlamaCpp => Some("llama-server"),
            Self::MlxLm => Some("mlx_lm.server"),
            Self::Vllm => Some("vllm"),
            Self::Custom => None,
        }
    }
}

impl fmt::Display for BackendType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendType {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| {
            OptionsError::invalid(
                "backend_type",
                format!("unknown backend {s:?} (expected llama_cpp, mlx_lm, vllm or custom)"),
            )
        })
    }
}

/// The typed `backend_options` of one backend.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendOptions {
    /// llama.cpp.
    LlamaCpp(LlamaCppOptions),
    /// mlx_lm.
    MlxLm(MlxLmOptions),
    /// vLLM.
    Vllm(VllmOptions),
    /// A custom OpenAI-compatible server.
    Custom(CustomOptions),
}

impl BackendOptions {
    /// Which backend these options are for.
    pub fn backend_type(&self) -> BackendType {
        match self {
            Self::LlamaCpp(_) => BackendType::LlamaCpp,
            Self::MlxLm(_) => BackendType::MlxLm,
            Self::Vllm(_) => BackendType::Vllm,
            Self::Custom(_) => BackendType::Custom,
        }
    }

    fn parse(backend: BackendType, map: &Map<String, Value>) -> Result<Self, OptionsError> {
        const PARENT: &str = "backend_options";
        Ok(match backend {
            BackendType::LlamaCpp => Self::LlamaCpp(LlamaCppOptions::from_map(map, PARENT, llama_cpp::EXTRA_ALIASES)?),
            BackendType::MlxLm => Self::MlxLm(MlxLmOptions::from_map(map, PARENT, &[])?),
            BackendType::Vllm => Self::Vllm(VllmOptions::from_map(map, PARENT, &[])?),
            BackendType::Custom => Self::Custom(CustomOptions::from_map(map, PARENT, &[])?),
        })
    }

    fn to_map(&self) -> Map<String, Value> {
        match self {
            Self::LlamaCpp(o) => o.to_map(),
            Self::MlxLm(o) => o.to_map(),
            Self::Vllm(o) => o.to_map(),
            Self::Custom(o) => o.to_map(),
        }
    }

    /// The port pinned in the options, if any (`0` means none, as in the Go llamactl).
    pub fn pinned_port(&self) -> Option<u16> {
        let port = match self {
            Self::LlamaCpp(o) => o.port,
            Self::MlxLm(o) => o.port,
            Self::Vllm(o) => o.port,
            Self::Custom(o) => o.port,
        };
        port.filter(|p| *p != 0)
    }

    /// The listen address set in the options, if any.
    pub fn host(&self) -> Option<&str> {
        match self {
            Self::LlamaCpp(o) => o.host.as_deref(),
            Self::MlxLm(o) => o.host.as_deref(),
            Self::Vllm(o) => o.host.as_deref(),
            Self::Custom(o) => o.host.as_deref(),
        }
    }

    /// The untyped extra options.
    pub fn extra(&self) -> &ExtraArgs {
        match self {
            Self::LlamaCpp(o) => &o.extra,
            Self::MlxLm(o) => &o.extra,
            Self::Vllm(o) => &o.extra,
            Self::Custom(o) => &o.extra,
        }
    }
}

/// Everything that defines an instance. See the [module documentation](self).
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::{BackendOptions, InstanceOptions};
///
/// let options = InstanceOptions::from_json(
///     r#"{"backend_type":"llama_cpp","backend_options":{"m":"/m.gguf","ngl":0},"idle_timeout":"90s"}"#,
/// )?;
/// options.validate()?;
/// assert_eq!(options.idle_timeout, Some(Duration::from_secs(90)));
/// let BackendOptions::LlamaCpp(llama) = &options.backend else { unreachable!() };
/// assert_eq!(llama.model.as_deref(), Some("/m.gguf"));
/// # Ok::<(), llamactl_core::OptionsError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceOptions {
    /// `backend_type` and `backend_options`.
    pub backend: BackendOptions,
    /// Restart after an unexpected exit (default from the manager's configuration).
    pub auto_restart: Option<bool>,
    /// Consecutive automatic restarts before giving up.
    pub max_restarts: Option<u32>,
    /// Delay before the first automatic restart; later ones back off exponentially. A bare
    /// number is seconds.
    pub restart_delay: Option<Duration>,
    /// Start the instance when a request needs it.
    pub on_demand_start: Option<bool>,
    /// Stop after this long without requests; zero never stops it and never evicts it. A bare
    /// number is minutes (as in the Go llamactl); `"45s"` gives seconds.
    pub idle_timeout: Option<Duration>,
    /// How long the backend may take to answer its readiness endpoint. A bare number is seconds.
    pub startup_timeout: Option<Duration>,
    /// Environment variables for the backend process.
    pub environment: BTreeMap<String, String>,
    /// Program to run instead of the configured one.
    pub command_override: Option<String>,
    /// Group, for per-group running limits.
    pub group: Option<String>,
    /// Run as a Docker container (default: the backend's `docker.enabled` setting).
    pub docker_enabled: Option<bool>,
    /// How its container runs — image, volumes, GPUs, shm size, network, ... — laid over the
    /// backend's configured Docker settings.
    pub docker: Option<docker::DockerRunOptions>,
    /// Nodes the instance is assigned to (multi-node setups).
    pub nodes: Vec<String>,
    /// llama.cpp router presets: the text of the router's `--models-preset` file, written to
    /// the instance's folder at each start.
    pub preset_ini: Option<String>,
    /// How llamactl schedules a router instance's models (idle unload, pinning), keyed by
    /// model id or `"*"`.
    pub sub_models: BTreeMap<String, SubModelOptions>,
    /// Free text about the instance, for people (changing it never restarts anything).
    pub description: Option<String>,
    /// The templates these options were merged from, in order (`extends: [a, b]`), as given;
    /// the options themselves are already the merged result.
    pub extends: Vec<String>,
    /// The configuration file that declares this instance (`None`: created over the API or by
    /// the library's caller). Set by the server, never by a client; such an instance's
    /// definition is read-only over the API.
    pub declared_in: Option<String>,
    /// Fields this version does not know, kept verbatim.
    pub unknown: Map<String, Value>,
}

// Defined in `llamactl-wire`, since API clients use them too.
pub use llamactl_wire::INSTANCE_FIELDS;

fn field<T: flags::FlagValue>(map: &Map<String, Value>, key: &str) -> Result<Option<T>, OptionsError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::from_json(value).map(Some).map_err(|m| OptionsError::wrong_type(key, m)),
    }
}

fn duration_field(map: &Map<String, Value>, key: &str, unit: DefaultUnit) -> Result<Option<Duration>, OptionsError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => duration::parse(value, unit).map(Some).map_err(|m| OptionsError::wrong_type(key, m)),
    }
}

impl InstanceOptions {
    /// Options for `backend` with everything else unset.
    ///
    /// ```
    /// use llamactl_core::{BackendOptions, InstanceOptions, options::MlxLmOptions};
    /// let options = InstanceOptions::new(BackendOptions::MlxLm(MlxLmOptions {
    ///     model: Some("/models/m".into()),
    ///     ..Default::default()
    /// }));
    /// assert!(options.validate().is_ok());
    /// ```
    pub fn new(backend: BackendOptions) -> Self {
        Self {
            backend,
            auto_restart: None,
            max_restarts: None,
            restart_delay: None,
            on_demand_start: None,
            idle_timeout: None,
            startup_timeout: None,
            environment: BTreeMap::new(),
            command_override: None,
            group: None,
            docker_enabled: None,
            docker: None,
            nodes: Vec::new(),
            preset_ini: None,
            sub_models: BTreeMap::new(),
            description: None,
            extends: Vec::new(),
            declared_in: None,
            unknown: Map::new(),
        }
    }

    /// Parses options from JSON text (schema layer only; see [`validate`](Self::validate)).
    pub fn from_json(text: &str) -> Result<Self, OptionsError> {
        let value: Value = serde_json::from_str(text).map_err(|e| OptionsError::Malformed(e.to_string()))?;
        Self::from_json_value(&value)
    }

    /// Parses options from a JSON value (schema layer only; see [`validate`](Self::validate)).
    pub fn from_json_value(value: &Value) -> Result<Self, OptionsError> {
        let Value::Object(map) = value else {
            return Err(OptionsError::Malformed(format!("expected an object, got {}", describe(value))));
        };
        let backend_type: BackendType = match map.get("backend_type") {
            Some(Value::String(s)) => s.parse()?,
            None | Some(Value::Null) => {
                return Err(OptionsError::Required { field: "backend_type".into(), backend: "any" });
            }
            Some(other) => {
                return Err(OptionsError::wrong_type(
                    "backend_type",
                    format!("expected a string, got {}", describe(other)),
                ));
            }
        };
        let empty = Map::new();
        let backend_map = match map.get("backend_options") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => {
                return Err(OptionsError::wrong_type(
                    "backend_options",
                    format!("expected an object, got {}", describe(other)),
                ));
            }
        };
        let mut backend = BackendOptions::parse(backend_type, backend_map)?;
        // Port 0 means "not set" in the Go llamactl (its JSON omits zero ports).
        match &mut backend {
            BackendOptions::LlamaCpp(o) if o.port == Some(0) => o.port = None,
            BackendOptions::MlxLm(o) if o.port == Some(0) => o.port = None,
            BackendOptions::Vllm(o) if o.port == Some(0) => o.port = None,
            BackendOptions::Custom(o) if o.port == Some(0) => o.port = None,
            _ => {}
        }

        let environment = match map.get("environment") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(env)) => env
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    other => Err(OptionsError::wrong_type(
                        format!("environment.{k}"),
                        format!("expected a string, got {}", describe(other)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(OptionsError::wrong_type(
                    "environment",
                    format!("expected an object of strings, got {}", describe(other)),
                ));
            }
        };

        let unknown = map
            .iter()
            .filter(|(k, _)| !INSTANCE_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        Ok(Self {
            backend,
            auto_restart: field(map, "auto_restart")?,
            max_restarts: field(map, "max_restarts")?,
            restart_delay: duration_field(map, "restart_delay", DefaultUnit::Seconds)?,
            on_demand_start: field(map, "on_demand_start")?,
            idle_timeout: duration_field(map, "idle_timeout", DefaultUnit::Minutes)?,
            startup_timeout: duration_field(map, "startup_timeout", DefaultUnit::Seconds)?,
            environment,
            command_override: field(map, "command_override")?,
            group: field(map, "group")?,
            docker_enabled: field(map, "docker_enabled")?,
            docker: match map.get("docker") {
                None | Some(Value::Null) => None,
                Some(value) => Some(
                    serde_json::from_value(value.clone())
                        .map_err(|e| OptionsError::wrong_type("docker", e.to_string()))?,
                ),
            },
            nodes: field(map, "nodes")?.unwrap_or_default(),
            preset_ini: field(map, "preset_ini")?,
            sub_models: sub_models::parse(map.get("sub_models"))?,
            description: field(map, "description")?,
            extends: field(map, "extends")?.unwrap_or_default(),
            declared_in: field(map, "declared_in")?,
            unknown,
        })
    }

    /// [`to_json_value`](Self::to_json_value) written out as JSON text, to be shared and
    /// embedded as it is in larger documents.
    ///
    /// ```
    /// # use llamactl_core::InstanceOptions;
    /// let options = InstanceOptions::from_json(r#"{"backend_type": "vllm", "backend_options": {"model": "m"}}"#)?;
    /// let json = options.to_raw_json().expect("options always serialise");
    /// assert_eq!(json.get(), r#"{"backend_type":"vllm","backend_options":{"model":"m"}}"#);
    /// # Ok::<(), llamactl_core::OptionsError>(())
    /// ```
    pub fn to_raw_json(&self) -> Option<std::sync::Arc<serde_json::value::RawValue>> {
        serde_json::value::to_raw_value(&self.to_json_value()).ok().map(std::sync::Arc::from)
    }

    /// The JSON form (the Go llamactl's layout; unset fields are left out).
    pub fn to_json_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("backend_type".into(), Value::from(self.backend.backend_type().as_str()));
        map.insert("backend_options".into(), Value::Object(self.backend.to_map()));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        };
        put("auto_restart", self.auto_restart.map(Value::from));
        put("max_restarts", self.max_restarts.map(Value::from));
        put("restart_delay", self.restart_delay.map(|d| duration::render(d, DefaultUnit::Seconds)));
        put("on_demand_start", self.on_demand_start.map(Value::from));
        put("idle_timeout", self.idle_timeout.map(|d| duration::render(d, DefaultUnit::Minutes)));
        put("startup_timeout", self.startup_timeout.map(|d| duration::render(d, DefaultUnit::Seconds)));
        put(
            "environment",
            (!self.environment.is_empty()).then(|| {
                Value::Object(self.environment.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect())
            }),
        );
        put("command_override", self.command_override.clone().map(Value::from));
        put("group", self.group.clone().map(Value::from));
        put("docker_enabled", self.docker_enabled.map(Value::from));
        put("docker", self.docker.as_ref().and_then(|d| serde_json::to_value(d).ok()));
        put("nodes", (!self.nodes.is_empty()).then(|| Value::from(self.nodes.clone())));
        put("preset_ini", self.preset_ini.clone().map(Value::from));
        put("sub_models", sub_models::render(&self.sub_models));
        put("description", self.description.clone().map(Value::from));
        put("extends", (!self.extends.is_empty()).then(|| Value::from(self.extends.clone())));
        put("declared_in", self.declared_in.clone().map(Value::from));
        for (key, value) in &self.unknown {
            map.insert(key.clone(), value.clone());
        }
        Value::Object(map)
    }

    /// Fails on the first field this version does not know, suggesting a close known name.
    /// Use it on input from users; stored definitions keep unknown fields instead.
    ///
    /// ```
    /// use llamactl_core::InstanceOptions;
    /// let options = InstanceOptions::from_json(r#"{"backend_type":"vllm","auto_restrat":true}"#).unwrap();
    /// let err = options.reject_unknown_fields().unwrap_err();
    /// assert_eq!(err.to_string(), r#"auto_restrat: unknown option (did you mean "auto_restart"?)"#);
    /// ```
    pub fn reject_unknown_fields(&self) -> Result<(), OptionsError> {
        match self.unknown.keys().next() {
            None => Ok(()),
            Some(key) => Err(OptionsError::UnknownField { field: key.clone(), hint: closest(key, INSTANCE_FIELDS) }),
        }
    }
}

/// The known name closest to `key` (edit distance at most 3), for "did you mean" hints.
fn closest(key: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

impl Serialize for InstanceOptions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for InstanceOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json_value(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
