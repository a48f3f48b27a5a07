//! Inference API keys: created (the key is shown once), listed, read, deleted. Request and
//! response fields follow the Go llamactl's (camelCase request fields are accepted too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use llamactl_core::db::{ApiKeyRecord, InstanceRights, NewApiKey, PermissionMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{Json as ApiJson, Path};
use crate::auth::keys;
use crate::state::AppState;

/// Rights of a new key on one instance (by `instance_id` as in the Go llamactl, or by
/// `instance_name`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InstancePermissionRequest {
    /// Instance id.
    #[serde(alias = "instanceId")]
    pub instance_id: Option<i64>,
    /// Instance name.
    #[serde(alias = "instanceName")]
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

/// `POST /api/v1/auth/keys` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateKeyRequest {
    /// A name for people (1-100 characters).
    #[serde(alias = "Name")]
    pub name: String,
    /// `allow_all` or `per_instance`.
    #[serde(alias = "permissionMode", alias = "PermissionMode")]
    #[schema(value_type = String, example = "per_instance")]
    pub permission_mode: PermissionMode,
    /// Expiry, unix seconds (must be in the future).
    #[serde(default, alias = "expiresAt", alias = "ExpiresAt")]
    pub expires_at: Option<i64>,
    /// Rights per instance (required for `per_instance`).
    #[serde(default, alias = "instancePermissions", alias = "InstancePermissions")]
    pub instance_permissions: Vec<InstancePermissionRequest>,
}

/// A key, as listed (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyResponse {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Owner.
    pub user_id: String,
    /// `allow_all` or `per_instance`.
    #[schema(value_type = String)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
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

fn timestamp(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(|t| t.timestamp())
}

impl From<&ApiKeyRecord> for KeyResponse {
    fn from(key: &ApiKeyRecord) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            user_id: key.user_id.clone(),
            permission_mode: key.permission_mode,
            expires_at: timestamp(key.expires_at),
            enabled: true,
            created_at: key.created_at.timestamp(),
            updated_at: key.updated_at.timestamp(),
            last_used_at: timestamp(key.last_used_at),
        }
    }
}

fn rights_from(state: &AppState, request: &CreateKeyRequest) -> Result<Vec<InstanceRights>, ApiError> {
    let instances = state.manager.list();
    request
        .instance_permissions
        .iter()
        .enumerate()
        .map(|(i, permission)| {
            let field = format!("instance_permissions[{i}]");
            let found = match (&permission.instance_name, permission.instance_id) {
                (Some(name), _) => instances.iter().find(|info| info.name.as_str() == name),
                (None, Some(id)) => instances.iter().find(|info| info.state.id == id),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "invalid_permissions",
                        format!("{field}: give instance_id or instance_name"),
                    ));
                }
            };
            let info =
                found.ok_or_else(|| ApiError::bad_request("invalid_instance", format!("{field}: no such instance")))?;
            Ok(InstanceRights {
                instance: info.name.to_string(),
                can_infer: permission.can_infer,
                can_start: permission.can_start,
                can_evict: permission.can_evict,
            })
        })
        .collect()
}

/// `POST /api/v1/auth/keys`: creates an inference key and shows it once.
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "Keys",
    request_body = CreateKeyRequest,
    responses((status = 201, body = CreateKeyResponse), (status = 400, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreateKeyResponse>), ApiError> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_name", "name: must be 1 to 100 characters"));
    }
    if request.permission_mode == PermissionMode::PerInstance && request.instance_permissions.is_empty() {
        return Err(ApiError::bad_request(
            "missing_permissions",
            "instance_permissions: required when permission_mode is per_instance",
        ));
    }
    let expires_at = match request.expires_at {
        Some(at) if at <= Utc::now().timestamp() => {
            return Err(ApiError::bad_request("invalid_expires_at", "expires_at: must be in the future"));
        }
        Some(at) => Some(
            DateTime::from_timestamp(at, 0)
                .ok_or_else(|| ApiError::bad_request("invalid_expires_at", "expires_at: not a valid time"))?,
        ),
        None => None,
    };
    let rights = rights_from(&state, &request)?;
    let generated = keys::generate();
    let record = state
        .manager
        .database()
        .create_api_key(&NewApiKey {
            name: name.to_owned(),
            user_id: "system".into(),
            lookup_id: generated.lookup_id,
            sha256: generated.sha256,
            permission_mode: request.permission_mode,
            expires_at,
            rights,
        })
        .await?;
    state.auth.invalidate();
    let response =
        CreateKeyResponse { key: (&record).into(), key_secret: generated.secret.clone(), key_go: generated.secret };
    Ok((StatusCode::CREATED, Json(response)))
}

/// `GET /api/v1/auth/keys`
#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "Keys",
    responses((status = 200, body = Vec<KeyResponse>)),
    security(("management_key" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<KeyResponse>>, ApiError> {
    let keys = state.manager.database().list_api_keys().await?;
    Ok(Json(keys.iter().map(KeyResponse::from).collect()))
}

async fn find(state: &AppState, id: i64) -> Result<ApiKeyRecord, ApiError> {
    state
        .manager
        .database()
        .get_api_key(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("API key {id} not found")))
}

/// `GET /api/v1/auth/keys/{id}`
#[utoipa::path(get, path = "/api/v1/auth/keys/{id}", tag = "Keys",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyResponse), (status = 404, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<KeyResponse>, ApiError> {
    Ok(Json((&find(&state, id).await?).into()))
}

/// `DELETE /api/v1/auth/keys/{id}`
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "Keys",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    if !state.manager.database().delete_api_key(id).await? {
        return Err(ApiError::not_found(format!("API key {id} not found")));
    }
    state.auth.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/keys/{id}/permissions`
#[utoipa::path(get, path = "/api/v1/auth/keys/{id}/permissions", tag = "Keys",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = Vec<KeyPermissionResponse>), (status = 404, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn permissions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<KeyPermissionResponse>>, ApiError> {
    let key = find(&state, id).await?;
    let instances = state.manager.list();
    Ok(Json(
        key.rights
            .iter()
            .map(|r| KeyPermissionResponse {
                instance_id: instances.iter().find(|i| i.name.as_str() == r.instance).map_or(0, |i| i.state.id),
                instance_name: r.instance.clone(),
                can_infer: r.can_infer,
                can_start: r.can_start,
                can_evict: r.can_evict,
            })
            .collect(),
    ))
}
