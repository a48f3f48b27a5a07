//! What each backend needs to be run: its command line, its readiness endpoint and the model
//! name a request to it should carry.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::options::{
    BackendOptions, BackendType, CustomOptions, InstanceOptions, LlamaCppOptions, MlxLmOptions, VllmOptions,
};

/// Where a backend is told to listen, decided by the manager at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Address the backend binds (from the options, else the manager's backend host).
    pub host: String,
    /// Port: the pinned one, or one allocated for this run.
    pub port: u16,
}

impl Listen {
    /// The address to connect to: the bind address, except that a wildcard (`0.0.0.0`, `::`) is
    /// reached through the loopback address.
    ///
    /// ```
    /// use llamactl_core::backend::Listen;
    /// assert_eq!(Listen { host: "0.0.0.0".into(), port: 1 }.connect_host(), "127.0.0.1");
    /// assert_eq!(Listen { host: "::".into(), port: 1 }.connect_host(), "::1");
    /// assert_eq!(Listen { host: "10.0.0.2".into(), port: 1 }.connect_host(), "10.0.0.2");
    /// ```
    pub fn connect_host(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) if v4.is_unspecified() => "127.0.0.1".into(),
            Ok(IpAddr::V6(v6)) if v6.is_unspecified() => "::1".into(),
            _ => self.host.clone(),
        }
    }

    /// `http://host:port`, with IPv6 addresses in brackets.
    pub fn base_url(&self) -> String {
        let host = self.connect_host();
        if host.contains(':') {
            format!("http://[{host}]:{}", self.port)
        } else {
            format!("http://{host}:{}", self.port)
        }
    }
}

/// Per-backend settings from the manager's configuration (the Go llamactl's
/// `backends.<name>.{command,args,environment}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendSettings {
    /// Program to run (default: `llama-server`, `mlx_lm.server` or `vllm`).
    pub command: Option<String>,
    /// Arguments placed before the instance's own.
    pub args: Vec<String>,
    /// Environment for every instance of this backend (an instance's own entries win).
    pub environment: BTreeMap<String, String>,
}

/// Settings for every backend type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackendsSettings {
    /// llama.cpp (`backends.llama-cpp` in the Go llamactl's YAML).
    #[serde(rename = "llama-cpp", alias = "llama_cpp")]
    pub llama_cpp: BackendSettings,
    /// mlx_lm (`backends.mlx`).
    #[serde(rename = "mlx", alias = "mlx_lm")]
    pub mlx_lm: BackendSettings,
    /// vLLM (`backends.vllm`).
    pub vllm: BackendSettings,
}

impl BackendsSettings {
    /// The settings for `backend` (custom backends have none).
    pub fn for_backend(&self, backend: BackendType) -> Option<&BackendSettings> {
        match backend {
            BackendType::LlamaCpp => Some(&self.llama_cpp),
            BackendType::MlxLm => Some(&self.mlx_lm),
            BackendType::Vllm => Some(&self.vllm),
            BackendType::Custom => None,
        }
    }

    /// The program `backend` runs unless an instance overrides it: the configured command,
    /// else the backend's default (custom backends name their own: `None`).
    ///
    /// ```
    /// use llamactl_core::BackendType;
    /// use llamactl_core::backend::BackendsSettings;
    /// let mut settings = BackendsSettings::default();
    /// assert_eq!(settings.program(BackendType::LlamaCpp).as_deref(), Some("llama-server"));
    /// settings.vllm.command = Some("/opt/vllm/bin/vllm".into());
    /// assert_eq!(settings.program(BackendType::Vllm).as_deref(), Some("/opt/vllm/bin/vllm"));
    /// assert_eq!(settings.program(BackendType::Custom), None);
    /// ```
    pub fn program(&self, backend: BackendType) -> Option<String> {
        self.for_backend(backend)
            .and_then(|c| c.command.clone())
            .or_else(|| backend.default_command().map(str::to_owned))
    }
}

/// A fully resolved command: program, arguments and the environment added to the manager's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The program (looked up on `PATH` when it has no slash).
    pub program: String,
    /// Its arguments, in order.
    pub args: Vec<String>,
    /// Variables added to (or replacing in) the inherited environment.
    pub environment: BTreeMap<String, String>,
}

impl std::fmt::Display for CommandLine {
    /// Shell-like rendering for logs and error messages (quoted where needed, always one line;
    /// never executed): see [`shell_quote`].
    ///
    /// ```
    /// # use llamactl_core::backend::CommandLine;
    /// let command = CommandLine {
    ///     program: "/bin/echo".into(),
    ///     args: vec!["a b".into(), "x\nstarting: fake".into()],
    ///     environment: Default::default(),
    /// };
    /// assert_eq!(command.to_string(), r"/bin/echo 'a b' $'x\nstarting: fake'");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shell_quote(&self.program))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
    }
}

/// `word` written as a POSIX shell would read it back, for display: as it is when it holds only
/// characters no shell treats specially, else in single quotes, and as a `$'...'` string with
/// backslash escapes when it holds a character that would change how the line reads — a
/// control character (newline, carriage return, escape, ...), a line or paragraph separator, a
/// bidirectional override. The result is always one line and shows every character, so an
/// argument cannot fake lines in a log.
///
/// ```
/// use llamactl_core::backend::shell_quote;
/// assert_eq!(shell_quote("--ctx-size"), "--ctx-size");
/// assert_eq!(shell_quote(""), "''");
/// assert_eq!(shell_quote("it's $(x)"), r"'it'\''s $(x)'");
/// assert_eq!(shell_quote("a\nb\t'c'\\"), r"$'a\nb\t\'c\'\\'");
/// assert_eq!(shell_quote("\u{1b}[31m\u{202e}"), r"$'\x1b[31m\u202e'");
/// ```
pub fn shell_quote(word: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.into();
    }
    if !word.chars().any(changes_the_line) {
        return format!("'{}'", word.replace('\'', r"'\''")).into();
    }
    let mut quoted = String::with_capacity(word.len() + 8);
    quoted.push_str("$'");
    for c in word.chars() {
        match c {
            '\\' => quoted.push_str(r"\\"),
            '\'' => quoted.push_str(r"\'"),
            '\n' => quoted.push_str(r"\n"),
            '\r' => quoted.push_str(r"\r"),
            '\t' => quoted.push_str(r"\t"),
            c if changes_the_line(c) && c.is_ascii() => quoted.push_str(&format!(r"\x{:02x}", u32::from(c))),
            c if changes_the_line(c) => quoted.push_str(&format!(r"\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted.into()
}

/// A character that, written raw, would break a line or change how the rest of it is shown.
fn changes_the_line(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{feff}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// What the manager needs to know about a backend.
pub trait Backend {
    /// Which backend this is.
    fn backend_type(&self) -> BackendType;
    /// The instance-specific arguments, after the program and any configured arguments.
    fn args(&self, name: &str, listen: &Listen) -> Vec<String>;
    /// Path answering 200 once the model is loaded.
    fn readiness_path(&self) -> &str {
        "/health"
    }
    /// The `model` value requests must carry, if the backend insists on one; `None` means
    /// requests pass through unchanged.
    fn request_model(&self) -> Option<String>;
}

impl Backend for LlamaCppOptions {
    fn backend_type(&self) -> BackendType {
        BackendType::LlamaCpp
    }
    fn args(&self, _name: &str, listen: &Listen) -> Vec<String> {
        let mut args = vec!["--host".to_owned(), listen.host.clone(), "--port".to_owned(), listen.port.to_string()];
        self.push_typed_args(&["host", "port"], &mut args);
        if self.is_router() {
            // llamactl loads, unloads and evicts the router's models itself (within the
            // options' `models_max`): the router must do none of it on its own.
            self.extra.push_args_except(crate::options::llama_cpp::ROUTER_SCHEDULING_KEYS, &mut args);
            args.extend(["--models-max".to_owned(), "0".to_owned(), "--no-models-autoload".to_owned()]);
        } else {
            self.extra.push_args(&mut args);
        }
        args
    }
    fn request_model(&self) -> Option<String> {
        // llama-server answers to any model name; an alias is what it reports.
        None
    }
}

impl Backend for MlxLmOptions {
    fn backend_type(&self) -> BackendType {
        BackendType::MlxLm
    }
    fn args(&self, _name: &str, listen: &Listen) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(model) = &self.model {
            args.extend(["--model".to_owned(), model.clone()]);
        }
        args.extend(["--host".to_owned(), listen.host.clone(), "--port".to_owned(), listen.port.to_string()]);
        self.push_typed_args(&["model", "host", "port"], &mut args);
        self.extra.push_args(&mut args);
        args
    }
    fn request_model(&self) -> Option<String> {
        // Any other name makes mlx_lm.server try to fetch that model from the hub.
        self.model.clone()
    }
}

impl Backend for VllmOptions {
    fn backend_type(&self) -> BackendType {
        BackendType::Vllm
    }
    fn args(&self, _name: &str, listen: &Listen) -> Vec<String> {
        let mut args = vec!["serve".to_owned()];
        if let Some(model) = &self.model {
            args.push(model.clone());
        }
        args.extend(["--host".to_owned(), listen.host.clone(), "--port".to_owned(), listen.port.to_string()]);
        self.push_typed_args(&["model", "host", "port"], &mut args);
        self.extra.push_args(&mut args);
        args
    }
    fn request_model(&self) -> Option<String> {
        self.served_model_name.clone().or_else(|| self.model.clone())
    }
}

impl Backend for CustomOptions {
    fn backend_type(&self) -> BackendType {
        BackendType::Custom
    }
    fn args(&self, name: &str, listen: &Listen) -> Vec<String> {
        let fill = |arg: &str| {
            arg.replace("{host}", &listen.host)
                .replace("{port}", &listen.port.to_string())
                .replace("{model}", self.model.as_deref().unwrap_or(""))
                .replace("{name}", name)
        };
        let mut args: Vec<String> = self.args.iter().flatten().map(|a| fill(a)).collect();
        self.extra.push_args(&mut args);
        args
    }
    fn readiness_path(&self) -> &str {
        self.health_path.as_deref().unwrap_or("/health")
    }
    fn request_model(&self) -> Option<String> {
        self.request_model.clone()
    }
}

impl BackendOptions {
    /// This backend's [`Backend`] implementation.
    pub fn as_backend(&self) -> &dyn Backend {
        match self {
            Self::LlamaCpp(o) => o,
            Self::MlxLm(o) => o,
            Self::Vllm(o) => o,
            Self::Custom(o) => o,
        }
    }
}

/// Builds the full command for an instance: program (the instance's `command_override`, else
/// the configured command, else the backend's default), configured arguments, the backend's
/// arguments; environment = configured entries overlaid with the instance's.
///
/// ```
/// use llamactl_core::backend::{build_command, BackendsSettings, Listen};
/// use llamactl_core::InstanceOptions;
///
/// let options = InstanceOptions::from_json(
///     r#"{"backend_type":"vllm","backend_options":{"model":"/m","tp":2,"enforce_eager":false}}"#,
/// )?;
/// let listen = Listen { host: "127.0.0.1".into(), port: 8001 };
/// let command = build_command("v1", &options, &BackendsSettings::default(), &listen).unwrap();
/// assert_eq!(command.program, "vllm");
/// assert_eq!(
///     command.args,
///     ["serve", "/m", "--host", "127.0.0.1", "--port", "8001", "--tensor-parallel-size", "2", "--no-enforce-eager"]
/// );
/// # Ok::<(), llamactl_core::OptionsError>(())
/// ```
pub fn build_command(
    name: &str,
    options: &InstanceOptions,
    settings: &BackendsSettings,
    listen: &Listen,
) -> Option<CommandLine> {
    let backend_type = options.backend.backend_type();
    let configured = settings.for_backend(backend_type);
    let program = match &options.backend {
        BackendOptions::Custom(custom) => options.command_override.clone().or_else(|| custom.command.clone())?,
        _ => options.command_override.clone().or_else(|| settings.program(backend_type))?,
    };
    let mut args: Vec<String> = configured.map(|c| c.args.clone()).unwrap_or_default();
    let mut own = options.backend.as_backend().args(name, listen);
    // A configuration written for the Go llamactl may already carry vLLM's `serve` subcommand.
    if backend_type == BackendType::Vllm
        && args.iter().any(|a| a == "serve")
        && own.first().is_some_and(|a| a == "serve")
    {
        own.remove(0);
    }
    args.extend(own);
    let mut environment = configured.map(|c| c.environment.clone()).unwrap_or_default();
    environment.extend(options.environment.clone());
    Some(CommandLine { program, args, environment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendered_command_line_is_one_line_whatever_its_arguments_hold() {
        let args =
            ["ok", "x\nstarting: fake", "\r\u{1b}[2K", "a\u{85}b\u{2028}c\u{202e}d", "tab\there", "\u{7f}", "é ü"];
        let command = CommandLine {
            program: "/opt/my server/bin".into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            environment: BTreeMap::new(),
        };
        let shown = command.to_string();
        assert_eq!(
            shown,
            r"'/opt/my server/bin' ok $'x\nstarting: fake' $'\r\x1b[2K' $'a\u0085b\u2028c\u202ed' $'tab\there' $'\x7f' 'é ü'"
        );
        assert!(!shown.contains(changes_the_line), "{shown:?}");
    }
}
