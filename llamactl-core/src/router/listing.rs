//! The router's own list of its models (`GET /models`), read into [`ListedModel`]s.

use serde_json::Value;

/// One model as the router lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// Its id (a file stem of `--models-dir`, a preset section, a cache name such as
    /// `org/model:Q4_K_M`).
    pub id: String,
    /// Other names requests may use.
    pub aliases: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// The router's `status.value` (`unloaded`, `loading`, `loaded`, `sleeping`, `failed`; a
    /// value this version does not know is kept as it is).
    pub status: String,
    /// The exit code of its last process, when the router reports one.
    pub exit_code: Option<i32>,
    /// Whether the router marks its last process as failed.
    pub failed: bool,
    /// Where the router found it (`models_dir`, `preset`, `cache`).
    pub source: Option<String>,
}

/// Reads a router's `GET /models` answer (`{"data": [...]}`); entries without an id are
/// skipped. `None` when the body is not such a list.
///
/// ```
/// use llamactl_core::router::parse_listing;
/// let body = serde_json::json!({"object": "list", "data": [
///     {"id": "alpha", "aliases": ["a"], "status": {"value": "loaded"}, "source": "models_dir"},
///     {"id": "beta", "status": {"value": "unloaded", "exit_code": 137, "failed": true}},
/// ]});
/// let models = parse_listing(&body).unwrap();
/// assert_eq!(models[0].aliases, ["a"]);
/// assert_eq!((models[1].status.as_str(), models[1].exit_code, models[1].failed), ("unloaded", Some(137), true));
/// ```
pub fn parse_listing(body: &Value) -> Option<Vec<ListedModel>> {
    let data = body.get("data")?.as_array()?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    Some(
        data.iter()
            .filter_map(|entry| {
                let id = entry.get("id").or_else(|| entry.get("name"))?.as_str()?.to_owned();
                let status = &entry["status"];
                // Older routers give the status as a plain string.
                let value = status.get("value").unwrap_or(status).as_str().unwrap_or("unloaded").to_owned();
                Some(ListedModel {
                    id,
                    aliases: strings(&entry["aliases"]),
                    tags: strings(&entry["tags"]),
                    status: value,
                    exit_code: status.get("exit_code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()),
                    failed: status.get("failed").and_then(Value::as_bool).unwrap_or(false),
                    source: entry.get("source").and_then(Value::as_str).map(str::to_owned),
                })
            })
            .collect(),
    )
}
