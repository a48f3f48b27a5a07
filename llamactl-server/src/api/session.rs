//! The dashboard's sign-in: `GET|POST|DELETE /api/v1/session` (see [`crate::auth::session`]).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::Json as ApiJson;
use crate::auth::{keys, session};
use crate::state::AppState;

/// Whether the dashboard must sign in, and whether this browser is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStatus {
    /// Management routes need a key (else the dashboard needs no sign-in).
    pub auth_required: bool,
    /// The request's session cookie names an open session (always true when no sign-in is
    /// needed).
    pub signed_in: bool,
}

/// A sign-in.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A management key (inference keys cannot sign in).
    pub key: String,
}

/// Whether the dashboard is signed in
///
/// `GET /api/v1/session`: needs no key.
#[utoipa::path(get, path = "/api/v1/session", tag = "Dashboard", operation_id = "getSession",
    responses((status = 200, description = "Whether sign-in is needed and done", body = SessionStatus)))]
pub async fn status(State(state): State<AppState>, headers: HeaderMap) -> Json<SessionStatus> {
    let auth_required = state.auth.management_required();
    let open = session::token_of(&headers)
        .and_then(|token| state.sessions.key_of(token))
        .is_some_and(|digest| state.auth.is_management(&digest));
    Json(SessionStatus { auth_required, signed_in: !auth_required || open })
}

/// Sign the dashboard in
///
/// `POST /api/v1/session` with `{"key": "<management key>"}`: answers 204 with an HttpOnly,
/// SameSite=Strict session cookie (Secure over https) lasting `auth.session_hours`.
#[utoipa::path(post, path = "/api/v1/session", tag = "Dashboard", operation_id = "signIn",
    request_body = SignIn,
    responses(
        (status = 204, description = "Signed in: the session cookie is set"),
        (status = 401, description = "Not a management key (invalid_key)", body = ErrorBody),
        (status = 403, description = "An inference key, or a cross-site request (forbidden)", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    refuse_cross_site(&method, &headers)?;
    if !state.auth.management_required() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let digest = keys::sha256(body.key.trim());
    if !state.auth.is_management(&digest) {
        let inference = state.auth.authenticate(body.key.trim()).await.is_ok();
        return Err(if inference {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "an inference key cannot sign in: use a management key")
        } else {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_key", "this is not a management key")
        });
    }
    let opened = state.sessions.create(&digest).map_err(ApiError::internal)?;
    let https = session::came_by_https(&headers);
    let cookie = session::set_cookie(&opened.token, state.sessions.lifetime(), https);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// Sign the dashboard out
///
/// `DELETE /api/v1/session`: ends the cookie's session (later requests with it are refused)
/// and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "Dashboard", operation_id = "signOut",
    responses(
        (status = 204, description = "Signed out"),
        (status = 403, description = "A cross-site request (forbidden)", body = ErrorBody),
    ))]
pub async fn sign_out(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Result<Response, ApiError> {
    refuse_cross_site(&method, &headers)?;
    if let Some(token) = session::token_of(&headers) {
        state.sessions.end(token).map_err(ApiError::internal)?;
    }
    let cookie = session::clear_cookie(session::came_by_https(&headers));
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

fn refuse_cross_site(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    match session::cross_site_refusal(method, headers, session::came_by_https(headers)) {
        Some(why) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", why)),
        None => Ok(()),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
