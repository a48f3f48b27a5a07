//! The whole life of a real `vllm serve` instance. Heavy (several GB, about 4 GB of RAM and
//! tens of seconds to start), so it runs only when asked: provision with
//! `LLAMACTL_TEST_VLLM=1 scripts/test.sh`, which also runs this ignored test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llamactl_core::InstanceStatus;
use llamactl_tests::*;
use serde_json::json;

#[tokio::test]
#[ignore = "opt-in: set LLAMACTL_TEST_VLLM=1 (heavy)"]
async fn vllm_serve_lifecycle() {
    let t = TestManager::new(|config| {
        config.backends.vllm.command = Some(vllm().display().to_string());
        config.stop_grace = Duration::from_secs(30);
    })
    .await;
    let m = &t.manager;
    let options = options(json!({
        "backend_type": "vllm",
        "backend_options": {"model": tiny_hf_model(), "served_model_name": "tiny", "max_model_len": 512,
                            "dtype": "float32", "enforce_eager": true},
        "environment": {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    }));
    m.create("vllm".parse().unwrap(), options).await.unwrap();
    let lease = m.ensure_ready("vllm", Duration::from_secs(600)).await.unwrap();
    let pid = m.get("vllm").unwrap().state.runtime.pid.unwrap();
    assert_eq!(lease.request_model(), Some("tiny"));
    let (status, body) = chat(&lease.base_url(), lease.request_model()).await;
    assert_chat_completion(status, &body);
    let (status, stream) = chat_stream(&lease.base_url(), lease.request_model()).await;
    assert_chat_stream(status, &stream);
    drop(lease);
    assert_eq!(m.stop("vllm").await.unwrap().status(), InstanceStatus::Stopped);
    assert!(!llamactl_core::process::group_alive(pid), "vllm and its engine workers are gone");
}
