//! Errors of the management API: `{"error": "<code>", "details": "<message>"}` with the right
//! status, and `Retry-After` on temporary conditions.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llamactl_core::manager::ManagerError;
use llamactl_core::ports::PortError;
use llamactl_core::{DbError, OptionsError};

pub use llamactl_api::types::ErrorBody;

/// An API error: status, code, message, and an optional `Retry-After`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Message.
    pub details: String,
    /// For 503s: when to try again.
    pub retry_after: Option<Duration>,
    /// The input field at fault (dotted path), for invalid options.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, details: impl Into<String>) -> Self {
        Self { status, code, details: details.into(), retry_after: None, field: None }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, details)
    }

    /// 404.
    pub fn not_found(details: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", details)
    }

    /// 500 (the message is logged; the client gets a generic one with the cause).
    pub fn internal(details: impl std::fmt::Display) -> Self {
        tracing::error!(error = %details, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", details.to_string())
    }

    /// 503 with `Retry-After`.
    pub fn unavailable(code: &'static str, details: impl Into<String>, retry_after: Duration) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, details) }
    }
}

/// `Retry-After` in whole seconds, rounded up, at least one.
pub fn retry_after_header(after: Duration) -> HeaderValue {
    HeaderValue::from((after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1))
}

/// The text of an error answer llamactl made itself, left in the response's extensions for
/// the request's activity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorText(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = ErrorText(format!("{}: {}", self.code, self.details));
        let body = ErrorBody { error: self.code.to_owned(), details: self.details, field: self.field };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(text);
        if let Some(after) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_header(after));
        }
        response
    }
}

impl From<OptionsError> for ApiError {
    fn from(error: OptionsError) -> Self {
        Self { field: Some(error.field().to_owned()), ..Self::bad_request("invalid_options", error.to_string()) }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::NotFound(what) => Self::not_found(format!("{what} not found")),
            DbError::AlreadyExists(what) => {
                Self::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            DbError::Closed => Self::unavailable("unavailable", "the database is closed", Duration::from_secs(5)),
            other => Self::internal(other),
        }
    }
}

impl From<llamactl_core::router::RouterError> for ApiError {
    fn from(error: llamactl_core::router::RouterError) -> Self {
        use llamactl_core::router::RouterError as E;
        let retry = error.retry_after();
        let details = error.to_string();
        let mut answer = match &error {
            E::NotARouter(_) => Self::bad_request("not_a_router", details),
            E::NotRunning(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_running", details),
            E::UnknownModel { .. } => Self::new(StatusCode::NOT_FOUND, "model_not_found", details),
            E::MayNotLoad { .. } | E::MayNotEvict { .. } => Self::new(StatusCode::FORBIDDEN, "forbidden", details),
            E::NoRoom { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "no_room", details),
            E::Busy { .. } => Self::new(StatusCode::CONFLICT, "model_busy", details),
            E::Backoff { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "model_failed", details),
            E::LoadFailed { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "load_failed", details),
            E::Timeout { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", details),
            E::Refused { status, .. } if (400..500).contains(status) => Self::bad_request("router_refused", details),
            E::Refused { .. } => Self::new(StatusCode::BAD_GATEWAY, "router_refused", details),
            E::Unreachable(_) => Self::new(StatusCode::BAD_GATEWAY, "backend_unreachable", details),
        };
        answer.retry_after = retry;
        answer
    }
}

impl From<ManagerError> for ApiError {
    fn from(error: ManagerError) -> Self {
        let retry = error.retry_after();
        let details = error.to_string();
        match error {
            ManagerError::NotFound(_) => Self::not_found(details),
            ManagerError::AlreadyExists(_) => Self::new(StatusCode::CONFLICT, "conflict", details),
            ManagerError::InstanceLimit { .. } => Self::new(StatusCode::CONFLICT, "max_instances", details),
            ManagerError::InvalidOptions(options) => options.into(),
            ManagerError::Port(PortError::Conflict { .. }) => Self::new(StatusCode::CONFLICT, "port_conflict", details),
            ManagerError::Port(PortError::InUse { .. }) => Self::new(StatusCode::CONFLICT, "port_in_use", details),
            ManagerError::Port(PortError::Exhausted { .. }) => {
                Self::unavailable("no_free_port", details, Duration::from_secs(30))
            }
            ManagerError::CapacityExhausted { retry_after, .. } => {
                Self::unavailable("capacity_exhausted", details, retry_after)
            }
            ManagerError::Unsupported { .. } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "unsupported", details),
            ManagerError::StartFailed { .. } => {
                Self { retry_after: retry, ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "start_failed", details) }
            }
            ManagerError::NotRunning { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_running", details),
            ManagerError::MayNotUse { name } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", format!("this key may not use instance {name}"))
            }
            ManagerError::MayNotStart { name, status } => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("instance {name} is {status} and this key may not start it"),
            ),
            ManagerError::QueueFull(full) => Self::unavailable("queue_full", full.to_string(), Duration::from_secs(5)),
            ManagerError::StoppedWhileWaiting { .. } => Self::unavailable("stopped", details, Duration::from_secs(5)),
            ManagerError::Timeout { .. } => {
                Self::unavailable("timeout", details, retry.unwrap_or(Duration::from_secs(5)))
            }
            ManagerError::ShuttingDown => Self::unavailable("shutting_down", details, Duration::from_secs(5)),
            ManagerError::Database(db) => db.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_and_never_zero() {
        assert_eq!(retry_after_header(Duration::from_millis(200)), HeaderValue::from(1));
        assert_eq!(retry_after_header(Duration::from_secs(30)), HeaderValue::from(30));
        assert_eq!(retry_after_header(Duration::ZERO), HeaderValue::from(1));
    }

    #[test]
    fn manager_errors_map_to_statuses() {
        let cases = [
            (ManagerError::NotFound("x".into()), StatusCode::NOT_FOUND),
            (ManagerError::AlreadyExists("x".into()), StatusCode::CONFLICT),
            (ManagerError::InstanceLimit { max: 3 }, StatusCode::CONFLICT),
            (ManagerError::ShuttingDown, StatusCode::SERVICE_UNAVAILABLE),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status, status);
        }
    }
}
