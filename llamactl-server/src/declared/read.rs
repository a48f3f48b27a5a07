//! Reading the declared instances: `instances.definitions` of the configuration file and every
//! `*.yaml` file of `instances.definitions_dir`, each merged over its templates and checked as
//! the API checks options. Any error names the file, the line where it can tell, and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use llamactl_core::{InstanceName, InstanceOptions};
use serde_json::Value;

use super::templates::{Merged, resolve};
use crate::config::{Config, expand, locate_line};

/// An instance declared in a file, ready to be reconciled.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The file that declares it.
    pub file: PathBuf,
    /// Its options as written there.
    pub spec: Value,
    /// Merged over its templates, with where each value came from.
    pub merged: Merged,
    /// The merged options, checked, with `declared_in` set to the file.
    pub options: InstanceOptions,
}

/// Why the declarations cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationError {
    /// The file at fault (`None`: the configuration came from no file).
    pub file: Option<PathBuf>,
    /// The 1-based line, where it can be told.
    pub line: Option<usize>,
    /// The dotted key: `instances.definitions.q.backend_options.ctx_size`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DeclarationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeclarationError {}

/// Every declared instance, by name. `source` is the configuration file (with its text, for
/// line numbers); `env` expands `${VAR}` in the folder's files as in the configuration file.
pub fn read_declarations(
    config: &Config,
    source: Option<(&Path, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<InstanceName, Declared>, DeclarationError> {
    let mut declared = BTreeMap::new();
    if !config.instances.definitions.is_empty() {
        let (file, text) = match source {
            Some((file, text)) => (Some(file), text),
            None => (None, ""),
        };
        let place = Place { file, text, prefix: &["instances", "definitions"] };
        for (name, spec) in &config.instances.definitions {
            let (name, item) = declare(config, &place, name, spec)?;
            declared.insert(name, item);
        }
    }
    if let Some(dir) = &config.instances.definitions_dir {
        for path in yaml_files(dir)? {
            let text = std::fs::read_to_string(&path).map_err(|e| whole_file(&path, format!("cannot read: {e}")))?;
            let text = expand::expand(&text, env).map_err(|e| whole_file(&path, e.to_string()))?;
            let parsed: BTreeMap<String, serde_norway::Value> =
                serde_norway::from_str(&text).map_err(|e| whole_file(&path, format!("invalid YAML: {e}")))?;
            let place = Place { file: Some(&path), text: &text, prefix: &[] };
            for (name, spec) in parsed {
                let spec = serde_json::to_value(&spec)
                    .map_err(|e| place.error(&name, &[], format!("cannot be read as options: {e}")))?;
                let (name, item) = declare(config, &place, &name, &spec)?;
                if let Some(earlier) = declared.get(&name) {
                    return Err(place.error(
                        name.as_str(),
                        &[],
                        format!("is declared twice: here and in {}", earlier.file.display()),
                    ));
                }
                declared.insert(name, item);
            }
        }
    }
    Ok(declared)
}

/// Where declarations are written: a file, its text, and the keys leading to them.
struct Place<'a> {
    file: Option<&'a Path>,
    text: &'a str,
    prefix: &'a [&'a str],
}

impl Place<'_> {
    fn error(&self, name: &str, field: &[&str], message: String) -> DeclarationError {
        let mut keys: Vec<&str> = self.prefix.to_vec();
        keys.push(name);
        keys.extend(field);
        DeclarationError {
            file: self.file.map(Path::to_path_buf),
            line: locate_line(self.text, &keys),
            key: keys.join("."),
            message,
        }
    }
}

/// One declaration, merged and checked.
fn declare(
    config: &Config,
    place: &Place<'_>,
    name: &str,
    spec: &Value,
) -> Result<(InstanceName, Declared), DeclarationError> {
    let instance = name.parse::<InstanceName>().map_err(|e| place.error(name, &[], e.to_string()))?;
    if spec.get("declared_in").is_some() {
        return Err(place.error(name, &["declared_in"], "is set by llamactl, not in a file".into()));
    }
    let merged = resolve(&config.templates, name, spec).map_err(|e| place.error(name, &["extends"], e.to_string()))?;
    let options = InstanceOptions::from_json_value(&merged.value)
        .and_then(|o| o.reject_unknown_fields().map(|()| o))
        .and_then(|o| o.validate().map(|()| o))
        .map_err(|e| {
            let field: Vec<&str> = e.field().split('.').filter(|k| !k.is_empty()).collect();
            // A value a template gave is reported where the template writes it.
            let from_template = merged.origins.get(e.field()).filter(|o| *o != super::templates::OWN);
            match from_template {
                Some(template) => {
                    let mut error = template_error(place, template, &field, e.to_string());
                    error.message = format!("{} (from template {template}, extended by {name})", error.message);
                    error
                }
                None => place.error(name, &field, e.to_string()),
            }
        })?;
    let mut options = options;
    let file = place.file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("<configuration>"));
    options.declared_in = Some(file.display().to_string());
    Ok((instance, Declared { file, spec: spec.clone(), merged, options }))
}

/// An error in a template's value, located in the configuration file (templates live there).
fn template_error(place: &Place<'_>, template: &str, field: &[&str], message: String) -> DeclarationError {
    let mut keys = vec!["templates", template];
    keys.extend(field);
    let in_main = place.prefix.first() == Some(&"instances");
    DeclarationError {
        file: if in_main { place.file.map(Path::to_path_buf) } else { None },
        line: if in_main { locate_line(place.text, &keys) } else { None },
        key: keys.join("."),
        message,
    }
}

/// The `*.yaml` files of `dir`, in name order.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, DeclarationError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DeclarationError {
        file: Some(dir.to_path_buf()),
        line: None,
        key: "instances.definitions_dir".into(),
        message: format!("cannot read the folder: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn whole_file(path: &Path, message: String) -> DeclarationError {
    // serde_norway's messages carry "at line N column M".
    let line = message
        .split("at line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    DeclarationError { file: Some(path.to_path_buf()), line, key: String::new(), message }
}

#[cfg(test)]
mod tests;
