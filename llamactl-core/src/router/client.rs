//! The router's model routes, called over HTTP: `GET /models`, `POST /models/load`,
//! `POST /models/unload`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::RouterError;
use super::listing::{ListedModel, parse_listing};

/// How long one call to the router may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one router's model routes.
#[derive(Debug, Clone)]
pub struct RouterClient {
    base_url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl RouterClient {
    /// A client of the router at `base_url` (`http://host:port`).
    pub fn new(base_url: impl Into<String>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        Self { base_url: base_url.into(), client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// Where the router listens.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The router's models (`GET /models`).
    pub async fn list(&self) -> Result<Vec<ListedModel>, RouterError> {
        let body = self.call(Method::GET, "/models", None).await?;
        parse_listing(&body).ok_or_else(|| RouterError::Unreachable("its model list is not a list".into()))
    }

    /// Asks the router to read its model sources again (`GET /models?reload=1`): new preset
    /// sections appear, the models it runs keep running.
    pub async fn reload(&self) -> Result<Vec<ListedModel>, RouterError> {
        let body = self.call(Method::GET, "/models?reload=1", None).await?;
        parse_listing(&body).ok_or_else(|| RouterError::Unreachable("its model list is not a list".into()))
    }

    /// Asks the router to load `model` (`POST /models/load`); it loads in the background.
    pub async fn load(&self, model: &str) -> Result<(), RouterError> {
        self.call(Method::POST, "/models/load", Some(json!({"model": model}))).await.map(drop)
    }

    /// Asks the router to unload `model` (`POST /models/unload`).
    pub async fn unload(&self, model: &str) -> Result<(), RouterError> {
        self.call(Method::POST, "/models/unload", Some(json!({"model": model}))).await.map(drop)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, RouterError> {
        let url = format!("{}{path}", self.base_url);
        let uri: Uri = url.parse().map_err(|e| RouterError::Unreachable(format!("bad URL {url}: {e}")))?;
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes))
            .map_err(|e| RouterError::Unreachable(e.to_string()))?;
        let call = async {
            let response = self.client.request(request).await.map_err(|e| RouterError::Unreachable(e.to_string()))?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| RouterError::Unreachable(e.to_string()))?;
            Ok::<_, RouterError>((status, body.to_bytes()))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| RouterError::Unreachable(format!("{url} did not answer within {CALL_TIMEOUT:?}")))??;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status != StatusCode::OK {
            let message = value["error"]["message"]
                .as_str()
                .or_else(|| value["error"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(RouterError::Refused { status: status.as_u16(), message });
        }
        Ok(value)
    }
}
