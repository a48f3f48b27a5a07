//! The Docker runtime against the real engine of this machine: containers built locally from
//! the test backend and from the real llama-server (no image can be pulled here), driven by the
//! manager exactly like local processes — readiness, environment, logs, stop with nothing left,
//! crash and restart, out-of-memory kills, idle stop, two instances side by side, a manager
//! killed and rebuilt, a remote engine over TCP, and the errors people meet.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use llamactl_core::db::EventQuery;
use llamactl_core::{InstanceOptions, InstanceStatus, ManagerError, TransitionReason};
use llamactl_tests::docker_images::{
    RemoveContainersOnDrop, containers_of, docker, llama_server_image, remove_containers_of, test_backend_image,
};
use llamactl_tests::{
    TestManager, assert_chat_completion, chat, eventually, open_manager, options, port_open, tiny_gguf, wait_state,
    wait_status,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

const IN_IMAGE: &str = "/usr/local/bin/llamactl-test-backend";

/// A test-backend instance that runs in a container of `image`.
fn in_container(image: &str, args: &[&str], extra: serde_json::Value) -> InstanceOptions {
    let mut all = vec!["--host", "{host}", "--port", "{port}"];
    all.extend_from_slice(args);
    let mut value = json!({
        "backend_type": "custom",
        "backend_options": {"command": IN_IMAGE, "args": all},
        "environment": {"RUST_BACKTRACE": "0"},
        "docker_enabled": true,
        "docker": {"image": image},
    });
    if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        for (key, v) in extra {
            match (target.get_mut(key), v) {
                (Some(serde_json::Value::Object(existing)), serde_json::Value::Object(more)) => {
                    existing.extend(more.clone());
                }
                _ => {
                    target.insert(key.clone(), v.clone());
                }
            }
        }
    }
    options(value)
}

/// The containers of a manager as (name, state).
async fn containers(manager_id: &str) -> Vec<(String, String)> {
    containers_of(&docker().await, manager_id).await.into_iter().map(|(name, state, _)| (name, state)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_is_supervised_like_a_process() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    let id = manager.docker().manager_id().to_owned();
    let options = in_container(
        &image,
        &["--print-env", "GREETING", "--ready-after-ms", "300"],
        json!({"environment": {"GREETING": "hello from the instance"}}),
    );
    manager.create("c1".parse().unwrap(), options).await.unwrap();

    let lease = manager.ensure_ready("c1", Duration::from_secs(60)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    let info = manager.get("c1").unwrap();
    let runtime = &info.state.runtime;
    assert_eq!(runtime.status, InstanceStatus::Running);
    assert!(runtime.container_id.is_some(), "the container is recorded");
    assert_eq!(runtime.pid, None, "no host pid is recorded for a container");
    let port = runtime.port.unwrap();

    // One container, named and labelled as documented.
    let found = containers_of(&docker().await, &id).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let (name, state, labels) = &found[0];
    assert_eq!(name, &manager.docker().container_name_of(&"c1".parse().unwrap()));
    assert_eq!(state, "running");
    assert_eq!(labels.get("io.llamactl.instance").map(String::as_str), Some("c1"));
    assert_eq!(labels.get("io.llamactl.options-hash").map(String::len), Some(16));

    // The instance's environment reached the container; its output reached the log; the
    // backend listens on every address of the container, published on 127.0.0.1 only.
    let logs = manager.logs("c1").unwrap();
    assert!(
        eventually(Duration::from_secs(10), || logs
            .tail(50)
            .iter()
            .any(|l| l.text == "env GREETING=hello from the instance"))
        .await,
        "{:?}",
        logs.tail(50)
    );
    assert!(logs.tail(50).iter().any(|l| l.text == format!("listening on 0.0.0.0:{port}")));
    let file = std::fs::read_to_string(logs.file_path().unwrap()).unwrap();
    assert!(file.contains("env GREETING=hello from the instance"), "the log file has it too");

    manager.stop("c1").await.unwrap();
    assert_eq!(manager.get("c1").unwrap().state.runtime.container_id, None);
    assert!(containers(&id).await.is_empty(), "no container is left behind");
    assert!(!port_open(port));
    let events = manager.events("c1", EventQuery::default()).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.reason.kind()).collect();
    assert_eq!(kinds, ["on_demand", "ready", "user_stop", "user_stop"]);
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_run_side_by_side_on_their_own_ports() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    for name in ["left", "right"] {
        manager.create(name.parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
        manager.start(name).await.unwrap();
    }
    let left = wait_status(manager, "left", InstanceStatus::Running, Duration::from_secs(60)).await;
    let right = wait_status(manager, "right", InstanceStatus::Running, Duration::from_secs(60)).await;
    assert_ne!(left.runtime.port, right.runtime.port);
    for state in [&left, &right] {
        let (status, body) = chat(&state.listen.as_ref().unwrap().base_url(), None).await;
        assert_chat_completion(status, &body);
    }
    assert_eq!(containers(manager.docker().manager_id()).await.len(), 2);
    manager.shutdown().await;
    assert!(containers(manager.docker().manager_id()).await.is_empty(), "shutdown removes every container");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_container_is_restarted_with_its_exit_code_recorded() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    let options = in_container(
        &image,
        &["--exit-after-ms", "1500", "--exit-code", "3"],
        json!({"auto_restart": true, "max_restarts": 5, "restart_delay": "200ms"}),
    );
    manager.create("crashy".parse().unwrap(), options).await.unwrap();
    manager.start("crashy").await.unwrap();
    let first = wait_status(manager, "crashy", InstanceStatus::Running, Duration::from_secs(60)).await;
    // It exits with code 3, is restarted in a new container, and is running again.
    let again = wait_state(manager, "crashy", Duration::from_secs(60), |s| {
        s.runtime.status == InstanceStatus::Running && s.runtime.restart_count >= 1
    })
    .await;
    assert_ne!(first.runtime.container_id, again.runtime.container_id);
    let events = manager.events("crashy", EventQuery::default()).await.unwrap();
    let crash = events.iter().find(|e| e.reason.kind() == "crashed").unwrap();
    assert_eq!(
        crash.reason,
        TransitionReason::Crashed { exit: llamactl_core::ExitInfo { code: Some(3), signal: None } }
    );
    assert_eq!(containers(manager.docker().manager_id()).await.len(), 1, "the crashed container was removed");
    manager.shutdown().await;
    assert!(containers(manager.docker().manager_id()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_killed_for_memory_says_so() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    let options = in_container(
        &image,
        &["--allocate-mb-after-ready", "512"],
        json!({"auto_restart": false, "docker": {"memory": "64m"}}),
    );
    manager.create("hungry".parse().unwrap(), options).await.unwrap();
    manager.start("hungry").await.unwrap();
    let failed = wait_status(manager, "hungry", InstanceStatus::Failed, Duration::from_secs(60)).await;
    match failed.runtime.last_reason {
        Some(TransitionReason::OutOfMemory { exit }) => assert_eq!(exit.code, Some(137)),
        other => panic!("expected out_of_memory, got {other:?}: {:?}", failed.runtime.last_error),
    }
    assert!(failed.runtime.last_error.unwrap().starts_with("killed for lack of memory"));
    assert!(containers(manager.docker().manager_id()).await.is_empty());
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_container_is_stopped_and_removed() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    manager.create("sleepy".parse().unwrap(), in_container(&image, &[], json!({"idle_timeout": "1s"}))).await.unwrap();
    drop(manager.ensure_ready("sleepy", Duration::from_secs(60)).await.unwrap());
    let stopped = wait_status(manager, "sleepy", InstanceStatus::Stopped, Duration::from_secs(30)).await;
    assert_eq!(stopped.runtime.last_reason, Some(TransitionReason::IdleTimeout));
    assert!(containers(manager.docker().manager_id()).await.is_empty());
    // On demand it comes back.
    drop(manager.ensure_ready("sleepy", Duration::from_secs(60)).await.unwrap());
    manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_runs_in_a_container_with_its_model_mounted() {
    let image = llama_server_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    let options = options(json!({
        "backend_type": "llama_cpp",
        "backend_options": {"model": "/models/tiny.gguf", "ctx_size": 256, "gpu_layers": 0, "threads": 2, "no_webui": true},
        "docker_enabled": true,
        "docker": {"image": image, "volumes": [format!("{}:/models/tiny.gguf:ro", tiny_gguf().display())]},
    }));
    manager.create("tiny".parse().unwrap(), options).await.unwrap();
    let lease = manager.ensure_ready("tiny", Duration::from_secs(120)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    let logs = manager.logs("tiny").unwrap();
    assert!(logs.tail(500).iter().any(|l| l.text.contains("model loaded")), "llama-server's own log is followed");
    manager.shutdown().await;
    assert!(containers(manager.docker().manager_id()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_manager_s_containers_are_taken_over_and_never_duplicated() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let id = test.manager.docker().manager_id().to_owned();
    let kept = in_container(&image, &["--print-env", "MARK"], json!({"environment": {"MARK": "1"}}));
    test.manager.create("kept".parse().unwrap(), kept.clone()).await.unwrap();
    test.manager.create("changed".parse().unwrap(), kept).await.unwrap();
    test.shutdown().await;

    // A manager in its own process starts the containers, then dies without any cleanup.
    let ports = format!("{}-{}", test.config.port_range.start(), test.config.port_range.end());
    let mut child = tokio::process::Command::new(llamactl_tests::test_manager_host())
        .args(["--db", test.db_path().to_str().unwrap(), "--ports", &ports, "--start", "kept", "--start", "changed"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
    let ids: serde_json::Value = serde_json::from_str(ready.strip_prefix("ready ").unwrap()).unwrap();
    child.kill().await.unwrap();
    let orphaned = containers_of(&docker().await, &id).await;
    assert_eq!(orphaned.len(), 2);
    assert!(orphaned.iter().all(|(_, state, _)| state == "running"), "the containers outlived their manager");
    // One instance's options change while no manager runs.
    let db = llamactl_core::SqliteDatabase::open(test.db_path()).await.unwrap();
    let mut changed = in_container(&image, &["--print-env", "MARK"], json!({"environment": {"MARK": "2"}}));
    changed.idle_timeout = Some(Duration::from_secs(600));
    llamactl_core::Database::save(&db, &"changed".parse().unwrap(), &changed).await.unwrap();
    llamactl_core::Database::close(&db).await;

    // The next manager takes over the one that is what it should be, replaces the other: one
    // container each, never two.
    let manager = open_manager(test.dir.path(), test.config.clone()).await;
    let kept = manager.get("kept").unwrap().state;
    assert_eq!(kept.runtime.status, InstanceStatus::Running);
    assert_eq!(kept.runtime.container_id.as_deref(), ids["kept"].as_str(), "the same container");
    assert_eq!(kept.runtime.last_reason, Some(TransitionReason::Adopted));
    let lease = manager.ensure_ready("kept", Duration::from_secs(5)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    let replaced = wait_status(&manager, "changed", InstanceStatus::Running, Duration::from_secs(60)).await;
    assert_ne!(replaced.runtime.container_id.as_deref(), ids["changed"].as_str());
    let events = manager.events("changed", EventQuery::default()).await.unwrap();
    let refused = events.iter().find(|e| e.reason.kind() == "adoption_refused").unwrap();
    assert!(refused.reason.to_string().contains("options changed"), "{}", refused.reason);
    let now = containers_of(&docker().await, &id).await;
    assert_eq!(now.len(), 2, "not duplicated: {now:?}");
    let logs = manager.logs("changed").unwrap();
    assert!(eventually(Duration::from_secs(10), || logs.tail(100).iter().any(|l| l.text == "env MARK=2")).await);

    // An adopted container killed behind the manager's back is noticed and replaced.
    let engine = docker().await;
    let kill = bollard::query_parameters::KillContainerOptionsBuilder::default().signal("SIGKILL").build();
    engine.kill_container(ids["kept"].as_str().unwrap(), Some(kill)).await.unwrap();
    let again = wait_state(&manager, "kept", Duration::from_secs(60), |s| {
        s.runtime.status == InstanceStatus::Running && s.runtime.container_id.as_deref() != ids["kept"].as_str()
    })
    .await;
    assert_eq!(again.runtime.restart_count, 1);
    manager.shutdown().await;
    assert!(containers(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_errors_people_meet_are_clear() {
    let image = test_backend_image(&docker().await).await;

    // No engine at the configured address.
    let test = TestManager::new(|c| c.docker.host = Some("unix:///nonexistent/docker.sock".into())).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    test.manager.create("nowhere".parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
    let error = test.manager.start("nowhere").await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("Docker engine at unix:///nonexistent/docker.sock is unreachable"), "{text}");
    let state = test.manager.get("nowhere").unwrap().state;
    assert_eq!(state.runtime.status, InstanceStatus::Failed);
    assert!(matches!(state.runtime.last_reason, Some(TransitionReason::SpawnFailed { .. })));
    test.manager.shutdown().await;

    // An image the engine does not have: named, with how to get it.
    let test = TestManager::new(|_| {}).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    manager
        .create("missing".parse().unwrap(), in_container("llamactl-test/no-such-image:0", &[], json!({})))
        .await
        .unwrap();
    let text = manager.start("missing").await.unwrap_err().to_string();
    assert!(text.contains("image llamactl-test/no-such-image:0 is not on the Docker engine"), "{text}");
    assert!(text.contains("docker pull llamactl-test/no-such-image:0"), "{text}");

    // A pinned port that something else holds.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut pinned = in_container(&image, &[], json!({}));
    if let llamactl_core::BackendOptions::Custom(custom) = &mut pinned.backend {
        custom.port = Some(port);
    }
    manager.create("pinned".parse().unwrap(), pinned).await.unwrap();
    let error = manager.start("pinned").await.unwrap_err();
    assert!(matches!(error, ManagerError::Port(_) | ManagerError::StartFailed { .. }), "{error}");
    let state = manager.get("pinned").unwrap().state;
    assert_eq!(state.runtime.last_reason, Some(TransitionReason::PortUnavailable { port }));

    // A container name held by a container that is not ours is left alone.
    let engine = docker().await;
    let foreign = manager.docker().container_name_of(&"foreign".parse().unwrap());
    let body = bollard::models::ContainerCreateBody { image: Some(image.clone()), ..Default::default() };
    let create = bollard::query_parameters::CreateContainerOptionsBuilder::default().name(&foreign).build();
    engine.create_container(Some(create), body).await.unwrap();
    manager.create("foreign".parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
    let text = manager.start("foreign").await.unwrap_err().to_string();
    assert!(text.contains(&format!("a container named {foreign} exists and was not made by this llamactl")), "{text}");
    assert!(engine.inspect_container(&foreign, None).await.is_ok(), "the foreign container is untouched");
    let remove = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
    engine.remove_container(&foreign, Some(remove)).await.unwrap();

    assert!(containers(manager.docker().manager_id()).await.is_empty());
    manager.shutdown().await;
}

/// Forwards TCP connections to the local engine's socket: a "remote" engine at tcp://.
async fn tcp_to_docker_socket() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::UnixStream::connect("/var/run/docker.sock").await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_over_tcp_works_the_same_way() {
    let image = test_backend_image(&docker().await).await;
    let port = tcp_to_docker_socket().await;
    let test = TestManager::new(|c| c.docker.host = Some(format!("tcp://127.0.0.1:{port}"))).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    assert_eq!(manager.docker().address(), format!("tcp://127.0.0.1:{port}"));
    manager
        .create("remote".parse().unwrap(), in_container(&image, &["--print-env", "HOSTNAME"], json!({})))
        .await
        .unwrap();
    let lease = manager.ensure_ready("remote", Duration::from_secs(60)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    manager.shutdown().await;
    remove_containers_of(&docker().await, manager.docker().manager_id()).await;
    assert!(containers(manager.docker().manager_id()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_api_runs_containers_and_deleting_removes_them() {
    use llamactl_tests::server::{TestServer, create_instance};
    let image = test_backend_image(&docker().await).await;
    let server = TestServer::start(|_| {}).await;
    let _cleanup = RemoveContainersOnDrop(manager_id_of(&server).await);
    let body = json!({
        "backend_type": "custom",
        "backend_options": {"command": IN_IMAGE, "args": ["--host", "{host}", "--port", "{port}"]},
        "docker_enabled": true,
        "docker": {"image": image, "shm_size": "64m"},
    });
    let created = create_instance(&server.base, "api", &body).await;
    assert_eq!(created["options"]["docker"], json!({"image": image, "shm_size": 67_108_864}));
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/api/start").send().await.unwrap();
    assert_eq!(started.status().as_u16(), 200);
    // Through the OpenAI-compatible endpoint, as clients use it.
    let answer = server
        .manage(reqwest::Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "api", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let listed = containers_of(&docker().await, &manager_id_of(&server).await).await;
    assert_eq!(listed.len(), 1);

    // Bad Docker options are refused naming the field, and nothing is created.
    let mut bad = body.clone();
    bad["docker"]["volumes"] = json!(["relative/path:/models"]);
    let refused = server.manage(reqwest::Method::POST, "/api/v1/instances/bad").json(&bad).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("docker.volumes[0]"), "{text}");

    let deleted = server.manage(reqwest::Method::DELETE, "/api/v1/instances/api").send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert!(containers_of(&docker().await, &manager_id_of(&server).await).await.is_empty());
}

/// The manager id of a server's database.
async fn manager_id_of(server: &llamactl_tests::server::TestServer) -> String {
    let db = llamactl_core::SqliteDatabase::open_shared(server.dir.path().join("llamactl.db")).await.unwrap();
    use llamactl_core::Database;
    db.manager_id().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let image = test_backend_image(&docker().await).await;
    let test = TestManager::new(|c| c.stop_grace = Duration::from_secs(1)).await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    manager.create("stubborn".parse().unwrap(), in_container(&image, &["--ignore-sigterm"], json!({}))).await.unwrap();
    manager.start("stubborn").await.unwrap();
    wait_status(manager, "stubborn", InstanceStatus::Running, Duration::from_secs(60)).await;
    let began = std::time::Instant::now();
    manager.stop("stubborn").await.unwrap();
    let took = began.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(15), "{took:?}");
    let logs = manager.logs("stubborn").unwrap();
    let lines: Vec<String> = logs.tail(50).iter().map(|l| l.text.clone()).collect();
    assert!(lines.iter().any(|l| l == "SIGTERM received and ignored"), "SIGTERM reached the backend: {lines:?}");
    assert!(lines.iter().any(|l| l.contains("killed")), "{lines:?}");
    assert_eq!(manager.get("stubborn").unwrap().state.runtime.last_exit.code, Some(137));
    assert!(containers(manager.docker().manager_id()).await.is_empty());
    manager.shutdown().await;
}

/// Certificates for a TLS engine: a private CA, the engine's certificate for 127.0.0.1 and a
/// client certificate, as `ca.pem`, `server-cert.pem`, `server-key.pem`, `cert.pem`, `key.pem`.
fn tls_material(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = ["-days", "2", "-subj", "/CN=engine CA", "-keyout", "ca-key.pem", "-out", "ca.pem"];
    openssl(&[&["req", "-x509"][..], &ec, &ca].concat());
    for (who, subject, extensions) in [
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "/CN=llamactl", "extendedKeyUsage=clientAuth\n"),
    ] {
        let (key, cert) = if who == "server" { ("server-key.pem", "server-cert.pem") } else { ("key.pem", "cert.pem") };
        openssl(&[&["req"][..], &ec, &["-subj", subject, "-keyout", key, "-out", "request.csr"]].concat());
        std::fs::write(dir.join("extensions.cnf"), format!("basicConstraints=CA:FALSE\n{extensions}")).unwrap();
        let sign = format!(
            "x509 -req -in request.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile extensions.cnf -out {cert}"
        );
        openssl(&sign.split(' ').collect::<Vec<_>>());
    }
}

/// A TLS endpoint in front of the local engine's socket: a "remote" engine at tcp:// with TLS,
/// as `dockerd --tlsverify` would be.
async fn tls_to_docker_socket(dir: &std::path::Path) -> u16 {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let certs = CertificateDer::pem_file_iter(dir.join("server-cert.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let config =
        tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(inbound).await else { return };
                if let Ok(mut outbound) = tokio::net::UnixStream::connect("/var/run/docker.sock").await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_over_tcp_with_tls_is_verified_and_works() {
    let image = test_backend_image(&docker().await).await;
    let certs = tempfile::tempdir().unwrap();
    tls_material(certs.path());
    let port = tls_to_docker_socket(certs.path()).await;
    let host = format!("tcp://127.0.0.1:{port}");
    let test = TestManager::new(|c| {
        c.docker.host = Some(host.clone());
        c.docker.tls_verify = true;
        c.docker.cert_path = Some(certs.path().to_path_buf());
    })
    .await;
    let _cleanup_test = RemoveContainersOnDrop(test.manager.docker().manager_id().to_owned());
    let manager = &test.manager;
    manager.create("secure".parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
    let lease = manager.ensure_ready("secure", Duration::from_secs(60)).await.unwrap();
    let (status, body) = chat(&lease.base_url(), None).await;
    assert_chat_completion(status, &body);
    drop(lease);
    manager.shutdown().await;
    assert!(containers(manager.docker().manager_id()).await.is_empty());

    // Without TLS the same endpoint is not an engine; with another CA it is not trusted.
    let plain = TestManager::new(|c| c.docker.host = Some(host.clone())).await;
    let _cleanup_plain = RemoveContainersOnDrop(plain.manager.docker().manager_id().to_owned());
    plain.manager.create("plain".parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
    let text = plain.manager.start("plain").await.unwrap_err().to_string();
    assert!(text.contains(&format!("Docker engine at {host} is unreachable")), "{text}");
    plain.manager.shutdown().await;
    let other = tempfile::tempdir().unwrap();
    tls_material(other.path());
    std::fs::copy(certs.path().join("cert.pem"), other.path().join("cert.pem")).unwrap();
    std::fs::copy(certs.path().join("key.pem"), other.path().join("key.pem")).unwrap();
    let untrusted = TestManager::new(|c| {
        c.docker.host = Some(host.clone());
        c.docker.tls_verify = true;
        c.docker.cert_path = Some(other.path().to_path_buf());
    })
    .await;
    let _cleanup_untrusted = RemoveContainersOnDrop(untrusted.manager.docker().manager_id().to_owned());
    untrusted.manager.create("untrusted".parse().unwrap(), in_container(&image, &[], json!({}))).await.unwrap();
    let text = untrusted.manager.start("untrusted").await.unwrap_err().to_string();
    assert!(text.contains("is unreachable") && text.contains("certificate"), "{text}");
    untrusted.manager.shutdown().await;
}
