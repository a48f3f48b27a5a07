//! Errors in instance options, each naming the offending field.

/// An invalid instance option. Every variant names the field (a dotted path such as
/// `backend_options.ctx_size`), so a user can find and fix it.
///
/// Schema errors ([`OptionsError::WrongType`], [`OptionsError::UnknownField`],
/// [`OptionsError::Duplicate`]) come from parsing; semantic errors ([`OptionsError::Invalid`],
/// [`OptionsError::Required`]) from [`InstanceOptions::validate`](crate::InstanceOptions::validate).
///
/// ```
/// use llamactl_core::InstanceOptions;
///
/// let err = InstanceOptions::from_json(r#"{"backend_type":"llama_cpp","backend_options":{"ctx_size":"big"}}"#)
///     .unwrap_err();
/// assert_eq!(err.field(), "backend_options.ctx_size");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The text is not JSON, or the options are not a JSON object.
    #[error("options: {0}")]
    Malformed(String),
    /// A value has the wrong type (schema layer).
    #[error("{field}: {message}")]
    WrongType {
        /// Dotted path of the field.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A field this version does not know (reported in strict mode only).
    #[error("{field}: unknown option{}", hint.as_ref().map(|h| format!(" (did you mean {h:?}?)")).unwrap_or_default())]
    UnknownField {
        /// Dotted path of the field.
        field: String,
        /// A known field with a similar name.
        hint: Option<String>,
    },
    /// Two keys set the same option, e.g. `c` and `ctx_size`.
    #[error("{field}: sets the same option as {other}")]
    Duplicate {
        /// Dotted path of the second key.
        field: String,
        /// Dotted path of the first key.
        other: String,
    },
    /// A value is out of range or otherwise unusable (semantic layer).
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A field the backend needs is missing (semantic layer).
    #[error("{field}: required for backend {backend}")]
    Required {
        /// Dotted path of the field.
        field: String,
        /// The backend that needs it.
        backend: &'static str,
    },
}

impl OptionsError {
    /// The dotted path of the offending field (`options` for a malformed document).
    pub fn field(&self) -> &str {
        match self {
            Self::Malformed(_) => "options",
            Self::WrongType { field, .. }
            | Self::UnknownField { field, .. }
            | Self::Duplicate { field, .. }
            | Self::Invalid { field, .. }
            | Self::Required { field, .. } => field,
        }
    }

    pub(crate) fn wrong_type(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::WrongType { field: field.into(), message: message.into() }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}
