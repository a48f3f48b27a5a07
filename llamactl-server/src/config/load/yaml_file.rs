//! The YAML file as a figment provider: its text (already `${...}`-expanded) parsed, keys
//! without a value left out, and the keys of older Go llamactl versions rewritten or dropped
//! with a warning.

use std::path::PathBuf;

use figment::value::{Dict, Empty, Map, Value};
use figment::{Metadata, Profile, Provider, Source};
use serde_norway::Value as Yaml;

/// figment metadata name of the file provider.
const FILE_PROVIDER_NAME: &str = "YAML file";

/// figment provider of a configuration file's (expanded) YAML text.
#[derive(Debug)]
pub(super) struct YamlFile {
    /// The file, for error messages.
    pub(super) path: PathBuf,
    /// Its text after `${...}` expansion.
    pub(super) text: String,
}

impl YamlFile {
    /// The file's keys, with the older Go llamactl keys rewritten, and warnings about them.
    pub(super) fn parse(&self) -> Result<(Dict, Vec<String>), String> {
        let mut yaml: Yaml = serde_norway::from_str(&self.text).map_err(|e| format!("invalid YAML: {e}"))?;
        yaml.apply_merge().map_err(|e| format!("invalid YAML merge key (`<<`): {e}"))?;
        let mut dict = match yaml {
            Yaml::Null => Dict::new(),
            Yaml::Mapping(mapping) => convert_mapping(mapping)?,
            other => return Err(format!("expected a mapping of configuration keys, found {}", yaml_kind(&other))),
        };
        let warnings = go_compat(&mut dict);
        Ok((dict, warnings))
    }
}

impl Provider for YamlFile {
    fn metadata(&self) -> Metadata {
        Metadata::from(FILE_PROVIDER_NAME, Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let (dict, _) = self.parse().map_err(figment::Error::from)?;
        Ok(Profile::Default.collect(dict))
    }
}

fn yaml_kind(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

/// A YAML mapping as a figment dictionary. Keys without a value are left out: they mean "not
/// set" (as for the Go llamactl, whose YAML decoder leaves a field alone on `null`).
fn convert_mapping(mapping: serde_norway::Mapping) -> Result<Dict, String> {
    let mut dict = Dict::new();
    for (key, value) in mapping {
        if value.is_null() {
            continue;
        }
        let key = match key {
            Yaml::String(s) => s,
            Yaml::Number(n) => n.to_string(),
            Yaml::Bool(b) => b.to_string(),
            other => return Err(format!("unsupported key: {} (keys must be strings)", yaml_kind(&other))),
        };
        dict.insert(key, convert(value)?);
    }
    Ok(dict)
}

fn convert(value: Yaml) -> Result<Value, String> {
    Ok(match value {
        Yaml::Null => Value::from(Empty::None),
        Yaml::Bool(b) => Value::from(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Yaml::String(s) => Value::from(s),
        Yaml::Sequence(items) => Value::from(items.into_iter().map(convert).collect::<Result<Vec<_>, _>>()?),
        Yaml::Mapping(mapping) => Value::from(convert_mapping(mapping)?),
        Yaml::Tagged(tagged) => convert(tagged.value)?,
    })
}

/// Keys of older Go llamactl versions: renamed ones are moved to their current name, obsolete
/// ones removed. Returns warnings for what is ignored.
fn go_compat(dict: &mut Dict) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(Value::Dict(_, instances)) = dict.get_mut("instances") {
        for (old, new) in [("configs_dir", "instances_dir"), ("log_rotation_max_size_mb", "log_rotation_max_size")] {
            if let Some(value) = instances.remove(old) {
                if instances.contains_key(new) {
                    warnings.push(format!("instances.{old} is ignored: instances.{new} (its new name) is set too"));
                } else {
                    instances.insert(new.to_owned(), value);
                }
            }
        }
        if let Some(value) = instances.remove("auto_create_dirs")
            && !matches!(value, Value::Bool(_, true))
        {
            warnings.push("instances.auto_create_dirs is not supported and is ignored".to_owned());
        }
    }
    if let Some(Value::Dict(_, auth)) = dict.get_mut("auth")
        && let Some(keys) = auth.remove("inference_keys")
        && !matches!(&keys, Value::Array(_, items) if items.is_empty())
    {
        warnings.push(
            "auth.inference_keys is ignored (as by the Go llamactl): inference keys are created through the API"
                .to_owned(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests;
