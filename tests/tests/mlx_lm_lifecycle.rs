//! The whole life of a real mlx_lm.server instance.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_core::InstanceStatus;
use llamactl_tests::*;
use serde_json::json;

#[tokio::test]
async fn mlx_lm_server_lifecycle() {
    let t = TestManager::new(|config| {
        config.backends.mlx_lm.command = Some(mlx_server().display().to_string());
    })
    .await;
    let m = &t.manager;
    let hf_cache = t.dir.path().join("hf-cache");
    std::fs::create_dir_all(&hf_cache).unwrap();
    let model = tiny_hf_model();
    let options = options(json!({
        "backend_type": "mlx_lm",
        "backend_options": {"model": model, "max_tokens": 8},
        "environment": {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": hf_cache}
    }));
    m.create("mlx".parse().unwrap(), options).await.unwrap();

    let lease = m.ensure_ready("mlx", Duration::from_secs(120)).await.unwrap();
    let pid = m.get("mlx").unwrap().state.runtime.pid.unwrap();
    // mlx_lm.server needs the exact --model path as the request's model.
    assert_eq!(lease.request_model(), Some(model.to_str().unwrap()));
    let (status, body) = chat(&lease.base_url(), lease.request_model()).await;
    assert_chat_completion(status, &body);
    let (status, stream) = chat_stream(&lease.base_url(), lease.request_model()).await;
    assert_chat_stream(status, &stream);
    let port = lease.listen().port;
    drop(lease);

    let stopped = m.stop("mlx").await.unwrap();
    assert_eq!(stopped.status(), InstanceStatus::Stopped);
    assert!(!llamactl_core::process::group_alive(pid), "mlx_lm.server and its children are gone");
    assert!(!port_open(port));
}
