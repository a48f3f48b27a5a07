//! The request that creates a backend container: [`ContainerSpec`], its name and labels, and the
//! Engine API body ([`create_body`]).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding};
use sha2::{Digest, Sha256};

use super::options::GpuRequest;

/// Everything needed to create one backend container, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name, see [`container_name`].
    pub name: String,
    /// Image reference, e.g. `ghcr.io/ggml-org/llama.cpp:server`.
    pub image: String,
    /// Entrypoint replacing the image's; `None` keeps the image's.
    pub entrypoint: Option<Vec<String>>,
    /// Command (the backend's arguments); empty keeps the image's `CMD`.
    pub cmd: Vec<String>,
    /// Environment of the container.
    pub env: BTreeMap<String, String>,
    /// Labels, see [`labels`].
    pub labels: BTreeMap<String, String>,
    /// Where the backend's port is reachable.
    pub network: ContainerNetwork,
    /// Mounts as `SOURCE:TARGET[:ro|:rw]`, passed to Docker as binds.
    pub volumes: Vec<String>,
    /// GPUs given to the container.
    pub gpus: Option<GpuRequest>,
    /// Size of /dev/shm in bytes.
    pub shm_size: Option<u64>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
}

/// Where the backend's port is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerNetwork {
    /// Bridge network; `container_port` published on `host_ip:host_port`.
    Publish {
        /// Host address the port is published on (`127.0.0.1`, `0.0.0.0`; empty: all).
        host_ip: String,
        /// Port on the host.
        host_port: u16,
        /// Port the backend listens on inside the container.
        container_port: u16,
    },
    /// The host's network (the backend binds the host's address itself).
    Host,
}

/// Label holding the id of the manager that owns the container.
pub const LABEL_MANAGER: &str = "io.llamactl.manager";
/// Label holding the instance's name.
pub const LABEL_INSTANCE: &str = "io.llamactl.instance";
/// Label holding a hash of the options the container was created with (see [`labels`]).
pub const LABEL_OPTIONS_HASH: &str = "io.llamactl.options-hash";

/// `llamactl-<instance>-<first 8 chars of manager id>`: deterministic, valid for Docker
/// (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`) for any valid instance name (letters, digits, `.`, `_`, `-`,
/// 1-50 chars).
///
/// Characters Docker refuses (impossible in a valid instance name, or in a manager id made of
/// letters, digits and `-`) are replaced with `_`, so the result is always a valid name.
///
/// ```
/// use llamactl_core::docker::spec::container_name;
///
/// assert_eq!(container_name("3f2a9c1e-77aa-4b2e", "qwen-7b"), "llamactl-qwen-7b-3f2a9c1e");
/// ```
pub fn container_name(manager_id: &str, instance: &str) -> String {
    let safe = |c: char| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' };
    let instance: String = instance.chars().map(safe).collect();
    let manager: String = manager_id.chars().take(8).map(safe).collect();
    format!("llamactl-{instance}-{manager}")
}

/// The three labels: [`LABEL_MANAGER`] (the whole manager id), [`LABEL_INSTANCE`] and
/// [`LABEL_OPTIONS_HASH`], the first 16 hex digits of the SHA-256 of `options_json`.
///
/// ```
/// use llamactl_core::docker::spec::{LABEL_OPTIONS_HASH, labels};
///
/// let labels = labels("m1", "tiny", "{}");
/// assert_eq!(labels[LABEL_OPTIONS_HASH], "44136fa355b3678a");
/// ```
pub fn labels(manager_id: &str, instance: &str, options_json: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGER.to_owned(), manager_id.to_owned()),
        (LABEL_INSTANCE.to_owned(), instance.to_owned()),
        (LABEL_OPTIONS_HASH.to_owned(), options_hash(options_json)),
    ])
}

/// The options hash the [`LABEL_OPTIONS_HASH`] label carries: the first 16 hex digits of the
/// SHA-256 of the options' JSON.
pub fn options_hash(options_json: &str) -> String {
    Sha256::digest(options_json.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The Engine API body for `spec` (`POST /containers/create`).
///
/// Image, entrypoint, command, environment as `K=V`, labels; a published port is exposed
/// (`"<port>/tcp"`) and bound on the host (`PortBindings`) with `NetworkMode` `bridge`, or
/// `NetworkMode` is `host`. Volumes become `Binds`; GPUs a `DeviceRequests` entry as
/// `docker run --gpus` sends it (capabilities `[["gpu"]]`, no driver); sizes saturate at
/// `i64::MAX`. `Init` is on (docker-init as PID 1 reaps zombies and forwards signals); there is no
/// restart policy and no auto-remove: the runtime restarts and removes containers itself.
/// Empty `cmd`, `env` and `volumes` are left out so that the image's defaults apply.
pub fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let (exposed_ports, port_bindings, network_mode) = match &spec.network {
        ContainerNetwork::Publish { host_ip, host_port, container_port } => {
            let port = format!("{container_port}/tcp");
            let binding = PortBinding {
                host_ip: (!host_ip.is_empty()).then(|| host_ip.clone()),
                host_port: Some(host_port.to_string()),
            };
            let bindings = HashMap::from([(port.clone(), Some(vec![binding]))]);
            (Some(vec![port]), Some(bindings), "bridge")
        }
        ContainerNetwork::Host => (None, None, "host"),
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode.to_owned()),
        port_bindings,
        binds: non_empty(spec.volumes.clone()),
        device_requests: spec.gpus.as_ref().map(|gpus| vec![device_request(gpus)]),
        shm_size: spec.shm_size.map(saturating_i64),
        memory: spec.memory.map(saturating_i64),
        init: Some(true),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: non_empty(spec.cmd.clone()),
        env: non_empty(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        exposed_ports,
        host_config: Some(host_config),
        ..Default::default()
    }
}

fn device_request(gpus: &GpuRequest) -> DeviceRequest {
    let (count, device_ids) = match gpus {
        GpuRequest::All => (Some(-1), None),
        GpuRequest::Count(n) => (Some(i64::from(*n)), None),
        GpuRequest::Devices(ids) => (None, Some(ids.clone())),
    };
    DeviceRequest { count, device_ids, capabilities: Some(vec![vec!["gpu".to_owned()]]), ..Default::default() }
}

fn non_empty(list: Vec<String>) -> Option<Vec<String>> {
    (!list.is_empty()).then_some(list)
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
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
        assert_ne!(
            super::labels("m", "i", "{}")[LABEL_OPTIONS_HASH],
            super::labels("m", "i", "{ }")[LABEL_OPTIONS_HASH]
        );
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
        let with =
            |gpus| body_json(&ContainerSpec { gpus: Some(gpus), network: ContainerNetwork::Host, ..publish_spec() });
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
}
