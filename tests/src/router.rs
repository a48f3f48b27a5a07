//! llama.cpp router instances for tests: a models folder of tiny GGUF files, the options of a
//! router instance over it, and reading its models through llamactl's API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::server::get_json;

/// A folder with `alpha.gguf`, `beta.gguf` and `gamma.gguf` (copies of the tiny model): the
/// router names its models by file stem.
pub fn models_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["alpha", "beta", "gamma"] {
        std::fs::copy(crate::tiny_gguf(), dir.path().join(format!("{name}.gguf"))).unwrap();
    }
    dir
}

/// A router instance's options: the models of `folder`, at most `models_max` loaded, plus a
/// preset section for `org/tiny:Q8` (aliases `fast` and `quick`, the tiny model again), with
/// `more` laid over the top level.
pub fn router_options(folder: &Path, models_max: u32, more: Value) -> Value {
    let preset = format!("[org/tiny:Q8]\nmodel = {}\nalias = fast,quick\n", crate::tiny_gguf().display());
    let mut options = json!({
        "backend_type": "llama_cpp",
        "backend_options": {"models_dir": folder.display().to_string(), "models_max": models_max},
        "preset_ini": preset,
        "on_demand_start": true,
    });
    if let (Some(options), Some(more)) = (options.as_object_mut(), more.as_object()) {
        options.extend(more.clone());
    }
    options
}

/// `GET /api/v1/instances/{instance}/models`.
pub async fn sub_models(base: &str, instance: &str) -> Value {
    get_json(base, &format!("/api/v1/instances/{instance}/models")).await
}

/// One model of `instance` as llamactl's API shows it (`Null` when not listed).
pub async fn sub_model(base: &str, instance: &str, id: &str) -> Value {
    let list = sub_models(base, instance).await;
    list["items"].as_array().and_then(|items| items.iter().find(|m| m["id"] == id).cloned()).unwrap_or(Value::Null)
}

/// Waits until `instance`'s model `id` satisfies `condition`; panics with its last view after
/// `timeout`.
pub async fn wait_sub_model(
    base: &str,
    instance: &str,
    id: &str,
    timeout: Duration,
    condition: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let model = sub_model(base, instance, id).await;
        if condition(&model) {
            return model;
        }
        assert!(
            Instant::now() < deadline,
            "{instance}/{id} did not reach the expected state within {timeout:?}: {model}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pid of the router's child process serving the model file `file`.
pub fn child_pid(file: &Path) -> Option<i32> {
    let wanted = file.display().to_string();
    procfs::process::all_processes().ok()?.filter_map(Result::ok).find_map(|process| {
        let cmdline = process.cmdline().ok()?;
        (cmdline.iter().any(|a| a == &wanted) && cmdline.iter().any(|a| a == "--alias")).then_some(process.pid)
    })
}

/// The model file of `name` in `folder`.
pub fn model_file(folder: &Path, name: &str) -> PathBuf {
    folder.join(format!("{name}.gguf"))
}
