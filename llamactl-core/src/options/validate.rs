//! The semantic layer of instance options: [`InstanceOptions::validate`] checks what parsing
//! cannot — required fields, ranges, combinations, addresses and paths — and names the field.

use std::time::Duration;

use super::{BackendOptions, BackendType, InstanceOptions, OptionsError};

/// Longest `description` accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;

impl InstanceOptions {
    /// Semantic checks: required fields, ranges and combinations. Errors name the field.
    pub fn validate(&self) -> Result<(), OptionsError> {
        validate_backend(&self.backend, self.preset_ini.is_some())?;
        for (key, value) in &self.environment {
            let field = format!("environment.{key}");
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(OptionsError::invalid(
                    field,
                    "a variable name must be non-empty and contain neither '=' nor NUL",
                ));
            }
            if value.contains('\0') {
                return Err(OptionsError::invalid(field, "a value must not contain NUL"));
            }
        }
        if let Some(command) = &self.command_override {
            if command.trim().is_empty() {
                return Err(OptionsError::invalid(
                    "command_override",
                    "must not be empty (leave it out to use the configured command)",
                ));
            }
            if self.docker_enabled == Some(true) {
                return Err(OptionsError::invalid("command_override", "cannot be combined with docker_enabled"));
            }
        }
        if let Some(group) = &self.group
            && crate::InstanceName::new(group.as_str()).is_err()
        {
            return Err(OptionsError::invalid("group", "use 1-50 letters, digits, '.', '_' or '-'"));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.trim().is_empty() {
                return Err(OptionsError::invalid(format!("nodes[{i}]"), "must not be empty"));
            }
        }
        if self.docker_enabled == Some(true) && self.backend.backend_type() == BackendType::MlxLm {
            return Err(OptionsError::invalid("docker_enabled", "mlx_lm has no Docker mode"));
        }
        if let Some(docker) = &self.docker {
            docker.validate().map_err(|(field, message)| OptionsError::invalid(field, message))?;
        }
        if !self.sub_models.is_empty() && !matches!(&self.backend, BackendOptions::LlamaCpp(o) if o.is_router()) {
            return Err(OptionsError::invalid(
                "sub_models",
                "only a llama.cpp router instance (one without a model of its own) has sub-models",
            ));
        }
        if self.sub_models.keys().any(|k| k.trim().is_empty()) {
            return Err(OptionsError::invalid("sub_models", "a model id must not be empty"));
        }
        if let Some(description) = &self.description
            && (description.chars().count() > MAX_DESCRIPTION_CHARS || description.contains('\0'))
        {
            return Err(OptionsError::invalid(
                "description",
                format!("at most {MAX_DESCRIPTION_CHARS} characters, and no NUL"),
            ));
        }
        for (i, template) in self.extends.iter().enumerate() {
            if template.trim().is_empty() {
                return Err(OptionsError::invalid(format!("extends[{i}]"), "a template name must not be empty"));
            }
        }
        if self.startup_timeout == Some(Duration::ZERO) {
            return Err(OptionsError::invalid("startup_timeout", "must be greater than zero"));
        }
        Ok(())
    }
}

fn validate_backend(backend: &BackendOptions, has_presets: bool) -> Result<(), OptionsError> {
    let required = |field: &str, backend: BackendType| OptionsError::Required {
        field: format!("backend_options.{field}"),
        backend: backend.as_str(),
    };
    let non_empty = |field: &str, value: &Option<String>| match value {
        Some(v) if v.trim().is_empty() => {
            Err(OptionsError::invalid(format!("backend_options.{field}"), "must not be empty"))
        }
        _ => Ok(()),
    };
    non_empty("host", &backend.host().map(str::to_owned))?;
    if let Some(host) = backend.host() {
        check_host(host).map_err(|message| OptionsError::invalid("backend_options.host", message))?;
    }
    match backend {
        BackendOptions::LlamaCpp(o) => {
            non_empty("model", &o.model)?;
            let extra = &o.extra;
            let has_source = o.model.is_some()
                || o.hf_repo.is_some()
                || ["model_url", "models_dir", "models_preset"].iter().any(|k| extra.get(k).is_some())
                || has_presets;
            if !has_source {
                return Err(required("model", BackendType::LlamaCpp));
            }
        }
        BackendOptions::MlxLm(o) => {
            non_empty("model", &o.model)?;
            if o.model.is_none() {
                return Err(required("model", BackendType::MlxLm));
            }
        }
        BackendOptions::Vllm(o) => {
            non_empty("model", &o.model)?;
            if o.model.is_none() {
                return Err(required("model", BackendType::Vllm));
            }
            if let Some(u) = o.gpu_memory_utilization
                && !(u > 0.0 && u <= 1.0)
            {
                return Err(OptionsError::invalid(
                    "backend_options.gpu_memory_utilization",
                    format!("{u} is outside (0, 1]"),
                ));
            }
            for (field, value) in [
                ("tensor_parallel_size", o.tensor_parallel_size),
                ("pipeline_parallel_size", o.pipeline_parallel_size),
                ("max_num_seqs", o.max_num_seqs),
                ("max_model_len", o.max_model_len),
            ] {
                if value == Some(0) {
                    return Err(OptionsError::invalid(format!("backend_options.{field}"), "must be at least 1"));
                }
            }
        }
        BackendOptions::Custom(o) => {
            non_empty("command", &o.command)?;
            if o.command.is_none() {
                return Err(required("command", BackendType::Custom));
            }
            if let Some(path) = &o.health_path {
                check_health_path(path)
                    .map_err(|message| OptionsError::invalid("backend_options.health_path", message))?;
            }
        }
    }
    Ok(())
}

/// Longest host name DNS allows, in characters.
const MAX_HOST_NAME_LEN: usize = 253;
/// Longest label of a host name, in characters.
const MAX_HOST_LABEL_LEN: usize = 63;

/// A backend's bind address: an IP address (`127.0.0.1`, `::1`, `0.0.0.0`) or a host name
/// (RFC 1123: dot-separated labels of letters, digits and '-', no label starting or ending with
/// '-', the last one not all digits). The address is bound, put into URLs and handed to the
/// backend as an argument: anything else could only fail later, and more obscurely.
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let not_a_host = |why: String| format!("{host:?} is not an IP address or a host name: {why}");
    if let Some((position, found)) =
        host.chars().enumerate().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.')))
    {
        let hint =
            if matches!(found, ':' | '[' | ']') { " (write an IPv6 address without brackets or port)" } else { "" };
        return Err(not_a_host(format!(
            "character {found:?} at position {position} is not allowed (use letters, digits, '-' and '.'){hint}"
        )));
    }
    // Every remaining character is ASCII: the byte length is the character count.
    if host.len() > MAX_HOST_NAME_LEN {
        return Err(not_a_host(format!("{} characters is too long (at most {MAX_HOST_NAME_LEN})", host.len())));
    }
    let labels: Vec<&str> = host.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(not_a_host("it has an empty label (two dots in a row, or a dot at either end)".to_owned()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(not_a_host(format!("the label {label:?} starts or ends with '-'")));
        }
        if label.len() > MAX_HOST_LABEL_LEN {
            return Err(not_a_host(format!("the label {label:?} is longer than {MAX_HOST_LABEL_LEN} characters")));
        }
    }
    if labels.last().is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit())) {
        return Err(not_a_host("it looks like an IPv4 address but is not a valid one".to_owned()));
    }
    Ok(())
}

/// A readiness path: `/` and then the path and query of a URL (RFC 3986), without a fragment.
/// Anything else (a space, CR/LF, non-ASCII, '#') cannot go into the request line unencoded,
/// so the readiness probe could never be sent.
fn check_health_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("{path:?} must start with '/'"));
    }
    let bytes = path.as_bytes();
    for (position, (byte, found)) in path.char_indices().enumerate() {
        let allowed = found.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/?".contains(found);
        if found == '%' {
            let escape = bytes.get(byte + 1..byte + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return Err(format!("{path:?}: '%' at position {position} must be followed by two hex digits"));
            }
        } else if !allowed {
            return Err(format!(
                "{path:?}: character {found:?} at position {position} is not allowed in a URL path or query (percent-encode it)"
            ));
        }
    }
    Ok(())
}
