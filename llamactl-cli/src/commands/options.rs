//! Building instance options from flags, a file and a pasted command line.

use llamactl_api::Client;
use llamactl_api::types::INSTANCE_FIELDS;
use serde_json::{Map, Value};

use crate::cli::OptionFlags;
use crate::error::{CliError, context};

fn object<'a>(value: &'a mut Value, field: &str) -> Result<&'a mut Map<String, Value>, CliError> {
    if value[field].is_null() {
        value[field] = Value::Object(Map::new());
    }
    value[field].as_object_mut().ok_or_else(|| CliError::Usage(format!("{field} in the options is not an object")))
}

fn pair<'a>(text: &'a str, flag: &str) -> Result<(&'a str, &'a str), CliError> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim(), value)),
        _ => Err(CliError::Usage(format!("{flag} {text:?}: expected KEY=VALUE"))),
    }
}

/// The parse-command route for a backend type, guessed from the command when not given.
fn parse_route(backend: Option<&str>, command: &str) -> &'static str {
    match backend {
        Some("vllm") => "vllm",
        Some("mlx_lm" | "mlx") => "mlx",
        Some(_) => "llama-cpp",
        None if command.contains("vllm") => "vllm",
        None if command.contains("mlx_lm") => "mlx",
        None => "llama-cpp",
    }
}

/// Reads a JSON or YAML file of options.
pub fn read_file(path: &std::path::Path) -> Result<Value, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let value: Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(_) => serde_norway::from_str(&text).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?,
    };
    // A whole instance as printed by `instance show -o json` carries its options under "options".
    let options = if value.get("options").is_some_and(Value::is_object) && value.get("backend_type").is_none() {
        value["options"].clone()
    } else {
        value
    };
    if !options.is_object() {
        return Err(CliError::Usage(format!("{}: expected an object of instance options", path.display())));
    }
    Ok(options)
}

/// `base` (the current options, or `{}`), replaced by `--file`, then changed by the other
/// flags.
pub async fn build(client: &Client, flags: &OptionFlags, base: Value) -> Result<Value, CliError> {
    let mut options = match &flags.file {
        Some(path) => read_file(path)?,
        None => base,
    };
    if !options.is_object() {
        options = Value::Object(Map::new());
    }
    if let Some(command) = &flags.from_command {
        let route = parse_route(flags.backend.as_deref(), command);
        let parsed = client.parse_command(route, command).await.map_err(context("cannot import the command line"))?;
        options["backend_type"] = Value::from(parsed.backend_type.clone());
        let backend = object(&mut options, "backend_options")?;
        for (key, value) in &parsed.backend_options {
            backend.insert(key.clone(), value.clone());
        }
    }
    if let Some(backend) = &flags.backend {
        options["backend_type"] = Value::from(backend.as_str());
    }
    if let Some(model) = &flags.model {
        object(&mut options, "backend_options")?.insert("model".into(), Value::from(model.as_str()));
    }
    for text in &flags.options {
        let (key, raw) = pair(text, "--option")?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::from(raw));
        // Instance options by name (auto_restart, idle_timeout, group, ...); the rest are backend options.
        if INSTANCE_FIELDS.contains(&key) {
            options[key] = value;
        } else {
            object(&mut options, "backend_options")?.insert(key.to_owned(), value);
        }
    }
    for text in &flags.env {
        let (key, value) = pair(text, "--env")?;
        object(&mut options, "environment")?.insert(key.to_owned(), Value::from(value));
    }
    if options.get("backend_type").is_none() {
        return Err(CliError::Usage(
            "no backend: give --backend (llama_cpp, mlx_lm, vllm, custom), --from-command or --file".into(),
        ));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_are_json_where_they_parse() {
        let flags = OptionFlags {
            backend: Some("llama_cpp".into()),
            model: Some("/m.gguf".into()),
            options: vec!["c=4096".into(), "idle_timeout=\"30s\"".into(), "flash_attn=on".into(), "jinja=false".into()],
            env: vec!["A=b=c".into()],
            from_command: None,
            file: None,
        };
        let client = Client::new("http://127.0.0.1:1", None).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let options = runtime.block_on(build(&client, &flags, Value::Object(Map::new()))).unwrap();
        assert_eq!(
            options,
            serde_json::json!({
                "backend_type": "llama_cpp",
                "backend_options": {"model": "/m.gguf", "c": 4096, "flash_attn": "on", "jinja": false},
                "idle_timeout": "30s",
                "environment": {"A": "b=c"}
            })
        );
    }

    #[test]
    fn bad_pairs_and_missing_backends_are_usage_errors() {
        let client = Client::new("http://127.0.0.1:1", None).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let flags = |options: Vec<String>, backend: Option<String>| OptionFlags {
            backend,
            model: None,
            options,
            env: vec![],
            from_command: None,
            file: None,
        };
        let err = runtime
            .block_on(build(&client, &flags(vec!["novalue".into()], Some("vllm".into())), Value::Null))
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--option \"novalue\""), "{err}");
        let err = runtime.block_on(build(&client, &flags(vec![], None), Value::Null)).unwrap_err();
        assert!(err.to_string().starts_with("no backend"), "{err}");
    }
}
