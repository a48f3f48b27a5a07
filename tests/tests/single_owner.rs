//! One database, one server: a second server started on the same data is refused and names
//! the first (pid and address); once the first dies — `kill -9` included — the next one starts
//! and takes over the backends it left.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_tests::server::{SpawnedServer, create_instance, get_json, server_config};
use llamactl_tests::{install_tls_provider, process_alive, test_backend_options};

/// Runs the server binary with `config` written beside it in `file_dir`, expecting it to exit
/// (within 30 s); returns its exit status and what it wrote to stderr.
async fn run_to_exit(file_dir: &std::path::Path, config: &llamactl_server::config::Config) -> (bool, String) {
    let file = file_dir.join("llamactl.yaml");
    std::fs::write(&file, serde_json::to_string_pretty(config).unwrap()).unwrap();
    let run = tokio::process::Command::new(llamactl_tests::server::server_binary())
        .arg("--config")
        .arg(&file)
        .env_remove("LLAMACTL_CONFIG_PATH")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), run).await.expect("it should exit").unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_second_server_on_the_same_data_is_refused_naming_the_first_until_it_dies() {
    install_tls_provider();
    let data = tempfile::tempdir().unwrap();
    let config = server_config(data.path());
    let first = SpawnedServer::start(data.path(), &config);
    let options = serde_json::to_value(test_backend_options(&[])).unwrap();
    create_instance(&first.base, "kept", &options).await;
    let started = first.manage(reqwest::Method::POST, "/api/v1/instances/kept/start").send().await.unwrap();
    assert!(started.status().is_success());
    let pid = loop {
        let info = get_json(&first.base, "/api/v1/instances/kept").await;
        if info["status"] == "running" {
            break info["pid"].as_i64().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // A second server on the same data folder, on a port of its own.
    let elsewhere = tempfile::tempdir().unwrap();
    let (ok, stderr) = run_to_exit(elsewhere.path(), &config).await;
    assert!(!ok, "the second server must not run: {stderr}");
    let first_pid = first.child.id();
    assert!(stderr.contains(&format!("pid {first_pid}")), "names the first by pid: {stderr}");
    assert!(stderr.contains(&first.base), "and by address: {stderr}");
    assert!(stderr.contains("data_dir") && stderr.contains("LLAMACTL_DATA_DIRECTORY"), "says what to do: {stderr}");
    // It touched nothing: the first still serves the same backend.
    let info = get_json(&first.base, "/api/v1/instances/kept").await;
    assert_eq!((info["status"].as_str(), info["pid"].as_i64()), (Some("running"), Some(pid)));

    // The first dies without any cleanup; its lock goes with it (the backend, which outlives
    // it, does not hold it), and the next server starts and takes the backend over.
    first.kill_hard();
    assert!(process_alive(i32::try_from(pid).unwrap()), "the backend outlived its server");
    let next = SpawnedServer::start(elsewhere.path(), &config);
    let info = get_json(&next.base, "/api/v1/instances/kept").await;
    assert_eq!((info["status"].as_str(), info["pid"].as_i64()), (Some("running"), Some(pid)), "{info}");
    assert!(next.terminate(), "clean exit");
}
