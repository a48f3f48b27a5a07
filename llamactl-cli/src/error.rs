//! Errors of the command line and their exit codes: 0 ok, 1 error from the server, 2 usage
//! error, 3 cannot reach the server, 4 not found.

use llamactl_api::ClientError;

/// A failure, printed as one line (plus the backend's log lines for a failed start).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input on the command line.
    #[error("{0}")]
    Usage(String),
    /// The server answered an error, or could not be reached.
    #[error("{what}: {source}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Server {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: ClientError,
        /// What to do about it.
        hint: Option<String>,
    },
    /// An instance did not become ready: why, and the last lines of its log.
    #[error("{message}")]
    NotReady {
        /// What happened.
        message: String,
        /// The backend's last output.
        log: String,
    },
    /// Anything else (a file, an interrupted wait).
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Server { source: ClientError::Unreachable { .. }, .. } => 3,
            Self::Server { source: ClientError::Setup(_) | ClientError::InvalidName { .. }, .. } => 2,
            Self::Server { source, .. } if source.is_not_found() => 4,
            Self::Server { .. } | Self::NotReady { .. } | Self::Other(_) => 1,
        }
    }
}

/// Adds what was being done, and a hint for common failures, to a client error.
pub fn context(what: impl Into<String>) -> impl FnOnce(ClientError) -> CliError {
    let what = what.into();
    move |source| {
        let hint = match &source {
            ClientError::Unreachable { message, .. } if message.contains("certificate") => {
                Some("to trust a private certificate authority, give its PEM file with --ca-cert".to_owned())
            }
            ClientError::Unreachable { .. } => {
                Some("is llamactl-server running? set --server or LLAMACTL_SERVER".to_owned())
            }
            ClientError::Api { status: 401, .. } => Some("set --api-key or LLAMACTL_API_KEY".to_owned()),
            ClientError::Api { status: 403, .. } => Some("this needs a management key".to_owned()),
            ClientError::Api { retry_after: Some(after), .. } => Some(format!("try again in {after} s")),
            _ => None,
        };
        CliError::Server { what, source, hint }
    }
}
