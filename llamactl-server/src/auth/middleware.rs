//! Axum middleware that authenticates a request and leaves its [`Principal`] in the request's
//! extensions for the handlers.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AuthError, Principal, presented_key, session};
use crate::activity::RequestTrack;
use crate::api::error::ErrorText;
use crate::state::AppState;

/// An authentication or permission failure, answered in the Go llamactl's form:
/// `{"error": {"message": ..., "type": "authentication_error"}}` (401), or with type
/// `permission_error` (403).
#[derive(Debug)]
pub struct AuthFailure(pub AuthError);

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let (status, kind) = match self.0 {
            AuthError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_error"),
            AuthError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            _ => (StatusCode::UNAUTHORIZED, "authentication_error"),
        };
        let text = ErrorText(self.0.to_string());
        let mut response =
            (status, Json(json!({"error": {"message": self.0.to_string(), "type": kind}}))).into_response();
        response.extensions_mut().insert(text);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What the request presents to be known by: a key (in a header or the query), else the
/// dashboard's session cookie, else nothing.
enum Credentials {
    Key(Result<Option<String>, AuthError>),
    /// A session cookie, already checked: management, or why not.
    Session(Result<Principal, AuthError>),
}

/// Reads the request's credentials before anything is awaited: a request (its body) cannot be
/// shared across threads.
fn credentials_of(state: &AppState, request: &Request) -> Credentials {
    let key = presented_key(request.headers(), request.uri().query());
    if !matches!(key, Ok(None)) {
        return Credentials::Key(key);
    }
    match session::token_of(request.headers()) {
        Some(token) => Credentials::Session(session_principal(state, request, token)),
        None => Credentials::Key(key),
    }
}

/// The holder of an open session is management, if the key that opened it still is one and
/// the request is not a cross-site state change.
fn session_principal(state: &AppState, request: &Request, token: &str) -> Result<Principal, AuthError> {
    let digest = state.sessions.key_of(token).ok_or(AuthError::SessionEnded)?;
    if !state.auth.is_management(&digest) {
        return Err(AuthError::SessionEnded);
    }
    let https = session::came_by_https(request.headers());
    if let Some(why) = session::cross_site_refusal(request.method(), request.headers(), https) {
        return Err(AuthError::Forbidden(why.to_owned()));
    }
    Ok(Principal::Management)
}

async fn identify(state: &AppState, credentials: Credentials) -> Result<Principal, AuthFailure> {
    match credentials {
        Credentials::Session(principal) => principal.map_err(AuthFailure),
        Credentials::Key(key) => {
            let key = key.map_err(AuthFailure)?.ok_or(AuthFailure(AuthError::Missing))?;
            state.auth.authenticate(&key).await.map_err(AuthFailure)
        }
    }
}

/// Management routes: a management key, unless management authentication is turned off.
pub async fn management_auth(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let principal = if state.auth.management_required() {
        match identify(&state, credentials_of(&state, &request)).await {
            Ok(Principal::Management) => Principal::Management,
            Ok(_) => {
                return AuthFailure(AuthError::Forbidden("an inference key cannot use the management API".into()))
                    .into_response();
            }
            Err(failure) => return failure.into_response(),
        }
    } else {
        Principal::Open
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Inference routes: an inference or management key, unless inference authentication is turned
/// off. Per-instance rights are checked by the handlers once they know the instance.
pub async fn inference_auth(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let principal = if state.auth.inference_required() {
        match identify(&state, credentials_of(&state, &request)).await {
            Ok(principal) => principal,
            Err(failure) => return failure.into_response(),
        }
    } else {
        Principal::Open
    };
    if let Some(track) = request.extensions().get::<std::sync::Arc<RequestTrack>>() {
        let key = match &principal {
            Principal::Open => None,
            Principal::Management => Some((None, "management".to_owned())),
            Principal::Inference(key) => Some((Some(key.id), key.name.clone())),
        };
        if let Some((id, name)) = key {
            track.update(|d| (d.key_id, d.key_name) = (id, Some(name)));
        }
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}
