//! Request bodies read whole, within a size limit: management bodies (instance options) and
//! the proxied inference bodies whose `model` picks the instance.

use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;

use super::error::ApiError;

/// Reads a whole request body, at most `limit` bytes (more: 413). A body whose declared length
/// (`Content-Length`) is already over the limit is refused at once, without waiting for it.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if usize::try_from(axum::body::HttpBody::size_hint(&body).lower()).map_or(true, |declared| declared > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        if std::error::Error::source(&error).is_some_and(|e| e.is::<http_body_util::LengthLimitError>())
            || error.to_string().contains("length limit")
        {
            too_large()
        } else {
            ApiError::bad_request("bad_body", format!("cannot read the request body: {error}"))
        }
    })
}
