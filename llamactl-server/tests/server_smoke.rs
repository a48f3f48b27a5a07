//! The real server binary on a fresh data folder: it starts on its defaults, prints where
//! things are, protects the management API, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills the server if the test fails before stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Server, String, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llamactl-server"));
    command
        .current_dir(dir)
        .env("LLAMACTL_DATA_DIRECTORY", dir)
        .env("LLAMACTL_PORT", "0")
        .env_remove("LLAMACTL_MANAGEMENT_KEYS")
        .env_remove("LLAMACTL_CONFIG_PATH")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let done = line.contains("API docs:");
        banner.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });
    let base = banner
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")))
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_owned();
    (Server(child), base, banner)
}

#[tokio::test]
async fn starts_on_defaults_serves_and_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base, banner) = start(dir.path(), &[]);
    let key_line = banner.iter().find(|l| l.contains("management key:")).unwrap_or_else(|| panic!("{banner:?}"));
    let key = key_line.split_whitespace().last().unwrap().to_owned();
    assert_eq!(std::fs::read_to_string(dir.path().join("management.key")).unwrap().trim(), key, "the key is kept");
    assert!(banner.iter().any(|l| l.contains(&dir.path().join("llamactl.db").display().to_string())), "{banner:?}");

    llamactl_api::install_tls_provider();
    let client = reqwest::Client::new();
    let health: serde_json::Value = client.get(format!("{base}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert!(banner.iter().any(|l| l.trim() == format!("dashboard: {base}/")), "{banner:?}");
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html", "the dashboard at /");
    let anonymous = client.get(format!("{base}/api/v1/instances")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let list: serde_json::Value =
        client.get(format!("{base}/api/v1/instances")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, serde_json::json!([]));
    let missing = client.get(format!("{base}/api/v1/instances/nope")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    kill(Pid::from_raw(i32::try_from(server.0.id()).unwrap()), Signal::SIGTERM).unwrap();
    let status = server.0.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    // The same key is used on the next start.
    let (_again, _, banner) = start(dir.path(), &[]);
    assert!(banner.iter().any(|l| l.ends_with(&key)), "{banner:?}");
}

#[test]
fn a_bad_configuration_stops_the_start_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("llamactl.yaml"), "server:\n  port: 0\ninstances:\n  max_runing_instances: 3\n")
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_llamactl-server"))
        .current_dir(dir.path())
        .env("LLAMACTL_DATA_DIRECTORY", dir.path())
        .env_remove("LLAMACTL_CONFIG_PATH")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_runing_instances"), "{stderr}");
    assert!(stderr.contains("llamactl.yaml"), "{stderr}");
}

#[test]
fn prints_its_openapi_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_llamactl-server")).arg("openapi").output().unwrap();
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
}
