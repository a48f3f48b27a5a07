//! The committed OpenAPI document (`openapi/openapi.json`) is the one the code generates.
//! Regenerate it with: `cargo run -p llamactl-server -- openapi > openapi/openapi.json`
#![allow(clippy::unwrap_used)]

#[test]
fn the_committed_document_matches_the_code() {
    let generated = llamactl_server::api::openapi().to_pretty_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is out of date: run `cargo run -p llamactl-server -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_is_documented_with_responses_and_security() {
    let doc: serde_json::Value =
        serde_json::from_str(&llamactl_server::api::openapi().to_pretty_json().unwrap()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("management_key") && schemes.contains_key("inference_key"));
    let public = ["/health", "/ready", "/api/v1/session"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !public.contains(&path.as_str()), "{method} {path}: security");
        }
    }
}

/// What a generator needs to make a client: every response described (the specification
/// requires it), every operation named by a unique operationId that reads as a method name,
/// and a one-line summary that is not merely the method and path.
#[test]
fn every_operation_has_a_unique_method_name_a_summary_and_described_responses() {
    let doc: serde_json::Value =
        serde_json::from_str(&llamactl_server::api::openapi().to_pretty_json().unwrap()).unwrap();
    let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut ids = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !methods.contains(&method.as_str()) {
                continue;
            }
            let at = format!("{method} {path}");
            match operation["operationId"].as_str() {
                None => problems.push(format!("{at}: no operationId")),
                Some(id) => {
                    let camel = id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && id.chars().all(|c| c.is_ascii_alphanumeric())
                        && id.chars().any(|c| c.is_ascii_uppercase());
                    if !camel {
                        problems.push(format!("{at}: operationId {id:?} is not a camelCase verb and noun"));
                    }
                    if let Some(other) = ids.insert(id.to_owned(), at.clone()) {
                        problems.push(format!("{at}: operationId {id:?} is also that of {other}"));
                    }
                }
            }
            match operation["summary"].as_str().map(str::trim) {
                None | Some("") => problems.push(format!("{at}: no summary")),
                Some(summary) if summary.contains('\n') || summary.len() > 80 => {
                    problems.push(format!("{at}: summary {summary:?} is not one short line"));
                }
                Some(summary) if summary.starts_with('`') || summary.contains(path.as_str()) => {
                    problems.push(format!("{at}: summary {summary:?} names the route instead of what it does"));
                }
                Some(_) => {}
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                if response["description"].as_str().is_none_or(|d| d.trim().is_empty()) {
                    problems.push(format!("{at}: response {status} has no description"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
