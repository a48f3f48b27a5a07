//! A typed client of llamactl-server's REST API.

use std::ops::Deref;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::activity::{
    ActivityFilter, ActivityGroupBy, ActivityPage, ActivityRecord, ActivityStatsResponse, InflightRequest, encode_query,
};
use crate::reload::ReloadReport;
use crate::resources::{MetricsWindow, SystemInfo, SystemMetrics};
use crate::router::{SubModelInfo, SubModelList};
use crate::types::{
    CreateKeyRequest, CreateKeyResponse, ErrorBody, EventResponse, InstanceResponse, KeyPermissionResponse,
    KeyResponse, ModelList, NestedErrorBody, NodeResponse, ParseCommandRequest, ParseCommandResponse, StatusBody,
    StatusEvent,
};

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (or the connection broke).
    #[error("cannot reach {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport's error.
        message: String,
    },
    /// The server answered with an error.
    #[error("{details}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code (`not_found`, `invalid_options`, ...).
        code: String,
        /// The server's message.
        details: String,
        /// `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The client was given something unusable (a bad base URL).
    #[error("{0}")]
    Setup(String),
    /// Certificate authorities that cannot be used.
    #[error("{0}")]
    Certificate(String),
    /// An instance name the server would refuse; nothing was sent.
    #[error("invalid instance {name:?}: {error}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        error: llamactl_wire::NameError,
    },
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server said 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// A decoded answer together with the JSON exactly as the server sent it.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    /// The decoded value.
    pub value: T,
    /// The JSON as received (field order kept).
    pub raw: Value,
}

impl<T> Deref for Answer<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Answer<T> {
    /// The decoded value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

/// One server-sent event of a followed stream (`logs?follow=true`, `/api/v1/events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    /// The event name (`stdout`, `stderr`, `manager`, `status`, `lagged`).
    pub event: String,
    /// Its data.
    pub data: String,
}

/// The client. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), llamactl_api::ClientError> {
/// let client = llamactl_api::Client::new("http://127.0.0.1:8080", Some("my-management-key".into()))?;
/// for instance in client.list_instances().await?.value {
///     println!("{} {}", instance.name, instance.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// Installs ring as the process's TLS (rustls) crypto provider, unless the program installed
/// one already. [`Client::new`] calls it; programs that build other HTTPS clients call it first.
pub fn install_tls_provider() {
    // An error only says that a provider is installed already: that one is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A transport error as `cannot reach http://host:port: <the innermost cause>`: the outer
/// layers of reqwest's error chain repeat the URL and add nothing a person can act on.
fn unreachable(url: &str, error: &reqwest::Error) -> ClientError {
    let origin = reqwest::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| url.to_owned());
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let message = if error.is_timeout() { format!("timed out ({cause})") } else { cause.to_string() };
    ClientError::Unreachable { url: origin, message }
}

/// `/api/v1/instances/{name}{rest}`, for a valid name only: valid names need no escaping in a
/// URL, and a name like `..` or `a/b` must not turn into another path.
fn instance_path(name: &str, rest: &str) -> Result<String, ClientError> {
    llamactl_wire::InstanceName::new(name)
        .map(|name| format!("/api/v1/instances/{name}{rest}"))
        .map_err(|error| ClientError::InvalidName { name: name.to_owned(), error })
}

impl Client {
    /// A client of the server at `base` (`http://127.0.0.1:8080`, or `https://...`, verified
    /// against the system's certificate authorities), sending `key` if given.
    pub fn new(base: &str, key: Option<String>) -> Result<Self, ClientError> {
        Self::build(base, key, Vec::new())
    }

    /// A client that also trusts the certificate authorities in `pem` (one or more PEM
    /// certificates), for a server with a self-signed or private certificate.
    pub fn with_ca_certificates(base: &str, key: Option<String>, pem: &[u8]) -> Result<Self, ClientError> {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Certificate(format!("not a PEM certificate: {e}")))?;
        if roots.is_empty() {
            return Err(ClientError::Certificate("no PEM certificate found".into()));
        }
        Self::build(base, key, roots)
    }

    fn build(base: &str, key: Option<String>, roots: Vec<reqwest::Certificate>) -> Result<Self, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Setup(format!("server URL {base:?} must start with http:// or https://")));
        }
        install_tls_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self { base, key, http })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> (String, reqwest::RequestBuilder) {
        let url = format!("{}{path}", self.base);
        let mut builder = self.http.request(method, &url);
        if let Some(key) = &self.key {
            builder = builder.bearer_auth(key);
        }
        (url, builder)
    }

    /// Sends a request and turns an error answer into [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(String, reqwest::Response), ClientError> {
        let (url, mut builder) = self.request(method, path);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(|e| unreachable(&url, &e))?;
        if response.status().is_success() {
            return Ok((url, response));
        }
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let text = response.text().await.unwrap_or_default();
        let (code, details) = if let Ok(body) = serde_json::from_str::<ErrorBody>(&text) {
            (body.error, body.details)
        } else if let Ok(body) = serde_json::from_str::<NestedErrorBody>(&text) {
            (body.error.code.unwrap_or(body.error.kind), body.error.message)
        } else {
            let reason = status.canonical_reason().unwrap_or("error").to_owned();
            (reason.to_lowercase().replace(' ', "_"), if text.is_empty() { reason } else { text })
        };
        Err(ClientError::Api { status: status.as_u16(), code, details, retry_after })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Answer<T>, ClientError> {
        let (url, response) = self.send(method, path, body).await?;
        let text = response.text().await.map_err(|e| unreachable(&url, &e))?;
        let raw: Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::Decode { url: url.clone(), message: e.to_string() })?;
        let value =
            serde_json::from_value(raw.clone()).map_err(|e| ClientError::Decode { url, message: e.to_string() })?;
        Ok(Answer { value, raw })
    }

    async fn text(&self, path: &str) -> Result<String, ClientError> {
        let (url, response) = self.send(Method::GET, path, None::<&()>).await?;
        response.text().await.map_err(|e| unreachable(&url, &e))
    }

    async fn no_content(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send(method, path, None::<&()>).await.map(|_| ())
    }

    /// `GET /api/v1/instances`
    pub async fn list_instances(&self) -> Result<Answer<Vec<InstanceResponse>>, ClientError> {
        self.json(Method::GET, "/api/v1/instances", None::<&()>).await
    }

    /// `GET /api/v1/instances/{name}`
    pub async fn get_instance(&self, name: &str) -> Result<Answer<InstanceResponse>, ClientError> {
        self.json(Method::GET, &instance_path(name, "")?, None::<&()>).await
    }

    /// `GET /api/v1/instances/{name}?effective=true`: with `origins`, where each option came
    /// from (a template, or `instance`).
    pub async fn get_instance_effective(&self, name: &str) -> Result<Answer<InstanceResponse>, ClientError> {
        self.json(Method::GET, &instance_path(name, "?effective=true")?, None::<&()>).await
    }

    /// `POST /api/v1/config/reload` (`dry_run`: `?dry_run=true`, the plan only).
    pub async fn reload_config(&self, dry_run: bool) -> Result<Answer<ReloadReport>, ClientError> {
        let path = if dry_run { "/api/v1/config/reload?dry_run=true" } else { "/api/v1/config/reload" };
        self.json(Method::POST, path, None::<&()>).await
    }

    /// `GET /api/v1/config/reload`: the last reload.
    pub async fn last_reload(&self) -> Result<Answer<ReloadReport>, ClientError> {
        self.json(Method::GET, "/api/v1/config/reload", None::<&()>).await
    }

    /// `POST /api/v1/instances/{name}` with the options.
    pub async fn create_instance(&self, name: &str, options: &Value) -> Result<Answer<InstanceResponse>, ClientError> {
        self.json(Method::POST, &instance_path(name, "")?, Some(options)).await
    }

    /// `PUT /api/v1/instances/{name}` with the new options.
    pub async fn update_instance(&self, name: &str, options: &Value) -> Result<Answer<InstanceResponse>, ClientError> {
        self.json(Method::PUT, &instance_path(name, "")?, Some(options)).await
    }

    /// `DELETE /api/v1/instances/{name}`
    pub async fn delete_instance(&self, name: &str) -> Result<(), ClientError> {
        self.no_content(Method::DELETE, &instance_path(name, "")?).await
    }

    /// `POST /api/v1/instances/{name}/{start|stop|restart}`
    pub async fn lifecycle(&self, name: &str, action: Lifecycle) -> Result<Answer<InstanceResponse>, ClientError> {
        self.json(Method::POST, &instance_path(name, &format!("/{}", action.as_str()))?, None::<&()>).await
    }

    /// `GET /api/v1/instances/{name}/logs?lines=N` (text).
    pub async fn logs(&self, name: &str, lines: Option<i64>) -> Result<String, ClientError> {
        let query = lines.map(|n| format!("?lines={n}")).unwrap_or_default();
        self.text(&instance_path(name, &format!("/logs{query}"))?).await
    }

    async fn events_stream(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<ServerEvent, ClientError>> + use<>, ClientError> {
        let (url, response) = self.send(Method::GET, path, None::<&()>).await?;
        Ok(response.bytes_stream().eventsource().map(move |item| match item {
            Ok(event) => Ok(ServerEvent { event: event.event, data: event.data }),
            Err(error) => Err(ClientError::Unreachable { url: url.clone(), message: error.to_string() }),
        }))
    }

    /// `GET /api/v1/instances/{name}/logs?lines=N&follow=true`: the last lines, then new ones
    /// as they come.
    pub async fn follow_logs(
        &self,
        name: &str,
        lines: Option<i64>,
    ) -> Result<impl Stream<Item = Result<ServerEvent, ClientError>> + use<>, ClientError> {
        let lines = lines.map(|n| format!("&lines={n}")).unwrap_or_default();
        self.events_stream(&instance_path(name, &format!("/logs?follow=true{lines}"))?).await
    }

    /// `GET /api/v1/events`, only its events named `name`, their data decoded as JSON (and kept
    /// as received).
    async fn named_events<T: DeserializeOwned>(
        &self,
        name: &'static str,
    ) -> Result<impl Stream<Item = Result<Answer<T>, ClientError>> + use<T>, ClientError> {
        let stream = self.events_stream("/api/v1/events").await?;
        let decode = |data: &str| -> Result<Answer<T>, ClientError> {
            let error =
                |e: serde_json::Error| ClientError::Decode { url: "/api/v1/events".into(), message: e.to_string() };
            let raw: Value = serde_json::from_str(data).map_err(error)?;
            let value = serde_json::from_value(raw.clone()).map_err(error)?;
            Ok(Answer { value, raw })
        };
        Ok(stream.filter_map(move |item| {
            let decoded = match item {
                Ok(event) if event.event == name => Some(decode(&event.data)),
                Ok(_) => None,
                Err(error) => Some(Err(error)),
            };
            std::future::ready(decoded)
        }))
    }

    /// `GET /api/v1/events`: every status change, decoded.
    pub async fn status_events(
        &self,
    ) -> Result<impl Stream<Item = Result<StatusEvent, ClientError>> + use<>, ClientError> {
        Ok(self.named_events("status").await?.map(|item| item.map(Answer::into_inner)))
    }

    /// `GET /api/v1/events`: every request that ended (`event: activity`), decoded, with the
    /// JSON as received.
    pub async fn activity_events(
        &self,
    ) -> Result<impl Stream<Item = Result<Answer<ActivityRecord>, ClientError>> + use<>, ClientError> {
        self.named_events("activity").await
    }

    /// `GET /api/v1/activity?...`: request records, newest first.
    pub async fn activity(&self, filter: &ActivityFilter) -> Result<Answer<ActivityPage>, ClientError> {
        let query = filter.query();
        let path = if query.is_empty() { "/api/v1/activity".to_owned() } else { format!("/api/v1/activity?{query}") };
        self.json(Method::GET, &path, None::<&()>).await
    }

    /// `GET /api/v1/activity/stats?since=&group_by=`: request statistics of each group, of the
    /// records from `since` on (all kept, without it).
    pub async fn activity_stats(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
        group_by: ActivityGroupBy,
    ) -> Result<Answer<ActivityStatsResponse>, ClientError> {
        let mut pairs = vec![("group_by", group_by.as_str().to_owned())];
        if let Some(since) = since {
            pairs.push(("since", since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        }
        self.json(Method::GET, &format!("/api/v1/activity/stats?{}", encode_query(&pairs)), None::<&()>).await
    }

    /// `GET /api/v1/inflight`: the requests in flight or waiting for their instance.
    pub async fn inflight(&self) -> Result<Answer<Vec<InflightRequest>>, ClientError> {
        self.json(Method::GET, "/api/v1/inflight", None::<&()>).await
    }

    /// `POST /api/v1/inflight/{id}/cancel`: ends a request in flight (404 if it is not).
    pub async fn cancel_inflight(&self, id: i64) -> Result<(), ClientError> {
        self.no_content(Method::POST, &format!("/api/v1/inflight/{id}/cancel")).await
    }

    /// `GET /api/v1/instances/{name}/events`
    pub async fn instance_events(
        &self,
        name: &str,
        after_id: Option<i64>,
        limit: Option<u32>,
    ) -> Result<Answer<Vec<EventResponse>>, ClientError> {
        let mut query = Vec::new();
        if let Some(after) = after_id {
            query.push(format!("after_id={after}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        self.json(Method::GET, &instance_path(name, &format!("/events{query}"))?, None::<&()>).await
    }

    /// `GET /api/v1/instances/{name}/models`: a router instance's models.
    pub async fn sub_models(&self, name: &str) -> Result<Answer<SubModelList>, ClientError> {
        self.json(Method::GET, &instance_path(name, "/models")?, None::<&()>).await
    }

    /// `POST /api/v1/instances/{name}/models/{model}/load` (the instance is started if stopped).
    pub async fn load_sub_model(&self, name: &str, model: &str) -> Result<Answer<SubModelInfo>, ClientError> {
        let path = instance_path(name, &format!("/models/{}/load", crate::activity::percent_encode(model)))?;
        self.json(Method::POST, &path, None::<&()>).await
    }

    /// `POST /api/v1/instances/{name}/models/{model}/unload`
    pub async fn unload_sub_model(&self, name: &str, model: &str) -> Result<Answer<SubModelInfo>, ClientError> {
        let path = instance_path(name, &format!("/models/{}/unload", crate::activity::percent_encode(model)))?;
        self.json(Method::POST, &path, None::<&()>).await
    }

    /// `POST /api/v1/auth/keys`
    pub async fn create_key(&self, request: &CreateKeyRequest) -> Result<Answer<CreateKeyResponse>, ClientError> {
        self.json(Method::POST, "/api/v1/auth/keys", Some(request)).await
    }

    /// `GET /api/v1/auth/keys`
    pub async fn list_keys(&self) -> Result<Answer<Vec<KeyResponse>>, ClientError> {
        self.json(Method::GET, "/api/v1/auth/keys", None::<&()>).await
    }

    /// `GET /api/v1/auth/keys/{id}`
    pub async fn get_key(&self, id: i64) -> Result<Answer<KeyResponse>, ClientError> {
        self.json(Method::GET, &format!("/api/v1/auth/keys/{id}"), None::<&()>).await
    }

    /// `GET /api/v1/auth/keys/{id}/permissions`
    pub async fn key_permissions(&self, id: i64) -> Result<Answer<Vec<KeyPermissionResponse>>, ClientError> {
        self.json(Method::GET, &format!("/api/v1/auth/keys/{id}/permissions"), None::<&()>).await
    }

    /// `DELETE /api/v1/auth/keys/{id}`
    pub async fn delete_key(&self, id: i64) -> Result<(), ClientError> {
        self.no_content(Method::DELETE, &format!("/api/v1/auth/keys/{id}")).await
    }

    /// `GET /v1/models`
    pub async fn models(&self) -> Result<Answer<ModelList>, ClientError> {
        self.json(Method::GET, "/v1/models", None::<&()>).await
    }

    /// `GET /api/v1/version` (text).
    pub async fn version(&self) -> Result<String, ClientError> {
        Ok(self.text("/api/v1/version").await?.trim().to_owned())
    }

    /// `GET /api/v1/config` (secrets removed).
    pub async fn config(&self) -> Result<Answer<Value>, ClientError> {
        self.json(Method::GET, "/api/v1/config", None::<&()>).await
    }

    /// `GET /api/v1/nodes`
    pub async fn nodes(&self) -> Result<Answer<Vec<NodeResponse>>, ClientError> {
        self.json(Method::GET, "/api/v1/nodes", None::<&()>).await
    }

    /// `GET /api/v1/system/metrics?window=...`: resource series over `window`, and the latest tick.
    pub async fn system_metrics(&self, window: MetricsWindow) -> Result<Answer<SystemMetrics>, ClientError> {
        self.json(Method::GET, &format!("/api/v1/system/metrics?window={window}"), None::<&()>).await
    }

    /// `GET /api/v1/system/info`: the host (OS, kernel, CPU, memory, GPUs, Docker engine).
    pub async fn system_info(&self) -> Result<Answer<SystemInfo>, ClientError> {
        self.json(Method::GET, "/api/v1/system/info", None::<&()>).await
    }

    /// `GET /ready`
    pub async fn ready(&self) -> Result<Answer<StatusBody>, ClientError> {
        self.json(Method::GET, "/ready", None::<&()>).await
    }

    /// `POST /api/v1/backends/{backend}/parse-command` for `llama-cpp`, `mlx` or `vllm`.
    pub async fn parse_command(
        &self,
        backend: &str,
        command: &str,
    ) -> Result<Answer<ParseCommandResponse>, ClientError> {
        let request = ParseCommandRequest { command: command.to_owned() };
        self.json(Method::POST, &format!("/api/v1/backends/{backend}/parse-command"), Some(&request)).await
    }
}

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Start.
    Start,
    /// Stop.
    Stop,
    /// Restart.
    Restart,
}

impl Lifecycle {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
        }
    }
}

/// Whether an HTTP status means "try again later".
pub fn is_temporary(status: u16) -> bool {
    StatusCode::from_u16(status)
        .is_ok_and(|s| s == StatusCode::SERVICE_UNAVAILABLE || s == StatusCode::TOO_MANY_REQUESTS)
}
