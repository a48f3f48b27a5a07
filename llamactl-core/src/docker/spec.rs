//! The request that creates a backend container: [`ContainerSpec`], its name and labels, and the
//! Engine API body ([`create_body`]).

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, DeviceRequest, HostConfig, PortBinding};
use sha2::{Digest, Sha256};

use crate::options::docker::GpuRequest;

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
mod tests;
