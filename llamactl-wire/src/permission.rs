//! What an inference API key may use.

use serde::{Deserialize, Serialize};

/// What a key may use.
///
/// Stored in the Go llamactl's `api_keys.permission_mode` column and sent as the
/// `permission_mode` of the key routes, under the same names.
///
/// ```
/// use llamactl_wire::PermissionMode;
/// assert_eq!(PermissionMode::PerInstance.as_str(), "per_instance");
/// assert_eq!(serde_json::to_string(&PermissionMode::AllowAll)?, r#""allow_all""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionMode {
    /// Every instance, with every right.
    AllowAll,
    /// Only the instances listed in its rights.
    PerInstance,
}

impl PermissionMode {
    /// The name stored in `api_keys.permission_mode` (and used in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowAll => "allow_all",
            Self::PerInstance => "per_instance",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_name_is_the_json_name() {
        for mode in [PermissionMode::AllowAll, PermissionMode::PerInstance] {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            assert_eq!(serde_json::from_str::<PermissionMode>(&json).unwrap(), mode);
        }
    }
}
