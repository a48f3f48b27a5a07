//! Instance names.
//!
//! A name ends up in file names (log files), URLs and process listings, so it is restricted to a
//! safe alphabet: ASCII letters, digits, `.`, `_` and `-`, 1 to 50 characters, and never `.` or
//! `..`. Path separators and shell metacharacters can therefore never reach a file name or a
//! command line through a name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted instance name, in characters (the same limit as the Go llamactl).
pub const MAX_NAME_LEN: usize = 50;

/// Why a string is not a valid [`InstanceName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name: must not be empty")]
    Empty,
    /// The name is longer than [`MAX_NAME_LEN`] characters.
    #[error("name: {len} characters is too long (at most {MAX_NAME_LEN})")]
    TooLong {
        /// Length of the rejected name, in characters.
        len: usize,
    },
    /// The name contains a character outside `[a-zA-Z0-9._-]`.
    #[error("name: character {found:?} at position {position} is not allowed (use letters, digits, '.', '_' or '-')")]
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its zero-based character position.
        position: usize,
    },
    /// The name is `.` or `..`, which would name a directory.
    #[error("name: {0:?} is reserved")]
    Reserved(String),
}

/// A validated instance name: `^[a-zA-Z0-9._-]{1,50}$`, and neither `.` nor `..`.
///
/// ```
/// use llamactl_wire::InstanceName;
///
/// let name: InstanceName = "qwen-7b.q4_k".parse()?;
/// assert_eq!(name.as_str(), "qwen-7b.q4_k");
/// assert!("../etc/passwd".parse::<InstanceName>().is_err());
/// assert!("a;rm -rf".parse::<InstanceName>().is_err());
/// # Ok::<(), llamactl_wire::NameError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceName(String);

impl InstanceName {
    /// Validates `name` and wraps it.
    ///
    /// ```
    /// # use llamactl_wire::{InstanceName, NameError};
    /// assert_eq!(InstanceName::new(""), Err(NameError::Empty));
    /// ```
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        validate(&name)?;
        Ok(Self(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the name and returns the inner string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    for (position, found) in name.chars().enumerate() {
        let allowed = found.is_ascii_alphanumeric() || matches!(found, '.' | '_' | '-');
        if !allowed {
            return Err(NameError::InvalidChar { found, position });
        }
    }
    // Every accepted character is ASCII, so the byte length is the character count.
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

impl fmt::Display for InstanceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for InstanceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for InstanceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for InstanceName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for InstanceName {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<&str> for InstanceName {
    type Error = NameError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl Serialize for InstanceName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_full_alphabet_and_the_length_limit() {
        for ok in ["a", "A-z_0.9", "llama.cpp-7b", &"x".repeat(MAX_NAME_LEN), "..a", ".hidden"] {
            assert!(InstanceName::new(ok).is_ok(), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn rejects_separators_metacharacters_and_overlong_names() {
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("a/b", NameError::InvalidChar { found: '/', position: 1 }),
            ("a\\b", NameError::InvalidChar { found: '\\', position: 1 }),
            ("x;y", NameError::InvalidChar { found: ';', position: 1 }),
            ("$(id)", NameError::InvalidChar { found: '$', position: 0 }),
            ("a b", NameError::InvalidChar { found: ' ', position: 1 }),
            ("é", NameError::InvalidChar { found: 'é', position: 0 }),
            ("nul\0", NameError::InvalidChar { found: '\0', position: 3 }),
            (".", NameError::Reserved(".".into())),
            ("..", NameError::Reserved("..".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(InstanceName::new(*input).as_ref(), Err(expected), "{input:?}");
        }
        assert_eq!(InstanceName::new("x".repeat(MAX_NAME_LEN + 1)), Err(NameError::TooLong { len: MAX_NAME_LEN + 1 }));
    }

    #[test]
    fn errors_name_the_field() {
        let message = InstanceName::new("a/b").unwrap_err().to_string();
        assert!(message.starts_with("name:"), "{message}");
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<InstanceName>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<InstanceName>("\"../x\"").is_err());
    }
}
