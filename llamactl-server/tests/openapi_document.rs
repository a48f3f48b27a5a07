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
    let public = ["/health", "/ready"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            assert_eq!(secured, !public.contains(&path.as_str()), "{method} {path}: security");
        }
    }
}
