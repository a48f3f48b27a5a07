use super::*;
use crate::InstanceName;
use serde_json::{Value, json};

/// Docker's rule for container names.
fn valid_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const MANAGER: &str = "0f3c9a7e-1b2d-4c5e-8f90-a1b2c3d4e5f6";

#[test]
fn container_names_are_deterministic_and_valid() {
    assert_eq!(container_name(MANAGER, "qwen-7b"), "llamactl-qwen-7b-0f3c9a7e");
    assert_eq!(container_name(MANAGER, "qwen-7b"), container_name(MANAGER, "qwen-7b"));
    assert_ne!(container_name(MANAGER, "a"), container_name("1f3c9a7e", "a"));
    let long = "a".repeat(50);
    for instance in [".hidden", "_x", "a-b.c", "-", "..x", "A_Z.0-9", long.as_str()] {
        assert!(InstanceName::new(instance).is_ok(), "{instance} is a valid instance name");
        let name = container_name(MANAGER, instance);
        assert!(valid_docker_name(&name), "{name}");
        assert_eq!(name, format!("llamactl-{instance}-0f3c9a7e"));
    }
    assert_eq!(container_name(MANAGER, &long).len(), "llamactl-".len() + 50 + 1 + 8);
}

#[test]
fn container_names_stay_valid_for_odd_inputs() {
    assert_eq!(container_name("abc", "x"), "llamactl-x-abc", "short manager id used whole");
    assert_eq!(container_name("", "x"), "llamactl-x-");
    assert_eq!(container_name("ab/cd:ef", "a b"), "llamactl-a_b-ab_cd_ef");
    assert_eq!(container_name("éééééééééé", "ü"), "llamactl-_-________");
    for (manager, instance) in [("", ""), ("x y", "a/b"), ("é", "\u{0}")] {
        let name = container_name(manager, instance);
        assert!(valid_docker_name(&name), "{name}");
    }
}

#[test]
fn labels_carry_manager_instance_and_options_hash() {
    let options = r#"{"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf"}}"#;
    let labels = labels(MANAGER, "tiny", options);
    assert_eq!(labels.len(), 3);
    assert_eq!(labels[LABEL_MANAGER], MANAGER);
    assert_eq!(labels[LABEL_INSTANCE], "tiny");
    let hash = &labels[LABEL_OPTIONS_HASH];
    assert_eq!(hash.len(), 16);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{hash}");
    // SHA-256("") = e3b0c44298fc1c149afbf4c8996fb924...
    assert_eq!(super::labels("m", "i", "")[LABEL_OPTIONS_HASH], "e3b0c44298fc1c14");
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
    assert_eq!(super::labels("m", "i", "abc")[LABEL_OPTIONS_HASH], "ba7816bf8f01cfea");
    assert_ne!(super::labels("m", "i", "{}")[LABEL_OPTIONS_HASH], super::labels("m", "i", "{ }")[LABEL_OPTIONS_HASH]);
}

fn publish_spec() -> ContainerSpec {
    ContainerSpec {
        name: container_name(MANAGER, "tiny"),
        image: "ghcr.io/ggml-org/llama.cpp:server".into(),
        entrypoint: Some(vec!["/app/llama-server".into()]),
        cmd: vec!["--host".into(), "0.0.0.0".into(), "--port".into(), "8080".into()],
        env: BTreeMap::from([("LLAMA_ARG_THREADS".into(), "4".into()), ("A".into(), "x=y".into())]),
        labels: labels(MANAGER, "tiny", "{}"),
        network: ContainerNetwork::Publish { host_ip: "127.0.0.1".into(), host_port: 41234, container_port: 8080 },
        volumes: vec!["/models:/models:ro".into(), "hf:/root/.cache/huggingface".into()],
        gpus: None,
        shm_size: Some(1 << 30),
        memory: Some(16 << 30),
    }
}

fn body_json(spec: &ContainerSpec) -> Value {
    serde_json::to_value(create_body(spec)).unwrap()
}

#[test]
fn publish_body_is_what_the_engine_expects() {
    let spec = publish_spec();
    assert_eq!(
        body_json(&spec),
        json!({
            "Image": "ghcr.io/ggml-org/llama.cpp:server",
            "Entrypoint": ["/app/llama-server"],
            "Cmd": ["--host", "0.0.0.0", "--port", "8080"],
            "Env": ["A=x=y", "LLAMA_ARG_THREADS=4"],
            "Labels": {
                "io.llamactl.manager": MANAGER,
                "io.llamactl.instance": "tiny",
                "io.llamactl.options-hash": "44136fa355b3678a",
            },
            "ExposedPorts": {"8080/tcp": {}},
            "HostConfig": {
                "NetworkMode": "bridge",
                "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}]},
                "Binds": ["/models:/models:ro", "hf:/root/.cache/huggingface"],
                "ShmSize": 1_073_741_824u64,
                "Memory": 17_179_869_184u64,
                "Init": true,
            },
        })
    );
}

#[test]
fn host_network_body_with_all_gpus() {
    let spec = ContainerSpec {
        entrypoint: None,
        cmd: vec![],
        env: BTreeMap::new(),
        network: ContainerNetwork::Host,
        volumes: vec![],
        gpus: Some(GpuRequest::All),
        shm_size: None,
        memory: None,
        ..publish_spec()
    };
    let body = body_json(&spec);
    assert_eq!(
        body,
        json!({
            "Image": "ghcr.io/ggml-org/llama.cpp:server",
            "Labels": {
                "io.llamactl.manager": MANAGER,
                "io.llamactl.instance": "tiny",
                "io.llamactl.options-hash": "44136fa355b3678a",
            },
            "HostConfig": {
                "NetworkMode": "host",
                "DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}],
                "Init": true,
            },
        })
    );
    let host_config = &body["HostConfig"];
    for absent in ["PortBindings", "RestartPolicy", "AutoRemove", "Binds"] {
        assert!(host_config.get(absent).is_none(), "{absent}");
    }
    assert!(body.get("ExposedPorts").is_none());
}

#[test]
fn gpu_counts_and_devices() {
    let with = |gpus| body_json(&ContainerSpec { gpus: Some(gpus), network: ContainerNetwork::Host, ..publish_spec() });
    assert_eq!(
        with(GpuRequest::Count(2))["HostConfig"]["DeviceRequests"],
        json!([{"Count": 2, "Capabilities": [["gpu"]]}])
    );
    assert_eq!(
        with(GpuRequest::Devices(vec!["0".into(), "GPU-abc".into()]))["HostConfig"]["DeviceRequests"],
        json!([{"DeviceIDs": ["0", "GPU-abc"], "Capabilities": [["gpu"]]}])
    );
    let body = create_body(&ContainerSpec { gpus: Some(GpuRequest::All), ..publish_spec() });
    let requests = body.host_config.and_then(|h| h.device_requests).unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].driver, None, "driver left to the engine, as docker run --gpus does");
}

#[test]
fn publish_on_all_interfaces_and_saturating_sizes() {
    let spec = ContainerSpec {
        network: ContainerNetwork::Publish { host_ip: String::new(), host_port: 8000, container_port: 8000 },
        shm_size: Some(u64::MAX),
        memory: Some(1 << 63),
        ..publish_spec()
    };
    let body = body_json(&spec);
    assert_eq!(body["HostConfig"]["PortBindings"], json!({"8000/tcp": [{"HostPort": "8000"}]}));
    assert_eq!(body["ExposedPorts"], json!({"8000/tcp": {}}));
    assert_eq!(body["HostConfig"]["ShmSize"], json!(i64::MAX));
    assert_eq!(body["HostConfig"]["Memory"], json!(i64::MAX));
}

#[test]
fn body_round_trips_through_bollard_types() {
    let body = create_body(&publish_spec());
    let back: ContainerCreateBody = serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
    assert_eq!(back, body);
}
