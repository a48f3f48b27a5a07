//! [`DockerNetwork`]: the network a container joins.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The container's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DockerNetwork {
    /// Docker's default bridge network; the backend's port is published on the host.
    Bridge,
    /// The host's network namespace; the backend binds the host's address itself.
    Host,
}

impl DockerNetwork {
    /// `"bridge"` or `"host"`, as in the configuration and in Docker's `NetworkMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
        }
    }
}

impl fmt::Display for DockerNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
