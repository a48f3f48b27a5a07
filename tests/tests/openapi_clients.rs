//! The OpenAPI document a real llamactl-server serves, judged by standard tools: it validates
//! as OpenAPI 3.1 (openapi-spec-validator), and a client generated from it (openapi-python-client)
//! creates, lists, starts, stops and deletes a real llama-server instance and creates a key.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, http, server_config};
use llamactl_tests::tiny_gguf;
use serde_json::{Value, json};

fn provisioned(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/backends/provision.sh and source its env.sh (scripts/test.sh does)")
    })
}

/// The document as the server serves it, written to `dir/openapi.json`.
async fn served_document(server: &SpawnedServer, dir: &Path) -> (Value, PathBuf) {
    let response = http().get(format!("{}/api/v1/openapi.json", server.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let doc: Value = response.json().await.unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    (doc, file)
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// openapi-spec-validator's verdict on a document file.
async fn validate(file: &Path) -> Output {
    let mut command = Command::new(provisioned("LLAMACTL_TEST_CLIENT_PYTHON"));
    command.args(["-m", "openapi_spec_validator"]).arg(file);
    run(command).await
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_3_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let (doc, file) = served_document(&server, dir.path()).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let expected: Value = serde_json::from_str(&llamactl_server::api::openapi().to_json().unwrap()).unwrap();
    assert!(doc == expected, "the served document is not the one the code generates");

    let verdict = validate(&file).await;
    assert!(verdict.status.success() && text(&verdict).contains(": OK"), "not valid OpenAPI:\n{}", text(&verdict));

    // The validator does catch the two faults this document once had.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/instances"]["get"]["responses"]["200"].as_object_mut().unwrap().remove("description");
    let broken_file = dir.path().join("no-description.json");
    std::fs::write(&broken_file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let verdict = validate(&broken_file).await;
    assert!(!verdict.status.success() && text(&verdict).contains("description"), "{}", text(&verdict));

    let mut broken = doc;
    broken["paths"]["/api/v1/auth/keys"]["get"]["operationId"] = json!("listInstances");
    let broken_file = dir.path().join("same-operation-id.json");
    std::fs::write(&broken_file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let verdict = validate(&broken_file).await;
    assert!(!verdict.status.success() && text(&verdict).contains("listInstances"), "{}", text(&verdict));
    assert!(server.terminate());
}

#[tokio::test]
async fn a_client_generated_from_the_served_document_runs_an_instance_and_creates_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = SpawnedServer::start(dir.path(), &server_config(dir.path()));
    let (_, file) = served_document(&server, dir.path()).await;

    // Generation: any warning means a piece of the API is missing from the client.
    let python = PathBuf::from(provisioned("LLAMACTL_TEST_OPENAPI_GENERATOR_PYTHON"));
    let venv_bin = python.parent().unwrap().to_path_buf();
    // The generator formats its output with ruff, which it finds on PATH (ruff is in its venv).
    let path = std::env::join_paths(
        std::iter::once(venv_bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let generated = dir.path().join("generated");
    let mut command = Command::new(&python);
    command
        .args(["-m", "openapi_python_client", "generate", "--meta", "none", "--path"])
        .arg(&file)
        .arg("--output-path")
        .arg(generated.join("llamactl_client"))
        .env("PATH", &path)
        .current_dir(dir.path());
    let output = run(command).await;
    let said = text(&output);
    assert!(output.status.success(), "openapi-python-client failed:\n{said}");
    assert!(!said.to_lowercase().contains("warning") && !said.to_lowercase().contains("error"), "{said}");
    assert!(generated.join("llamactl_client/api/instances/start_instance.py").exists(), "{said}");

    let options = json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": tiny_gguf(), "ctx_size": 512, "gpu_layers": 0, "parallel": 1, "threads": 2, "no_webui": true},
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/openapi_generated_client.py");
    let mut command = Command::new(&python);
    command
        .arg(script)
        .args([&server.base, MANAGEMENT_KEY, "generated", &options.to_string()])
        .env("PYTHONPATH", &generated)
        .env("PATH", &path);
    let output = run(command).await;
    let said = text(&output);
    assert!(output.status.success(), "the generated client failed:\n{said}");
    for check in [
        "getHealth ok",
        "createInstance ok: generated stopped",
        "createInstance twice ok: conflict",
        "listInstances ok",
        "startInstance ok: running",
        "createKey ok",
        "listModels with the new key ok: ['generated']",
        "deleteKey ok: the key is refused with 401",
        "stopInstance ok: stopped",
        "deleteInstance ok: not_found",
    ] {
        assert!(said.contains(check), "{check} missing in:\n{said}");
    }
    assert!(server.terminate());
}
