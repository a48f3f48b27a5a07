//! Import of the Go llamactl's per-instance JSON files into a real SQLite database.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::DateTime;
use llamactl_core::options::GpuLayers;
use llamactl_core::{BackendOptions, Database, DesiredState, ImportedInstance, InstanceOptions, SqliteDatabase};
use llamactl_server::legacy_import::{ImportError, import_legacy_instances};
use serde_json::{Value, json};

async fn open_db(dir: &Path) -> SqliteDatabase {
    SqliteDatabase::open(dir.join("llamactl.db")).await.unwrap()
}

fn write(dir: &Path, file: &str, content: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, content).unwrap();
    path
}

fn write_json(dir: &Path, file: &str, value: &Value) -> PathBuf {
    write(dir, file, &serde_json::to_string_pretty(value).unwrap())
}

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn llama_file() -> Value {
    json!({
        "name": "llama",
        "status": "running",
        "created": 1_718_000_000,
        "options": {
            "backend_type": "llama_cpp",
            "backend_options": {"m": "/models/qwen2.5-7b-q4_k_m.gguf", "c": 8192, "ngl": 99, "host": "127.0.0.1", "port": 0},
            "auto_restart": true,
            "max_restarts": 3,
            "restart_delay": 5,
            "on_demand_start": true,
            "idle_timeout": 10,
            "environment": {"CUDA_VISIBLE_DEVICES": "0"}
        }
    })
}

fn vllm_file() -> Value {
    json!({
        "name": "vllm",
        "status": "stopped",
        "created": 1_719_000_000,
        "options": {
            "backend_type": "vllm",
            "backend_options": {
                "model": "Qwen/Qwen2.5-7B-Instruct",
                "tensor_parallel_size": 2,
                "gpu_memory_utilization": 0.9,
                "max_num_batched_tokens": 8192
            },
            "auto_restart": false
        }
    })
}

fn mlx_file() -> Value {
    json!({
        "name": "mlx",
        "status": "failed",
        "options": {
            "backend_type": "mlx_lm",
            "backend_options": {"model": "mlx-community/Mistral-7B-Instruct-v0.3-4bit", "temp": 0.7, "max_tokens": 2048}
        }
    })
}

fn restarting_file() -> Value {
    json!({
        "name": "phi-3.mini",
        "status": "restarting",
        "created": 1_720_000_000,
        "options": {"backend_type": "llama_cpp", "backend_options": {"hf": "microsoft/Phi-3-mini-4k-instruct-gguf"}}
    })
}

fn file_options(file: &Value) -> InstanceOptions {
    InstanceOptions::from_json_value(&file["options"]).unwrap()
}

fn assert_archive_name(archive: &Path, instances: &Path) {
    assert_eq!(archive.parent(), Some(instances));
    let name = archive.file_name().unwrap().to_str().unwrap();
    let stamp = name.strip_prefix("imported-").unwrap_or_else(|| panic!("{name}"));
    assert_eq!(stamp.len(), 16, "{name}");
    assert!(
        stamp.char_indices().all(|(i, c)| match i {
            8 => c == 'T',
            15 => c == 'Z',
            _ => c.is_ascii_digit(),
        }),
        "{name}"
    );
}

#[tokio::test]
async fn imports_realistic_go_files_once_and_archives_them() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    let files =
        [("llama", llama_file()), ("vllm", vllm_file()), ("mlx", mlx_file()), ("phi-3.mini", restarting_file())];
    for (name, value) in &files {
        write_json(&instances, &format!("{name}.json"), value);
    }
    let db = open_db(tmp.path()).await;

    let report = import_legacy_instances(&db, &instances).await.unwrap();
    assert_eq!(report.imported, ["llama", "mlx", "phi-3.mini", "vllm"], "sorted by file name");
    assert!(!report.already_in_database);
    let archive = report.archive.clone().unwrap();
    assert_archive_name(&archive, &instances);

    // The folder holds only the archive, which holds every original, unchanged.
    assert_eq!(listing(&instances), [archive.file_name().unwrap().to_str().unwrap()]);
    assert_eq!(listing(&archive), ["llama.json", "mlx.json", "phi-3.mini.json", "vllm.json"]);
    for (name, value) in &files {
        let text = std::fs::read_to_string(archive.join(format!("{name}.json"))).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), *value);
    }

    let stored = db.load_all().await.unwrap();
    assert_eq!(stored.len(), 4);
    for (name, value) in &files {
        let instance = db.get(name).await.unwrap().unwrap();
        assert_eq!(instance.options.as_ref().unwrap(), &file_options(value), "{name}");
    }

    let llama = db.get("llama").await.unwrap().unwrap();
    let BackendOptions::LlamaCpp(backend) = &llama.options.as_ref().unwrap().backend else { panic!("llama_cpp") };
    assert_eq!(backend.model.as_deref(), Some("/models/qwen2.5-7b-q4_k_m.gguf"));
    assert_eq!(backend.ctx_size, Some(8192));
    assert_eq!(backend.gpu_layers, Some(GpuLayers::Count(99)));
    assert_eq!(backend.port, None, "port 0 means unset");
    let options = llama.options.as_ref().unwrap();
    assert_eq!(options.auto_restart, Some(true));
    assert_eq!(options.idle_timeout, Some(std::time::Duration::from_secs(600)), "bare number is minutes");
    assert_eq!(options.environment["CUDA_VISIBLE_DEVICES"], "0");
    assert_eq!(llama.runtime.desired_state, DesiredState::Running);
    assert_eq!(llama.created_at, DateTime::from_timestamp(1_718_000_000, 0).unwrap());

    let vllm = db.get("vllm").await.unwrap().unwrap();
    assert_eq!(vllm.runtime.desired_state, DesiredState::Stopped);
    assert_eq!(vllm.created_at, DateTime::from_timestamp(1_719_000_000, 0).unwrap());
    let BackendOptions::Vllm(backend) = &vllm.options.as_ref().unwrap().backend else { panic!("vllm") };
    assert_eq!(backend.tensor_parallel_size, Some(2));
    assert!(backend.extra.get("max_num_batched_tokens").is_some(), "unknown backend option kept");

    let mlx = db.get("mlx").await.unwrap().unwrap();
    assert_eq!(mlx.runtime.desired_state, DesiredState::Stopped, "failed is not restarted");
    let age = chrono::Utc::now() - mlx.created_at;
    assert!(age.num_seconds().abs() < 60, "no created field: now ({})", mlx.created_at);

    let phi = db.get("phi-3.mini").await.unwrap().unwrap();
    assert_eq!(phi.runtime.desired_state, DesiredState::Running, "restarting was restarted by the Go llamactl");

    // A second start finds nothing to import.
    let again = import_legacy_instances(&db, &instances).await.unwrap();
    assert!(again.is_empty());
    assert_eq!(again.archive, None);
    assert_eq!(db.load_all().await.unwrap().len(), 4);
    assert_eq!(listing(&instances).len(), 1, "no second archive folder");
    db.close().await;
}

/// Good files `a` and `c` around a broken `b`: the import fails naming `b.json`, and nothing
/// changes.
async fn assert_rejected(broken: &str, expected: &[&str], field: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    let good = |name: &str| {
        json!({"name": name, "status": "running", "created": 1_718_000_000,
               "options": {"backend_type": "llama_cpp", "backend_options": {"m": "/models/x.gguf", "c": 4096}}})
    };
    write_json(&instances, "a.json", &good("a"));
    let bad = write(&instances, "b.json", broken);
    write_json(&instances, "c.json", &good("c"));
    let before: Vec<(String, Vec<u8>)> =
        listing(&instances).into_iter().map(|n| (n.clone(), std::fs::read(instances.join(&n)).unwrap())).collect();
    let db = open_db(tmp.path()).await;

    let error = import_legacy_instances(&db, &instances).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(error.path(), bad, "{message}");
    assert!(message.contains(&bad.display().to_string()), "names the file: {message}");
    for part in expected {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(message.ends_with("nothing was imported"), "{message}");
    assert_eq!(error.field(), field, "{message}");

    assert!(db.load_all().await.unwrap().is_empty(), "no database row");
    let after: Vec<(String, Vec<u8>)> =
        listing(&instances).into_iter().map(|n| (n.clone(), std::fs::read(instances.join(&n)).unwrap())).collect();
    assert_eq!(after, before, "files untouched, no archive folder");
    db.close().await;
}

#[tokio::test]
async fn invalid_json_is_rejected_naming_the_file() {
    assert_rejected(r#"{"name": "b", "options": {"backend_type": "#, &["not valid JSON"], None).await;
}

#[tokio::test]
async fn wrong_option_type_is_rejected_naming_the_file_and_field() {
    let file = r#"{"name": "b", "status": "stopped",
                   "options": {"backend_type": "llama_cpp", "backend_options": {"m": "/m.gguf", "ctx_size": "big"}}}"#;
    assert_rejected(file, &["backend_options.ctx_size:"], Some("backend_options.ctx_size")).await;
}

#[tokio::test]
async fn invalid_options_are_rejected_naming_the_field() {
    let file = r#"{"name": "b", "options": {"backend_type": "vllm", "backend_options": {"tp": 2}}}"#;
    assert_rejected(file, &["backend_options.model: required"], Some("backend_options.model")).await;
}

#[tokio::test]
async fn name_mismatch_is_rejected_naming_both_names() {
    let file = r#"{"name": "other", "options": {"backend_type": "llama_cpp", "backend_options": {"m": "/m.gguf"}}}"#;
    assert_rejected(file, &["\"other\"", "\"b\""], None).await;
}

#[tokio::test]
async fn other_bad_files_are_rejected() {
    let options = r#""options": {"backend_type": "llama_cpp", "backend_options": {"m": "/m.gguf"}}"#;
    assert_rejected("", &["not valid JSON"], None).await;
    assert_rejected("[1, 2]", &["expected a JSON object"], None).await;
    assert_rejected(&format!("{{{options}}}"), &["name: missing"], None).await;
    assert_rejected(r#"{"name": "b"}"#, &["options: missing"], None).await;
    assert_rejected(&format!(r#"{{"name": "b", "created": "yesterday", {options}}}"#), &["created:"], None).await;
}

#[tokio::test]
async fn invalid_name_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    let bad = write(&instances, "a b.json", r#"{"name": "a b", "options": {"backend_type": "vllm"}}"#);
    let db = open_db(tmp.path()).await;
    let error = import_legacy_instances(&db, &instances).await.unwrap_err();
    assert_eq!(error.path(), bad);
    assert!(error.to_string().contains("name: character ' '"), "{error}");
    assert!(db.load_all().await.unwrap().is_empty());
    assert!(bad.exists());
}

fn imported(file: &Value, desired_state: DesiredState) -> ImportedInstance {
    ImportedInstance {
        name: file["name"].as_str().unwrap().parse().unwrap(),
        options: file_options(file),
        created_at: file["created"].as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        desired_state,
    }
}

#[tokio::test]
async fn crash_after_the_transaction_only_archives_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    write_json(&instances, "llama.json", &llama_file());
    write_json(&instances, "vllm.json", &vllm_file());
    let db = open_db(tmp.path()).await;
    // The earlier start committed its transaction, then died before moving the files.
    db.import_instances(&[
        imported(&llama_file(), DesiredState::Running),
        imported(&vllm_file(), DesiredState::Stopped),
    ])
    .await
    .unwrap();

    let report = import_legacy_instances(&db, &instances).await.unwrap();
    assert_eq!(report.imported, ["llama", "vllm"]);
    assert!(report.already_in_database);
    let archive = report.archive.unwrap();
    assert_archive_name(&archive, &instances);
    assert_eq!(listing(&archive), ["llama.json", "vllm.json"]);
    assert_eq!(listing(&instances), [archive.file_name().unwrap().to_str().unwrap()]);
    let stored = db.load_all().await.unwrap();
    assert_eq!(stored.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["llama", "vllm"], "no duplicate");

    assert!(import_legacy_instances(&db, &instances).await.unwrap().is_empty());
    db.close().await;
}

#[tokio::test]
async fn crash_while_archiving_archives_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    // `llama.json` was already moved; `vllm.json` was not.
    write_json(&instances, "vllm.json", &vllm_file());
    let db = open_db(tmp.path()).await;
    db.import_instances(&[
        imported(&llama_file(), DesiredState::Running),
        imported(&vllm_file(), DesiredState::Stopped),
    ])
    .await
    .unwrap();

    let report = import_legacy_instances(&db, &instances).await.unwrap();
    assert_eq!(report.imported, ["vllm"]);
    assert!(report.already_in_database);
    assert_eq!(listing(&report.archive.unwrap()), ["vllm.json"]);
    assert_eq!(db.load_all().await.unwrap().len(), 2);
    db.close().await;
}

#[tokio::test]
async fn an_existing_instance_with_other_options_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    write_json(&instances, "llama.json", &llama_file());
    let vllm = write_json(&instances, "vllm.json", &vllm_file());
    let before = listing(&instances);
    let db = open_db(tmp.path()).await;
    let other =
        InstanceOptions::from_json(r#"{"backend_type":"vllm","backend_options":{"model":"someone/else"}}"#).unwrap();
    db.create(&"vllm".parse().unwrap(), &other).await.unwrap();

    let error = import_legacy_instances(&db, &instances).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(&error, ImportError::Conflict { name, .. } if name == "vllm"), "{message}");
    assert_eq!(error.path(), vllm);
    assert!(message.contains("vllm.json") && message.contains("different options"), "{message}");
    assert!(message.ends_with("nothing was imported"), "{message}");

    let stored = db.load_all().await.unwrap();
    assert_eq!(stored.len(), 1, "llama not imported");
    assert_eq!(stored[0].options.as_ref().unwrap(), &other, "existing instance untouched");
    assert_eq!(listing(&instances), before, "files in place, no archive folder");
    db.close().await;
}

#[tokio::test]
async fn only_some_instances_existing_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    write_json(&instances, "llama.json", &llama_file());
    let vllm = write_json(&instances, "vllm.json", &vllm_file());
    let before = listing(&instances);
    let db = open_db(tmp.path()).await;
    // Same options as the file, but `llama` is not in the database: not an interrupted import.
    db.import_instances(&[imported(&vllm_file(), DesiredState::Stopped)]).await.unwrap();

    let error = import_legacy_instances(&db, &instances).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(&error, ImportError::Conflict { name, .. } if name == "vllm"), "{message}");
    assert_eq!(error.path(), vllm);
    assert!(message.contains("llama"), "names the missing one too: {message}");
    assert_eq!(db.load_all().await.unwrap().len(), 1);
    assert_eq!(listing(&instances), before);
    db.close().await;
}

#[tokio::test]
async fn no_folder_or_no_json_file_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = open_db(tmp.path()).await;

    let missing = tmp.path().join("instances");
    let report = import_legacy_instances(&db, &missing).await.unwrap();
    assert!(report.is_empty());
    assert_eq!(report.archive, None);
    assert!(!missing.exists(), "not created");

    write(&missing, "notes.txt", "hello");
    write(&missing, "a.json.bak", "{}");
    write(&missing, ".json", "{}");
    std::fs::create_dir(missing.join("dir.json")).unwrap();
    let before = listing(&missing);
    let report = import_legacy_instances(&db, &missing).await.unwrap();
    assert!(report.is_empty());
    assert_eq!(listing(&missing), before);
    assert!(db.load_all().await.unwrap().is_empty());
    db.close().await;
}

#[tokio::test]
async fn non_json_files_are_ignored_and_left_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    write_json(&instances, "mlx.json", &mlx_file());
    write(&instances, "README.md", "not an instance");
    write(&instances, "mlx.json~", "editor backup");
    let db = open_db(tmp.path()).await;

    let report = import_legacy_instances(&db, &instances).await.unwrap();
    assert_eq!(report.imported, ["mlx"]);
    let archive = report.archive.unwrap();
    let archive_name = archive.file_name().unwrap().to_str().unwrap().to_owned();
    let mut expected = vec!["README.md".to_owned(), archive_name, "mlx.json~".to_owned()];
    expected.sort();
    assert_eq!(listing(&instances), expected);
    assert_eq!(listing(&archive), ["mlx.json"]);
    db.close().await;
}

#[tokio::test]
async fn a_database_failure_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let instances = tmp.path().join("instances");
    write_json(&instances, "mlx.json", &mlx_file());
    let db = open_db(tmp.path()).await;
    db.close().await;

    let error = import_legacy_instances(&db, &instances).await.unwrap_err();
    assert!(matches!(error, ImportError::Database { .. }), "{error}");
    assert!(error.to_string().ends_with("nothing was imported"), "{error}");
    assert_eq!(listing(&instances), ["mlx.json"], "archive folder removed again");
}
