//! How a proxied request ended, and how request records are grouped.

use serde::{Deserialize, Serialize};

/// How a proxied request ended. Stored in `activity.outcome` and sent as a record's `outcome`,
/// under the same names.
///
/// ```
/// use llamactl_wire::ActivityOutcome;
/// assert_eq!(ActivityOutcome::Cancelled.as_str(), "cancelled");
/// assert_eq!("error".parse::<ActivityOutcome>(), Ok(ActivityOutcome::Error));
/// assert_eq!(serde_json::to_string(&ActivityOutcome::Completed)?, r#""completed""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityOutcome {
    /// The whole answer reached the client (whatever its HTTP status).
    Completed,
    /// The client went away before the end of the answer, or the request was cancelled
    /// through the API.
    Cancelled,
    /// No answer came from a backend (refused before forwarding, the backend unreachable, or
    /// its answer broke off).
    Error,
}

impl ActivityOutcome {
    /// Every outcome.
    pub const ALL: [Self; 3] = [Self::Completed, Self::Cancelled, Self::Error];

    /// The stored and sent name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Error => "error",
        }
    }
}

impl std::str::FromStr for ActivityOutcome {
    type Err = UnknownActivityWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| UnknownActivityWord(s.to_owned()))
    }
}

/// What request statistics are grouped by (`group_by=` of `/api/v1/activity/stats`).
///
/// ```
/// use llamactl_wire::ActivityGroupBy;
/// assert_eq!("model".parse::<ActivityGroupBy>(), Ok(ActivityGroupBy::Model));
/// assert!("path".parse::<ActivityGroupBy>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityGroupBy {
    /// By instance.
    #[default]
    Instance,
    /// By model (the sub-model of a router instance, else the model the client named).
    Model,
    /// By API key name.
    Key,
}

impl ActivityGroupBy {
    /// Every grouping.
    pub const ALL: [Self; 3] = [Self::Instance, Self::Model, Self::Key];

    /// Its name in queries and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Model => "model",
            Self::Key => "key",
        }
    }
}

impl std::str::FromStr for ActivityGroupBy {
    type Err = UnknownActivityWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.as_str() == s).ok_or_else(|| UnknownActivityWord(s.to_owned()))
    }
}

/// A word that names no [`ActivityOutcome`] or [`ActivityGroupBy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownActivityWord(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_json_names_and_parse_back() {
        for outcome in ActivityOutcome::ALL {
            assert_eq!(serde_json::to_string(&outcome).unwrap(), format!("\"{}\"", outcome.as_str()));
            assert_eq!(outcome.as_str().parse::<ActivityOutcome>().unwrap(), outcome);
        }
        for group in ActivityGroupBy::ALL {
            assert_eq!(serde_json::to_string(&group).unwrap(), format!("\"{}\"", group.as_str()));
            assert_eq!(group.as_str().parse::<ActivityGroupBy>().unwrap(), group);
        }
        assert!("Completed".parse::<ActivityOutcome>().is_err());
    }
}
