//! `sub_models`: how llamactl schedules the models of a llama.cpp router instance, keyed like
//! the sections of its preset file (`"*"` for every model, else a model's id).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::OptionsError;
use super::duration::{self, DefaultUnit};

/// The key whose settings apply to every model without its own (the preset file's `[*]`).
pub const EVERY_MODEL: &str = "*";

/// One entry of `sub_models`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubModelOptions {
    /// Unload after this long without a request; zero never unloads it. A bare number is
    /// minutes, as for the instance's own `idle_timeout`; `"30s"` gives seconds.
    pub idle_timeout: Option<Duration>,
    /// Never unloaded by llamactl on its own (no idle unload, never evicted).
    pub pinned: Option<bool>,
}

/// What applies to one model: its entry laid over `"*"`'s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubModelSettings {
    /// Idle time before an unload; `None` or zero: never.
    pub idle_timeout: Option<Duration>,
    /// Never unloaded by llamactl on its own.
    pub pinned: bool,
}

/// The settings of `model` (by id, or by one of its aliases) from an instance's `sub_models`.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::InstanceOptions;
/// use llamactl_core::options::sub_model_settings;
///
/// let options = InstanceOptions::from_json(r#"{"backend_type": "llama_cpp",
///     "backend_options": {"models_dir": "/models"},
///     "sub_models": {"*": {"idle_timeout": "30s"}, "big": {"pinned": true}}}"#)?;
/// let big = sub_model_settings(&options.sub_models, "big", &[]);
/// assert!(big.pinned);
/// assert_eq!(big.idle_timeout, Some(Duration::from_secs(30)));
/// assert!(!sub_model_settings(&options.sub_models, "small", &[]).pinned);
/// # Ok::<(), llamactl_core::OptionsError>(())
/// ```
pub fn sub_model_settings(
    entries: &BTreeMap<String, SubModelOptions>,
    model: &str,
    aliases: &[String],
) -> SubModelSettings {
    let every = entries.get(EVERY_MODEL);
    let own = entries.get(model).or_else(|| aliases.iter().find_map(|a| entries.get(a.as_str())));
    let pick_duration = |f: fn(&SubModelOptions) -> Option<Duration>| own.and_then(f).or_else(|| every.and_then(f));
    let pick_bool = |f: fn(&SubModelOptions) -> Option<bool>| own.and_then(f).or_else(|| every.and_then(f));
    SubModelSettings {
        idle_timeout: pick_duration(|o| o.idle_timeout).filter(|d| !d.is_zero()),
        pinned: pick_bool(|o| o.pinned).unwrap_or(false),
    }
}

/// Reads `sub_models` (absent or null: none).
pub(crate) fn parse(value: Option<&Value>) -> Result<BTreeMap<String, SubModelOptions>, OptionsError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(OptionsError::wrong_type("sub_models", "expected an object keyed by model id or \"*\"")),
    };
    let mut entries = BTreeMap::new();
    for (model, entry) in map {
        let field = |key: &str| format!("sub_models.{model}.{key}");
        let Value::Object(entry) = entry else {
            return Err(OptionsError::wrong_type(format!("sub_models.{model}"), "expected an object"));
        };
        let mut options = SubModelOptions::default();
        for (key, value) in entry {
            match key.as_str() {
                "idle_timeout" if !value.is_null() => {
                    options.idle_timeout = Some(
                        duration::parse(value, DefaultUnit::Minutes)
                            .map_err(|m| OptionsError::wrong_type(field(key), m))?,
                    );
                }
                "pinned" if !value.is_null() => {
                    options.pinned = Some(
                        value
                            .as_bool()
                            .ok_or_else(|| OptionsError::wrong_type(field(key), "expected true or false"))?,
                    );
                }
                "idle_timeout" | "pinned" => {}
                _ => return Err(OptionsError::invalid(field(key), "unknown setting (known: idle_timeout, pinned)")),
            }
        }
        entries.insert(model.clone(), options);
    }
    Ok(entries)
}

/// The JSON form of `sub_models` (`None` when empty, so that it is left out).
pub(crate) fn render(entries: &BTreeMap<String, SubModelOptions>) -> Option<Value> {
    if entries.is_empty() {
        return None;
    }
    let map: Map<String, Value> = entries
        .iter()
        .map(|(model, options)| {
            let mut entry = Map::new();
            if let Some(idle) = options.idle_timeout {
                entry.insert("idle_timeout".into(), duration::render(idle, DefaultUnit::Minutes));
            }
            if let Some(pinned) = options.pinned {
                entry.insert("pinned".into(), Value::from(pinned));
            }
            (model.clone(), Value::Object(entry))
        })
        .collect();
    Some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_model_s_own_entry_wins_over_every_model_s() {
        let entries = parse(Some(&json!({
            "*": {"idle_timeout": 5, "pinned": false},
            "alpha": {"pinned": true},
            "beta": {"idle_timeout": 0},
        })))
        .unwrap();
        let alpha = sub_model_settings(&entries, "alpha", &[]);
        assert_eq!(alpha, SubModelSettings { idle_timeout: Some(Duration::from_secs(300)), pinned: true });
        // Zero means never.
        assert_eq!(sub_model_settings(&entries, "beta", &[]).idle_timeout, None);
        // An alias finds the entry too.
        assert!(sub_model_settings(&entries, "org/alpha:Q4", &["alpha".into()]).pinned);
        assert_eq!(sub_model_settings(&BTreeMap::new(), "x", &[]), SubModelSettings::default());
    }

    #[test]
    fn errors_name_the_field() {
        let wrong = |v: Value| parse(Some(&v)).unwrap_err().to_string();
        assert!(wrong(json!([1])).contains("sub_models"));
        assert!(wrong(json!({"a": 1})).contains("sub_models.a"));
        assert!(wrong(json!({"a": {"pinned": "yes"}})).contains("sub_models.a.pinned"));
        assert!(wrong(json!({"a": {"idle_timeout": "soon"}})).contains("sub_models.a.idle_timeout"));
        assert!(wrong(json!({"a": {"pin": true}})).contains("sub_models.a.pin"));
    }

    #[test]
    fn renders_what_it_parses() {
        let value = json!({"*": {"idle_timeout": "30s"}, "m": {"pinned": true}});
        let entries = parse(Some(&value)).unwrap();
        assert_eq!(parse(render(&entries).as_ref()).unwrap(), entries);
        assert_eq!(render(&BTreeMap::new()), None);
    }
}
