//! Inference API keys: created (the key is shown once), listed, read, deleted. Request and
//! response fields follow the Go llamactl's (camelCase request fields are accepted too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use llamactl_core::db::{ApiKeyRecord, InstanceRights, NewApiKey, PermissionMode};

use super::error::{ApiError, ErrorBody};
use super::extract::{Json as ApiJson, Path};
use super::wire::key_response;
use crate::auth::keys;
use crate::state::AppState;
pub use llamactl_api::types::{
    CreateKeyRequest, CreateKeyResponse, InstancePermissionRequest, KeyPermissionResponse, KeyResponse,
};

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

/// The 404 of a route taking a key id, in the API documentation.
const NO_SUCH_KEY: &str = "No key has this id (not_found)";

/// Create an inference key
///
/// `POST /api/v1/auth/keys`: creates an inference key and shows it once.
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "Keys", operation_id = "createKey",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created; `key` (and `key_secret`) is the secret, shown only in this answer", body = CreateKeyResponse),
        (status = 400, description = "Invalid name, expiry or permissions (the field is named)", body = ErrorBody),
    ),
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
        .keys
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
    let response = CreateKeyResponse {
        key: key_response(&record),
        key_secret: generated.secret.clone(),
        key_go: generated.secret,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// List the inference keys
///
/// `GET /api/v1/auth/keys`: every key, without its secret.
#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "Keys", operation_id = "listKeys",
    responses((status = 200, description = "The keys, without their secrets", body = Vec<KeyResponse>)),
    security(("management_key" = [])))]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<KeyResponse>>, ApiError> {
    let keys = state.keys.list_api_keys().await?;
    Ok(Json(keys.iter().map(key_response).collect()))
}

async fn find(state: &AppState, id: i64) -> Result<ApiKeyRecord, ApiError> {
    state.keys.get_api_key(id).await?.ok_or_else(|| ApiError::not_found(format!("API key {id} not found")))
}

/// Get an inference key
///
/// `GET /api/v1/auth/keys/{id}`: the key, without its secret.
#[utoipa::path(get, path = "/api/v1/auth/keys/{id}", tag = "Keys", operation_id = "getKey",
    params(("id" = i64, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key, without its secret", body = KeyResponse),
        (status = 404, description = NO_SUCH_KEY, body = ErrorBody),
    ),
    security(("management_key" = [])))]
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<KeyResponse>, ApiError> {
    Ok(Json(key_response(&find(&state, id).await?)))
}

/// Delete an inference key
///
/// `DELETE /api/v1/auth/keys/{id}`: the key stops working at once.
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "Keys", operation_id = "deleteKey",
    params(("id" = i64, Path, description = "Key id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = NO_SUCH_KEY, body = ErrorBody)),
    security(("management_key" = [])))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<i64>) -> Result<StatusCode, ApiError> {
    if !state.keys.delete_api_key(id).await? {
        return Err(ApiError::not_found(format!("API key {id} not found")));
    }
    state.auth.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

/// List an inference key's instance permissions
///
/// `GET /api/v1/auth/keys/{id}/permissions`: what the key may do with each instance it names.
#[utoipa::path(get, path = "/api/v1/auth/keys/{id}/permissions", tag = "Keys", operation_id = "listKeyPermissions",
    params(("id" = i64, Path, description = "Key id")),
    responses(
        (status = 200, description = "Its per-instance permissions", body = Vec<KeyPermissionResponse>),
        (status = 404, description = NO_SUCH_KEY, body = ErrorBody),
    ),
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
