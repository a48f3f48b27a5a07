//! The actor's own rules that need a manager but no HTTP backend.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::manager::{Manager, ManagerConfig};
use crate::{Database, InstanceOptions, InstanceStatus, SqliteDatabase};

/// A failed transition write is logged and published anyway (ARCHITECTURE.md, invariant 5):
/// the published status keeps saying what the backend does.
#[tokio::test]
async fn a_transition_whose_write_fails_is_published_anyway() {
    let db = Arc::new(SqliteDatabase::open_in_memory().await.unwrap());
    let config = ManagerConfig {
        stop_grace: Duration::from_secs(2),
        kill_timeout: Duration::from_secs(2),
        port_range: 32_000..=32_099,
        ..ManagerConfig::default()
    };
    let manager = Manager::open(config, db.clone()).await.unwrap();
    // Never answers its readiness endpoint: it stays `starting` until stopped.
    let script =
        json!({"backend_type": "custom", "backend_options": {"command": "/bin/sh", "args": ["-c", "sleep 30"]}});
    manager.create("a".parse().unwrap(), InstanceOptions::from_json_value(&script).unwrap()).await.unwrap();
    db.close().await;
    assert!(db.load_all().await.is_err(), "every later read and write fails");

    let started = manager.start("a").await.unwrap();
    assert_eq!(started.state.runtime.status, InstanceStatus::Starting);
    assert!(started.state.runtime.pid.is_some(), "the run is published with its process");
    let stopped = manager.stop("a").await.unwrap();
    assert_eq!(stopped.state.runtime.status, InstanceStatus::Stopped);
    assert!(stopped.state.runtime.pid.is_none());
    manager.shutdown().await;
}
