//! Request and response bodies of the REST API. The server builds its answers and its OpenAPI
//! document from these types, and the client reads them back with the same types.

use chrono::{DateTime, Utc};
// The vocabulary the bodies use, re-exported so that clients need not name `llamactl-wire`.
pub use llamactl_wire::{
    DesiredState, ExitInfo, INSTANCE_FIELDS, InstanceName, InstanceStatus, NameError, PermissionMode, TransitionReason,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The error body of every management route: `{"error": "<code>", "details": "<message>"}`,
/// with `"field"` when one input field is at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `not_found` or `invalid_options`.
    pub error: String,
    /// What went wrong, for people (names the field for invalid input).
    pub details: String,
    /// The input field at fault, as a dotted path in the request's JSON
    /// (`backend_options.port`), for invalid options; `options` when the document as a whole
    /// is malformed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The error body of authentication failures and of the OpenAI-compatible routes:
/// `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NestedErrorBody {
    /// The error.
    pub error: NestedError,
}

/// See [`NestedErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NestedError {
    /// What went wrong.
    pub message: String,
    /// `authentication_error`, `permission_error`, `invalid_request_error`, `not_found_error`
    /// or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A machine-readable code (not on authentication errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// An instance's options as JSON: parsed (what a client reads back) or the JSON text the
/// manager keeps with them (what the server writes, so that listing thousands of instances
/// builds no JSON trees). Both serialise alike; they compare by value.
///
/// ```
/// use llamactl_api::types::OptionsJson;
/// let parsed: OptionsJson = serde_json::from_str(r#"{"backend_type": "vllm"}"#)?;
/// assert_eq!(parsed.value()["backend_type"], "vllm");
/// assert_eq!(serde_json::to_string(&parsed)?, r#"{"backend_type":"vllm"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone)]
pub enum OptionsJson {
    /// A JSON tree.
    Parsed(Value),
    /// JSON text, written out as it is.
    Raw(std::sync::Arc<serde_json::value::RawValue>),
}

impl OptionsJson {
    /// The options as a JSON tree (text is parsed; unparsable text gives `null`).
    pub fn value(&self) -> std::borrow::Cow<'_, Value> {
        match self {
            Self::Parsed(value) => std::borrow::Cow::Borrowed(value),
            Self::Raw(raw) => std::borrow::Cow::Owned(serde_json::from_str(raw.get()).unwrap_or(Value::Null)),
        }
    }

    /// The options as an owned JSON tree.
    pub fn into_value(self) -> Value {
        match self {
            Self::Parsed(value) => value,
            raw @ Self::Raw(_) => raw.value().into_owned(),
        }
    }
}

impl PartialEq for OptionsJson {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for OptionsJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Parsed(value) => value.serialize(serializer),
            Self::Raw(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for OptionsJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::Parsed)
    }
}

/// An instance: the Go llamactl's fields (`id`, `name`, `status`, `created`, `options`) and
/// what llamactl adds (desired state, readiness, process, restarts, last transition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceResponse {
    /// Row id (API keys' instance permissions refer to it).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Status: `stopped`, `starting`, `running` (ready), `stopping`, `restarting`, `failed`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "running"))]
    pub status: InstanceStatus,
    /// Whether it answers requests now.
    pub ready: bool,
    /// Creation time, unix seconds.
    pub created: i64,
    /// The options (absent if the stored ones cannot be read; see `options_error`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub options: Option<OptionsJson>,
    /// Why the stored options cannot be read.
    pub options_error: Option<String>,
    /// What was last asked for: `running` or `stopped`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "running"))]
    pub desired_state: DesiredState,
    /// Backend process id.
    pub pid: Option<i32>,
    /// Backend port.
    pub port: Option<u16>,
    /// Consecutive automatic restarts.
    pub restart_count: u32,
    /// Last failure, with the backend's last output.
    pub last_error: Option<String>,
    /// Reason of the last transition, e.g. `{"kind": "idle_timeout"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_reason: Option<TransitionReason>,
    /// When the current or last run started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it became ready.
    pub ready_at: Option<DateTime<Utc>>,
    /// When the last run ended.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Requests in flight.
    pub in_flight: u32,
    /// End of the last request (while running).
    pub last_activity: Option<DateTime<Utc>>,
    /// Who owns the definition: `api`, or the configuration file that declares it (then it
    /// is read-only over the API).
    #[serde(default = "api_source")]
    pub source: String,
    /// With `?effective=true`: for every option, by dotted path, the template it came from or
    /// `instance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origins: Option<std::collections::BTreeMap<String, String>>,
}

/// The source of an instance created over the API.
pub const API_SOURCE: &str = "api";

fn api_source() -> String {
    API_SOURCE.to_owned()
}

impl InstanceResponse {
    /// The backend type named in the options, if readable.
    pub fn backend_type(&self) -> Option<String> {
        self.options.as_ref()?.value()["backend_type"].as_str().map(str::to_owned)
    }
}

/// A recorded status transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventResponse {
    /// Increasing id (page with `after_id`).
    pub id: i64,
    /// Status before.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub from: InstanceStatus,
    /// Status after.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: InstanceStatus,
    /// Typed reason, e.g. `{"kind": "evicted", "by": "big"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reason: TransitionReason,
    /// When.
    pub at: DateTime<Utc>,
    /// Backend process id then.
    pub pid: Option<i32>,
    /// Backend port then.
    pub port: Option<u16>,
}

/// A status change as sent by `GET /api/v1/events` (`event: status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusEvent {
    /// The instance.
    pub name: String,
    /// Status before.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub from: InstanceStatus,
    /// Status after.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub to: InstanceStatus,
    /// Why.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reason: TransitionReason,
    /// When.
    pub at: DateTime<Utc>,
}

/// Rights of a new key on one instance (by `instance_id` as in the Go llamactl, or by
/// `instance_name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstancePermissionRequest {
    /// Instance id.
    #[serde(default, alias = "instanceId", skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<i64>,
    /// Instance name.
    #[serde(default, alias = "instanceName", skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    /// Send inference requests.
    #[serde(default, alias = "canInfer")]
    pub can_infer: bool,
    /// Start it on demand.
    #[serde(default, alias = "canStart")]
    pub can_start: bool,
    /// Evict other instances to make room for it.
    #[serde(default, alias = "canEvict")]
    pub can_evict: bool,
}

/// `POST /api/v1/auth/keys` body (camelCase names, as sent by the Go llamactl's clients, are
/// accepted too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateKeyRequest {
    /// A name for people (1-100 characters).
    #[serde(alias = "Name")]
    pub name: String,
    /// `allow_all` or `per_instance`.
    #[serde(alias = "permissionMode", alias = "PermissionMode")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "per_instance"))]
    pub permission_mode: PermissionMode,
    /// Expiry, unix seconds (must be in the future).
    #[serde(default, alias = "expiresAt", alias = "ExpiresAt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Rights per instance (required for `per_instance`).
    #[serde(default, alias = "instancePermissions", alias = "InstancePermissions")]
    pub instance_permissions: Vec<InstancePermissionRequest>,
}

/// A key, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyResponse {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Owner.
    pub user_id: String,
    /// `allow_all` or `per_instance`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub permission_mode: PermissionMode,
    /// Expiry, unix seconds.
    pub expires_at: Option<i64>,
    /// Always true (keys are deleted, not disabled).
    pub enabled: bool,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last change, unix seconds.
    pub updated_at: i64,
    /// Last use, unix seconds.
    pub last_used_at: Option<i64>,
}

/// A new key with its secret, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateKeyResponse {
    /// The key's fields.
    #[serde(flatten)]
    pub key: KeyResponse,
    /// The secret: `llamactl-` and 64 hex digits. It cannot be shown again.
    pub key_secret: String,
    /// The same secret, under the Go llamactl's field name.
    #[serde(rename = "key")]
    pub key_go: String,
}

/// A key's rights on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPermissionResponse {
    /// Instance id.
    pub instance_id: i64,
    /// Instance name.
    pub instance_name: String,
    /// Send inference requests.
    pub can_infer: bool,
    /// Start it on demand.
    pub can_start: bool,
    /// Evict others for it.
    pub can_evict: bool,
}

/// `parse-command` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParseCommandRequest {
    /// The command line, e.g. `llama-server -m model.gguf -c 4096 -ngl 99`.
    pub command: String,
}

/// `parse-command` answer: options ready to create an instance with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParseCommandResponse {
    /// `llama_cpp`, `mlx_lm` or `vllm`.
    pub backend_type: String,
    /// The options the command line sets.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub backend_options: Map<String, Value>,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelEntry {
    /// Model name to send: the instance name, or `instance/model` for router models.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Creation time, unix seconds.
    pub created: i64,
    /// Always `llamactl`.
    pub owned_by: String,
    /// The instance's status (an addition to OpenAI's fields).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "running"))]
    pub status: InstanceStatus,
    /// For a router instance's model: the model's own status (`unloaded`, `loading`,
    /// `loaded`, `sleeping`, `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "loaded"))]
    pub model_status: Option<llamactl_wire::SubModelStatus>,
}

/// `GET /v1/models` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// The models.
    pub data: Vec<ModelEntry>,
}

/// Health and readiness answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusBody {
    /// `ok`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// A node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeResponse {
    /// Name.
    pub name: String,
    /// Base URL (empty for this node).
    pub address: String,
    /// Whether it is this node.
    pub local: bool,
}
