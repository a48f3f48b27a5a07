//! Templates: named, partial instance options that an instance takes values from with
//! `extends: [a, b]`. Templates may extend templates. Later entries win over earlier ones and
//! the instance's own values win over all; objects merge key by key, anything else (lists,
//! strings, numbers) is replaced whole. Every value of the result remembers which layer gave it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The layer a value came from.
pub const OWN: &str = "instance";

/// Options merged from their templates, and where each value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merged options (`extends` kept as the instance gave it).
    pub value: Value,
    /// For every leaf of `value`, by dotted path (`backend_options.ctx_size`): the template
    /// that gave it, or [`OWN`].
    pub origins: BTreeMap<String, String>,
}

/// Why the templates of an instance cannot be merged. The chain reads from the instance to
/// the template at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `extends` names a template that does not exist.
    #[error("extends: unknown template `{name}` ({chain})")]
    Unknown {
        /// The missing name.
        name: String,
        /// `instance -> a -> b`.
        chain: String,
    },
    /// Templates extend each other in a circle.
    #[error("extends: the templates form a cycle: {chain}")]
    Cycle {
        /// `instance -> a -> b -> a`.
        chain: String,
    },
    /// `extends` or a template is not of the right shape.
    #[error("{at}: {message}")]
    Shape {
        /// Where: `extends`, `templates.a`, `templates.a.extends`.
        at: String,
        /// What is wrong.
        message: String,
    },
}

/// Merges `spec` (an instance's options as written, perhaps with `extends`) over its
/// templates. `name` names the instance in error chains.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use serde_json::json;
/// use llamactl_server::declared::templates::resolve;
/// let templates = BTreeMap::from([
///     ("base".to_owned(), json!({"backend_type": "llama_cpp", "backend_options": {"ctx_size": 4096, "threads": 2}})),
///     ("big".to_owned(), json!({"extends": ["base"], "backend_options": {"ctx_size": 32768}})),
/// ]);
/// let merged = resolve(&templates, "q", &json!({"extends": ["big"], "backend_options": {"model": "/q.gguf"}})).unwrap();
/// assert_eq!(merged.value["backend_options"], json!({"ctx_size": 32768, "threads": 2, "model": "/q.gguf"}));
/// assert_eq!(merged.origins["backend_options.ctx_size"], "big");
/// assert_eq!(merged.origins["backend_options.threads"], "base");
/// assert_eq!(merged.origins["backend_options.model"], "instance");
/// ```
pub fn resolve(templates: &BTreeMap<String, Value>, name: &str, spec: &Value) -> Result<Merged, TemplateError> {
    let Value::Object(own) = spec else {
        return Err(TemplateError::Shape { at: name.to_owned(), message: "expected a mapping of options".into() });
    };
    let mut layers = Vec::new();
    let mut chain = vec![name.to_owned()];
    flatten(templates, own, "extends", &mut chain, &mut layers)?;
    let mut value = Map::new();
    let mut origins = BTreeMap::new();
    for (origin, layer) in layers {
        merge_into(&mut value, &layer, origin, "", &mut origins);
    }
    let mut own_part = own.clone();
    let extends = own_part.remove("extends");
    merge_into(&mut value, &own_part, OWN, "", &mut origins);
    match extends {
        Some(extends) => {
            value.insert("extends".into(), extends);
        }
        None => {
            value.remove("extends");
        }
    }
    Ok(Merged { value: Value::Object(value), origins })
}

/// Where each value of already-merged `options` (as stored: `extends` and the merged values)
/// most likely came from, given the templates as they are now: a value equal to what the
/// templates give is theirs, any other is the instance's own.
pub fn origins_of_merged(templates: &BTreeMap<String, Value>, name: &str, options: &Value) -> BTreeMap<String, String> {
    let extends = options.get("extends").cloned().unwrap_or(Value::Null);
    let base = match resolve(templates, name, &serde_json::json!({ "extends": extends })) {
        Ok(base) => base,
        Err(_) => Merged { value: Value::Object(Map::new()), origins: BTreeMap::new() },
    };
    let mut origins = BTreeMap::new();
    for (keys, leaf) in leaf_paths(options) {
        if keys.first().is_some_and(|k| k == "extends") {
            continue;
        }
        let path = keys.join(".");
        let origin = match (lookup(&base.value, &keys), base.origins.get(&path)) {
            (Some(inherited), Some(template)) if inherited == leaf => template.clone(),
            _ => OWN.to_owned(),
        };
        origins.insert(path, origin);
    }
    origins
}

/// The template layers of `own`, deepest first, each without its `extends`.
fn flatten<'t>(
    templates: &'t BTreeMap<String, Value>,
    own: &Map<String, Value>,
    at: &str,
    chain: &mut Vec<String>,
    layers: &mut Vec<(&'t str, Map<String, Value>)>,
) -> Result<(), TemplateError> {
    for parent in extends_of(own, at)? {
        if chain.contains(&parent) {
            chain.push(parent);
            return Err(TemplateError::Cycle { chain: chain.join(" -> ") });
        }
        let Some((key, template)) = templates.get_key_value(&parent) else {
            chain.push(parent.clone());
            return Err(TemplateError::Unknown { name: parent, chain: chain.join(" -> ") });
        };
        let Value::Object(body) = template else {
            return Err(TemplateError::Shape {
                at: format!("templates.{parent}"),
                message: "expected a mapping of options".into(),
            });
        };
        chain.push(parent.clone());
        flatten(templates, body, &format!("templates.{parent}.extends"), chain, layers)?;
        chain.pop();
        let mut body = body.clone();
        body.remove("extends");
        layers.push((key.as_str(), body));
    }
    Ok(())
}

/// The names in `extends`: a list of names, or one name.
fn extends_of(options: &Map<String, Value>, at: &str) -> Result<Vec<String>, TemplateError> {
    let shape = || TemplateError::Shape { at: at.to_owned(), message: "expected a list of template names".into() };
    match options.get("extends") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(one)) => Ok(vec![one.clone()]),
        Some(Value::Array(names)) => names.iter().map(|n| n.as_str().map(str::to_owned).ok_or_else(shape)).collect(),
        Some(_) => Err(shape()),
    }
}

/// Lays `layer` over `target`: objects key by key, anything else replaced; the origins of
/// what it sets become `origin` (a replaced object's leaves are forgotten).
fn merge_into(
    target: &mut Map<String, Value>,
    layer: &Map<String, Value>,
    origin: &str,
    prefix: &str,
    origins: &mut BTreeMap<String, String>,
) {
    for (key, value) in layer {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_into(existing, incoming, origin, &path, origins);
            }
            _ => {
                forget_under(origins, &path);
                for (leaf, _) in leaves(value) {
                    let full = if leaf.is_empty() { path.clone() } else { format!("{path}.{leaf}") };
                    origins.insert(full, origin.to_owned());
                }
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn forget_under(origins: &mut BTreeMap<String, String>, path: &str) {
    let nested = format!("{path}.");
    origins.retain(|k, _| k != path && !k.starts_with(&nested));
}

/// Every leaf of `value` by dotted path (an empty object is a leaf; the root is `""`).
fn leaves(value: &Value) -> Vec<(String, &Value)> {
    leaf_paths(value).into_iter().map(|(path, v)| (path.join("."), v)).collect()
}

/// Every leaf of `value` with the keys leading to it.
fn leaf_paths(value: &Value) -> Vec<(Vec<String>, &Value)> {
    fn walk<'v>(value: &'v Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, &'v Value)>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    path.push(k.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => out.push((path.clone(), value)),
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// The value at a path of keys.
fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

#[cfg(test)]
mod tests;
