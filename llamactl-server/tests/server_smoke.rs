//! The real server binary on a fresh data folder: it starts, answers, and stops cleanly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test]
async fn starts_on_defaults_serves_and_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Port 0: the server takes a free port and says which.
    let mut server = Command::new(env!("CARGO_BIN_EXE_llamactl-server"))
        .env("LLAMACTL_DATA_DIRECTORY", dir.path())
        .env("LLAMACTL_PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let base =
        first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).unwrap_or_else(|| panic!("{first}"));
    let base = base.to_owned();
    let client = reqwest::Client::new();
    let health: serde_json::Value = client.get(format!("{base}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let list: serde_json::Value =
        client.get(format!("{base}/api/v1/instances")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
    let missing = client.get(format!("{base}/api/v1/instances/nope")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    assert!(dir.path().join("llamactl.db").exists(), "SQLite file in the data folder");
    kill(Pid::from_raw(i32::try_from(server.id()).unwrap()), Signal::SIGTERM).unwrap();
    let status = server.wait().unwrap();
    drop(stdout);
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
