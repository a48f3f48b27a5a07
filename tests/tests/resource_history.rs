//! The resource history of the real server binary: with a one-second interval, the host and a
//! running instance of the test backend are sampled, the samples are served as series by
//! `GET /api/v1/system/metrics`, and `GET /api/v1/system/info` describes the host.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use llamactl_api::Client;
use llamactl_api::resources::MetricsWindow;
use llamactl_tests::server::{MANAGEMENT_KEY, SpawnedServer, create_instance, server_config};
use llamactl_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_instance_and_the_host_are_sampled_and_served_as_series() {
    install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server_config(dir.path());
    config.resource_history.interval_seconds = 1;
    let server = SpawnedServer::start(dir.path(), &config);
    let client = Client::new(&server.base, Some(MANAGEMENT_KEY.into())).unwrap();
    let options = serde_json::json!({
        "backend_type": "custom",
        "backend_options": {"command": test_backend(), "args": ["--host", "{host}", "--port", "{port}"]},
    });
    create_instance(&server.base, "sampled", &options).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/sampled/start").send().await.unwrap();
    assert!(started.status().is_success(), "{}", started.text().await.unwrap());

    // Two samples of the instance: the second has a CPU percentage (from the first's counters).
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let metrics = client.system_metrics(MetricsWindow::Minutes15).await.unwrap().value;
        if metrics.instances.get("sampled").is_some_and(|points| points.len() >= 2) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no two samples of the instance in 30 s: {metrics:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((metrics.window, metrics.interval_seconds, metrics.step_seconds), (MetricsWindow::Minutes15, 1, 2));
    assert!(metrics.enabled);
    assert!(!metrics.host.is_empty());
    let host = metrics.host.last().unwrap();
    assert!(host.memory_total_bytes.unwrap() > 0 && host.memory_used_bytes.unwrap() > 0, "{host:?}");
    assert!(host.load1.is_some() && host.cpu_percent.is_some(), "{host:?}");
    let points = &metrics.instances["sampled"];
    assert!(points.iter().all(|p| p.rss_bytes.unwrap() > 0), "{points:?}");
    assert!(points.last().unwrap().cpu_percent.is_some(), "{points:?}");
    let latest = metrics.latest.as_ref().unwrap();
    assert!(latest.instances["sampled"].rss_bytes.unwrap() > 0, "the latest tick: {latest:?}");
    assert!(latest.host.is_some());

    // A window other than 15m, 1h and 24h is refused, naming the parameter.
    let wrong = server.manage(reqwest::Method::GET, "/api/v1/system/metrics?window=2h").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 400);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_query");
    assert!(body["details"].as_str().unwrap().starts_with("window:"), "{body}");
    let anonymous = http().get(format!("{}/api/v1/system/metrics", server.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "management routes need the management key");

    let day = client.system_metrics(MetricsWindow::Hours24).await.unwrap().value;
    assert_eq!(day.step_seconds, 120);
    assert!(day.instances["sampled"].len() <= 2, "averaged into two-minute steps: {:?}", day.instances);

    let info = client.system_info().await.unwrap().value;
    assert!(info.cpu_cores > 0 && info.memory_total_bytes > 0, "{info:?}");
    assert!(info.kernel.is_some() && !info.architecture.is_empty(), "{info:?}");

    // A stopped instance is no longer sampled.
    server.manage(reqwest::Method::POST, "/api/v1/instances/sampled/stop").send().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metrics = client.system_metrics(MetricsWindow::Minutes15).await.unwrap().value;
        let latest = metrics.latest.unwrap();
        if !latest.instances.contains_key("sampled") {
            break;
        }
        assert!(Instant::now() < deadline, "still sampled after its stop: {latest:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.terminate());
}

/// A container's stats come from the engine: its memory in use, and a CPU percentage from two
/// of its one-shot readings; the host's description names the engine's version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_instance_is_sampled_through_the_engine() {
    use llamactl_core::Database;
    use llamactl_tests::docker_images::{RemoveContainersOnDrop, docker, test_backend_image};
    use llamactl_tests::server::TestServer;
    let image = test_backend_image(&docker().await).await;
    let server = TestServer::start(|config| config.resource_history.interval_seconds = 1).await;
    let db = llamactl_core::SqliteDatabase::open_shared(server.dir.path().join("llamactl.db")).await.unwrap();
    let _cleanup = RemoveContainersOnDrop(db.manager_id().await.unwrap());
    let body = serde_json::json!({
        "backend_type": "custom",
        "backend_options": {"command": "/usr/local/bin/llamactl-test-backend", "args": ["--host", "{host}", "--port", "{port}"]},
        "docker_enabled": true,
        "docker": {"image": image},
    });
    create_instance(&server.base, "boxed", &body).await;
    let started = server.manage(reqwest::Method::POST, "/api/v1/instances/boxed/start").send().await.unwrap();
    assert_eq!(started.status().as_u16(), 200);
    let client = Client::new(&server.base, Some(MANAGEMENT_KEY.into())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let latest = loop {
        let metrics = client.system_metrics(MetricsWindow::Hour1).await.unwrap().value;
        let latest = metrics.latest.and_then(|l| l.instances.get("boxed").cloned());
        if latest.as_ref().is_some_and(|p| p.cpu_percent.is_some()) {
            break latest.unwrap();
        }
        assert!(Instant::now() < deadline, "no second reading of the container in 30 s: {latest:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(latest.rss_bytes.unwrap() > 0, "{latest:?}");
    assert!(latest.cpu_percent.unwrap() >= 0.0);
    let info = client.system_info().await.unwrap().value;
    assert!(info.docker_version.as_deref().is_some_and(|v| !v.is_empty()), "{info:?}");
    server.manage(reqwest::Method::DELETE, "/api/v1/instances/boxed").send().await.unwrap();
    server.stop().await;
}
