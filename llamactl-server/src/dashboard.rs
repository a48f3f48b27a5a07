//! The web dashboard: static files (`llamactl-server/dashboard/`) served at `/`, embedded in
//! the binary (debug builds read them from the source folder, and `server.dashboard_dir`
//! serves another folder's files, read at each request). Every answer carries a
//! Content-Security-Policy that allows the dashboard's own files only.
//!
//! Any request no route takes comes here: a `GET` or `HEAD` of a dashboard file gets the file,
//! anything else the API's JSON 404.

use std::borrow::Cow;
use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::api::error::ApiError;
use crate::state::AppState;

/// The Content-Security-Policy of every dashboard answer: nothing but the server's own files
/// (no inline script or style, no other origin), never framed.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The dashboard's files, embedded at build time.
#[derive(Embed)]
#[folder = "dashboard/"]
#[exclude = "*.md"]
struct Files;

/// A file to send: its bytes, type and entity tag.
struct Found {
    bytes: Cow<'static, [u8]>,
    mime: String,
    etag: String,
}

/// Answers a request no route took (see the module's documentation).
pub async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let method = request.method().clone();
    if !state.config.server.enable_dashboard || !(method == Method::GET || method == Method::HEAD) {
        return not_found();
    }
    let Some(name) = file_name(request.uri().path()) else { return not_found() };
    let found = match &state.config.server.dashboard_dir {
        Some(dir) => from_folder(dir, &name).await,
        None => embedded(&name),
    };
    let Some(found) = found else { return not_found() };
    answer(found, request.headers(), method == Method::HEAD)
}

fn not_found() -> Response {
    ApiError::not_found("no such route").into_response()
}

/// The file a request path names: `/` is `index.html`; a path with an empty, `.` or `..`
/// segment, a backslash or a NUL names none.
pub fn file_name(path: &str) -> Option<String> {
    let relative = path.strip_prefix('/')?;
    if relative.is_empty() {
        return Some("index.html".to_owned());
    }
    let plain = |segment: &str| !segment.is_empty() && segment != "." && segment != "..";
    let clean = relative.split('/').all(plain) && !relative.contains(['\\', '\0']);
    clean.then(|| relative.to_owned())
}

fn embedded(name: &str) -> Option<Found> {
    let file = Files::get(name)?;
    Some(Found {
        mime: file.metadata.mimetype().to_owned(),
        etag: format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16])),
        bytes: file.data,
    })
}

async fn from_folder(dir: &Path, name: &str) -> Option<Found> {
    let relative = PathBuf::from(name);
    if !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let bytes = tokio::fs::read(dir.join(&relative)).await.ok()?;
    let digest = crate::auth::keys::sha256_bytes(&bytes);
    Some(Found {
        mime: mime_guess::from_path(&relative).first_or_octet_stream().to_string(),
        etag: format!("\"{}\"", hex::encode(&digest[..16])),
        bytes: Cow::Owned(bytes),
    })
}

fn answer(found: Found, request: &HeaderMap, head_only: bool) -> Response {
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == found.etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else if head_only {
        let mut response = StatusCode::OK.into_response();
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(found.bytes.len()));
        response
    } else {
        Response::new(Body::from(found.bytes))
    };
    let headers = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&found.mime) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    if let Ok(etag) = HeaderValue::from_str(&found.etag) {
        headers.insert(header::ETAG, etag);
    }
    // Revalidated at each load (the names carry no version): a new server's files show at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_are_files() {
        assert_eq!(file_name("/").as_deref(), Some("index.html"));
        assert_eq!(file_name("/js/app.js").as_deref(), Some("js/app.js"));
        for bad in ["/../etc/passwd", "/js/../../x", "/js//app.js", "/./x", "/a\\b", "relative", "/js/"] {
            assert_eq!(file_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_embedded_page_is_there_with_its_type() {
        let page = embedded("index.html").expect("the dashboard's index.html is embedded");
        assert_eq!(page.mime, "text/html");
        assert!(std::str::from_utf8(&page.bytes).unwrap().contains("<script type=\"module\""));
        assert!(embedded("TESTING.md").is_none(), "notes for developers are not served");
    }

    #[test]
    fn an_unchanged_file_is_not_sent_again() {
        let found = || Found { bytes: Cow::Borrowed(b"x"), mime: "text/css".into(), etag: "\"ab\"".into() };
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"zz\", \"ab\""));
        assert_eq!(answer(found(), &request, false).status(), StatusCode::NOT_MODIFIED);
        let fresh = answer(found(), &HeaderMap::new(), false);
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(fresh.headers()[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
    }
}
