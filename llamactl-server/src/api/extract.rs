//! Extractors whose rejections (malformed JSON, wrong content type, unparsable path or query)
//! answer in the API's JSON error form instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;

/// A JSON body.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            _ => "invalid_json",
        };
        // Data errors (422 in axum) are bad input like any other here.
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY { StatusCode::BAD_REQUEST } else { status };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

/// Checks the `Content-Type` of a body that is read as JSON whatever its label (instance
/// options on create and replace), as the Go llamactl reads it. The label is refused (415) only
/// when it names another format; accepted are:
///
/// - no `Content-Type` at all;
/// - JSON: `application/json`, any `+json` type, and the older `text/json`, `text/x-json` and
///   `application/x-json`;
/// - the generic labels tools put on JSON when not told otherwise:
///   `application/x-www-form-urlencoded` (`curl -d`, `wget --post-data`, PowerShell),
///   `text/plain` (a string body in `fetch` or aiohttp) and `application/octet-stream` (raw
///   bytes). The body still has to be JSON: if it is not, the answer is 400 `invalid_json`.
///
/// Parameters such as `charset` are ignored (the body is read as UTF-8). Everything else —
/// `multipart/form-data`, XML, YAML, HTML, a value that is not a media type — is 415
/// `unsupported_media_type`, naming the type (escaped, so control characters never appear raw).
pub(crate) fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let shown = String::from_utf8_lossy(value.as_bytes());
    let essence = shown.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let accepted = match essence.split_once('/') {
        Some((kind, subtype)) => {
            matches!(
                (kind, subtype),
                ("application", "json" | "x-json" | "x-www-form-urlencoded" | "octet-stream")
                    | ("text", "json" | "x-json" | "plain")
            ) || (!kind.is_empty() && subtype.len() > "+json".len() && subtype.ends_with("+json"))
        }
        None => false,
    };
    if accepted {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("content type {shown:?} is not supported: the body must be JSON (application/json)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(content_type: Option<&[u8]>) -> Result<(), ApiError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_bytes(value).unwrap());
        }
        check_json_content_type(&headers)
    }

    #[test]
    fn json_and_generic_content_types_are_accepted() {
        check(None).unwrap();
        for accepted in [
            &b"application/json"[..],
            b"Application/JSON; charset=utf-8",
            b"application/merge-patch+json",
            b"application/vnd.llamactl.options+json ; charset=UTF-8",
            b"text/json",
            b"text/x-json",
            b"application/x-json",
            b"application/x-www-form-urlencoded",
            b"text/plain;charset=UTF-8",
            b"application/octet-stream",
        ] {
            check(Some(accepted)).unwrap_or_else(|e| panic!("{}: {e:?}", String::from_utf8_lossy(accepted)));
        }
    }

    #[test]
    fn other_content_types_are_refused_with_415_naming_them() {
        for refused in [
            &b"application/xml"[..],
            b"text/xml; charset=utf-8",
            b"application/atom+xml",
            b"multipart/form-data; boundary=b",
            b"application/yaml",
            b"text/html",
            b"image/png",
            b"json",
            b"",
            b"application/+json",
            b"/json",
        ] {
            let shown = String::from_utf8_lossy(refused);
            let error = check(Some(refused)).unwrap_err();
            assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{shown}");
            assert_eq!(error.code, "unsupported_media_type");
            assert!(error.details.contains(&format!("{shown:?}")), "{shown}: {}", error.details);
        }
        let error = check(Some(b"text/\txml\xff")).unwrap_err();
        assert_eq!(
            error.details,
            "content type \"text/\\txml\u{fffd}\" is not supported: the body must be JSON (application/json)"
        );
    }
}
