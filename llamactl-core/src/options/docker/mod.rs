//! How a backend's container is run: image, entrypoint, network, mounts, GPUs and limits.
//!
//! [`DockerRunOptions`] comes from two places: the server configuration
//! (`backends.<backend>.docker`) and an instance's own `docker` options, combined with
//! [`DockerRunOptions::overlay`]. The Go llamactl configured the same thing as `docker run`
//! arguments (`backends.<backend>.docker.args`); [`DockerRunOptions::from_run_args`] reads those.
//!
//! Sizes are [`ByteSize`], GPUs [`GpuRequest`], the network [`DockerNetwork`]. The Docker
//! runtime ([`crate::docker`]) turns the options into a container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod byte_size;
mod gpus;
mod network;
mod run_args;
mod volume;

pub use byte_size::ByteSize;
pub use gpus::GpuRequest;
pub use network::DockerNetwork;
use volume::{normalize_target, parse_volume, volume_target_key};

/// How a backend's container is run. Comes from the server configuration
/// (`backends.<backend>.docker`) and from an instance's own `docker` options; see
/// [`overlay`](DockerRunOptions::overlay).
///
/// ```
/// use llamactl_core::options::docker::{DockerNetwork, DockerRunOptions, GpuRequest};
///
/// let options: DockerRunOptions = serde_json::from_str(
///     r#"{"image": "ghcr.io/ggml-org/llama.cpp:server-cuda", "network": "host", "gpus": "all", "shm_size": "1g"}"#,
/// )?;
/// assert_eq!(options.network, Some(DockerNetwork::Host));
/// assert_eq!(options.gpus, Some(GpuRequest::All));
/// assert_eq!(options.shm_size.map(|s| s.bytes()), Some(1 << 30));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerRunOptions {
    /// Image, e.g. `ghcr.io/ggml-org/llama.cpp:server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Entrypoint replacing the image's, e.g. `["/app/llama-server"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `bridge` (default: the backend's port is published on the host) or `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<DockerNetwork>,
    /// Mounts as `SOURCE:TARGET[:ro|:rw]` (an absolute host path or a named volume), like
    /// `docker run -v`. A `~` is not expanded here (only by [`from_run_args`](Self::from_run_args)).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// GPUs: `"all"`, a number, or a list of device ids (`["0", "2"]` or `"device=0,2"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<GpuRequest>,
    /// Size of /dev/shm: bytes, or a string with a unit (`"1g"`, `"512m"`, `"64k"`, binary units
    /// like docker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Memory limit, same syntax as `shm_size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Environment added in the container (the instance's `environment` is added on top
    /// elsewhere).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

/// Smallest memory limit the Docker engine accepts (6 MiB).
const MIN_MEMORY: u64 = 6 << 20;

impl DockerRunOptions {
    /// `self` with `top` on top: `top`'s `image`, `entrypoint`, `network`, `gpus`, `shm_size` and
    /// `memory` win where set; `environment` is merged (`top` wins per key); `volumes` are
    /// `self`'s then `top`'s, except that a `self` volume is dropped when a `top` volume mounts
    /// the same target.
    ///
    /// ```
    /// use llamactl_core::options::docker::DockerRunOptions;
    ///
    /// let server = DockerRunOptions { volumes: vec!["/models:/models:ro".into()], ..Default::default() };
    /// let instance = DockerRunOptions { volumes: vec!["/fast/models:/models".into()], ..Default::default() };
    /// assert_eq!(server.overlay(&instance).volumes, ["/fast/models:/models"]);
    /// ```
    pub fn overlay(&self, top: &DockerRunOptions) -> DockerRunOptions {
        let top_targets: Vec<&str> = top.volumes.iter().map(|v| volume_target_key(v)).collect();
        let mut volumes: Vec<String> =
            self.volumes.iter().filter(|v| !top_targets.contains(&volume_target_key(v))).cloned().collect();
        volumes.extend(top.volumes.iter().cloned());
        let mut environment = self.environment.clone();
        environment.extend(top.environment.iter().map(|(k, v)| (k.clone(), v.clone())));
        DockerRunOptions {
            image: top.image.clone().or_else(|| self.image.clone()),
            entrypoint: top.entrypoint.clone().or_else(|| self.entrypoint.clone()),
            network: top.network.or(self.network),
            volumes,
            gpus: top.gpus.clone().or_else(|| self.gpus.clone()),
            shm_size: top.shm_size.or(self.shm_size),
            memory: top.memory.or(self.memory),
            environment,
        }
    }

    /// Checks the options and returns `(field, message)` for the first problem, the field being a
    /// path such as `docker.image` or `docker.volumes[1]`.
    ///
    /// Checked: a non-empty image; a non-empty entrypoint; each volume is
    /// `SOURCE:TARGET[:ro|:rw]` with an absolute host path or a volume name as source and an
    /// absolute target, no two volumes with the same target; at least one GPU; sizes above zero
    /// (and a memory limit of at least 6 MiB, Docker's minimum); environment names non-empty
    /// and without `=`, and no NUL anywhere.
    ///
    /// ```
    /// use llamactl_core::options::docker::DockerRunOptions;
    ///
    /// let options = DockerRunOptions { volumes: vec!["/models:/m".into(), "models".into()], ..Default::default() };
    /// let (field, message) = options.validate().unwrap_err();
    /// assert_eq!(field, "docker.volumes[1]");
    /// assert!(message.contains("SOURCE:TARGET"), "{message}");
    /// ```
    pub fn validate(&self) -> Result<(), (String, String)> {
        let invalid = |field: &str, message: String| Err((field.to_owned(), message));
        if let Some(image) = &self.image {
            if image.trim().is_empty() {
                return invalid("docker.image", "must not be empty".into());
            }
            if image.chars().any(|c| c.is_whitespace() || c == '\0') {
                return invalid("docker.image", format!("{image:?} must not contain whitespace"));
            }
        }
        if let Some(entrypoint) = &self.entrypoint {
            if entrypoint.is_empty() {
                return invalid(
                    "docker.entrypoint",
                    "must not be an empty list (leave it out to use the image's)".into(),
                );
            }
            if let Some(i) = entrypoint.iter().position(|part| part.contains('\0')) {
                return invalid(&format!("docker.entrypoint[{i}]"), "must not contain NUL".into());
            }
        }
        for (i, volume) in self.volumes.iter().enumerate() {
            let field = format!("docker.volumes[{i}]");
            let parsed = parse_volume(volume).map_err(|message| (field.clone(), message))?;
            let key = normalize_target(parsed.target);
            if let Some(first) = self.volumes[..i].iter().position(|v| volume_target_key(v) == key) {
                return invalid(&field, format!("target {key} is already mounted by docker.volumes[{first}]"));
            }
        }
        if let Some(gpus) = &self.gpus {
            gpus.check().map_err(|message| ("docker.gpus".to_owned(), message))?;
        }
        if self.shm_size == Some(ByteSize(0)) {
            return invalid("docker.shm_size", "must be greater than zero".into());
        }
        if let Some(memory) = self.memory
            && memory.bytes() < MIN_MEMORY
        {
            return invalid("docker.memory", format!("{memory} is below Docker's minimum of 6m"));
        }
        for (key, value) in &self.environment {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return invalid(
                    "docker.environment",
                    format!("{key:?}: a variable name must be non-empty and contain neither '=' nor NUL"),
                );
            }
            if value.contains('\0') {
                return invalid("docker.environment", format!("{key}: a value must not contain NUL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
