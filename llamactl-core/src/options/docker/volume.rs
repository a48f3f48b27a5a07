//! Volumes as `SOURCE:TARGET[:ro|:rw]`: their syntax, and the target that identifies a mount.

/// One `SOURCE:TARGET[:MODE]` mount, checked.
pub(super) struct Volume<'a> {
    pub(super) target: &'a str,
}

pub(super) fn parse_volume(spec: &str) -> Result<Volume<'_>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [source, target] => (*source, *target, None),
        [source, target, mode] => (*source, *target, Some(*mode)),
        [_] => return Err(format!("{spec:?} must be SOURCE:TARGET[:ro|:rw]")),
        _ => return Err(format!("{spec:?} has too many ':' (use SOURCE:TARGET[:ro|:rw])")),
    };
    if spec.contains('\0') {
        return Err("must not contain NUL".into());
    }
    if source.is_empty() {
        return Err(format!("{spec:?}: the source must not be empty"));
    }
    if source.starts_with('~') {
        return Err(format!("{spec:?}: '~' is not expanded here; write the absolute path of the host directory"));
    }
    if !source.starts_with('/') && !is_volume_name(source) {
        return Err(format!(
            "{spec:?}: the source {source:?} must be an absolute host path or a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"
        ));
    }
    if target.is_empty() {
        return Err(format!("{spec:?}: the target must not be empty"));
    }
    if !target.starts_with('/') {
        return Err(format!("{spec:?}: the target {target:?} must be an absolute path in the container"));
    }
    if let Some(mode) = mode
        && mode != "ro"
        && mode != "rw"
    {
        return Err(format!("{spec:?}: mode {mode:?} is not supported (use ro or rw)"));
    }
    Ok(Volume { target })
}

/// Docker's rule for named volumes: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `/data/` and `/data` are the same mount point.
pub(super) fn normalize_target(target: &str) -> &str {
    let trimmed = target.trim_end_matches('/');
    if trimmed.is_empty() && target.starts_with('/') { "/" } else { trimmed }
}

/// What identifies a volume when overlaying: its target, or the whole text if it has none.
pub(super) fn volume_target_key(volume: &str) -> &str {
    match volume.split(':').nth(1) {
        Some(target) if !target.is_empty() => normalize_target(target),
        _ => volume,
    }
}
