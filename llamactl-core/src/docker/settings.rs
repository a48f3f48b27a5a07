//! The Docker runtime's configuration.

use std::path::PathBuf;

use crate::options::docker::DockerRunOptions;
use crate::{BackendType, InstanceOptions};

/// The name of a backend in the configuration (`backends.<name>`), as the Go llamactl spells it.
pub fn config_key(backend: BackendType) -> &'static str {
    match backend {
        BackendType::LlamaCpp => "llama-cpp",
        BackendType::MlxLm => "mlx",
        BackendType::Vllm => "vllm",
        BackendType::Custom => "custom",
    }
}

/// Docker settings of one backend type (`backends.<name>.docker`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendDocker {
    /// Instances of this backend run in containers unless their `docker_enabled` says no.
    pub enabled: bool,
    /// How its containers run (an instance's own `docker` options are laid over these).
    pub run: DockerRunOptions,
}

/// The Docker runtime's configuration.
///
/// ```
/// use llamactl_core::docker::DockerSettings;
/// use llamactl_core::InstanceOptions;
///
/// let settings = DockerSettings::default();
/// assert_eq!(settings.llama_cpp.run.image.as_deref(), Some("ghcr.io/ggml-org/llama.cpp:server"));
/// let options = InstanceOptions::from_json(
///     r#"{"backend_type":"llama_cpp","backend_options":{"model":"/m.gguf"},"docker_enabled":true}"#,
/// )?;
/// assert!(settings.wanted(&options));
/// # Ok::<(), llamactl_core::OptionsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerSettings {
    /// Engine address: `unix:///var/run/docker.sock`, `tcp://HOST:2375`, `tcp://HOST:2376` with
    /// TLS, `https://HOST:2376`. `None`: `$DOCKER_HOST`, else the local socket.
    pub host: Option<String>,
    /// Use TLS for a `tcp://` address (as `$DOCKER_TLS_VERIFY` does).
    pub tls_verify: bool,
    /// Folder with `ca.pem`, `cert.pem` and `key.pem` for TLS. `None`: `$DOCKER_CERT_PATH`, else
    /// `~/.docker`.
    pub cert_path: Option<PathBuf>,
    /// llama.cpp containers (default image `ghcr.io/ggml-org/llama.cpp:server`, entrypoint
    /// `/app/llama-server`).
    pub llama_cpp: BackendDocker,
    /// vLLM containers (default image `vllm/vllm-openai:latest`, entrypoint `vllm`).
    pub vllm: BackendDocker,
    /// Containers of custom backends (no default image: instances name theirs).
    pub custom: BackendDocker,
}

impl Default for DockerSettings {
    fn default() -> Self {
        let with = |image: &str, entrypoint: &str| BackendDocker {
            enabled: false,
            run: DockerRunOptions {
                image: Some(image.to_owned()),
                entrypoint: Some(vec![entrypoint.to_owned()]),
                ..DockerRunOptions::default()
            },
        };
        Self {
            host: None,
            tls_verify: false,
            cert_path: None,
            llama_cpp: with("ghcr.io/ggml-org/llama.cpp:server", "/app/llama-server"),
            vllm: with("vllm/vllm-openai:latest", "vllm"),
            custom: BackendDocker::default(),
        }
    }
}

impl DockerSettings {
    /// The settings of `backend`; mlx_lm has no Docker mode.
    pub fn for_backend(&self, backend: BackendType) -> Option<&BackendDocker> {
        match backend {
            BackendType::LlamaCpp => Some(&self.llama_cpp),
            BackendType::Vllm => Some(&self.vllm),
            BackendType::Custom => Some(&self.custom),
            BackendType::MlxLm => None,
        }
    }

    /// Whether an instance runs in a container: its own `docker_enabled`, else its backend's
    /// `enabled`.
    pub fn wanted(&self, options: &InstanceOptions) -> bool {
        options
            .docker_enabled
            .unwrap_or_else(|| self.for_backend(options.backend.backend_type()).is_some_and(|b| b.enabled))
    }

    /// Whether any backend runs in containers by default.
    pub fn any_enabled(&self) -> bool {
        self.llama_cpp.enabled || self.vllm.enabled || self.custom.enabled
    }
}
