//! What a change of options asks of an instance that runs: only a change of what its backend
//! runs with (command line, environment, runtime) restarts it; llamactl's own settings take
//! effect at once, and a llama.cpp router re-reads its presets without a restart.

use super::{BackendOptions, InstanceOptions};

/// How a running instance takes new options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsChange {
    /// Its backend starts again with them.
    Restart,
    /// Nothing changes for the backend: only llamactl's own settings changed (lifecycle,
    /// group, description, a router's `sub_models`), read where they are used.
    Nothing,
    /// Only a router's `preset_ini` text changed (with, perhaps, llamactl's own settings): the
    /// file is written again and the router re-reads its model sources, keeping the models it
    /// runs.
    ReloadPresets,
}

impl InstanceOptions {
    /// The part of the options that decides what runs: the backend's options, environment,
    /// program, Docker settings, nodes and presets. The rest — lifecycle settings
    /// (`auto_restart`, `max_restarts`, `restart_delay`, `on_demand_start`, `idle_timeout`,
    /// `startup_timeout`), `group`, `sub_models`, `description`, `extends`, `declared_in` — is
    /// llamactl's alone, and is cleared here. A container's fingerprint is taken of this part.
    ///
    /// ```
    /// use llamactl_core::InstanceOptions;
    /// let a = InstanceOptions::from_json(r#"{"backend_type": "vllm", "backend_options": {"model": "m"}, "idle_timeout": 5}"#)?;
    /// let b = InstanceOptions::from_json(r#"{"backend_type": "vllm", "backend_options": {"model": "m"}, "description": "mine"}"#)?;
    /// assert_eq!(a.run_part(), b.run_part());
    /// # Ok::<(), llamactl_core::OptionsError>(())
    /// ```
    pub fn run_part(&self) -> InstanceOptions {
        let mut part = self.clone();
        part.auto_restart = None;
        part.max_restarts = None;
        part.restart_delay = None;
        part.on_demand_start = None;
        part.idle_timeout = None;
        part.startup_timeout = None;
        part.group = None;
        part.sub_models.clear();
        part.description = None;
        part.extends.clear();
        part.declared_in = None;
        part
    }
}

/// How a running instance with `old` options takes `new` ones.
///
/// ```
/// use llamactl_core::InstanceOptions;
/// use llamactl_core::options::{OptionsChange, options_change};
/// let with = |extra: &str| InstanceOptions::from_json(&format!(
///     r#"{{"backend_type": "llama_cpp", "backend_options": {{"models_dir": "/m"}}{extra}}}"#)).unwrap();
/// let presets = with(r#", "preset_ini": "[a]\nmodel = /a.gguf""#);
/// let more_presets = with(r#", "preset_ini": "[b]\nmodel = /b.gguf""#);
/// let pinned = with(r#", "preset_ini": "[a]\nmodel = /a.gguf", "sub_models": {"a": {"pinned": true}}"#);
/// let described = with(r#", "preset_ini": "[a]\nmodel = /a.gguf", "description": "ours", "idle_timeout": 10"#);
/// assert_eq!(options_change(&presets, &more_presets), OptionsChange::ReloadPresets);
/// assert_eq!(options_change(&presets, &pinned), OptionsChange::Nothing);
/// assert_eq!(options_change(&presets, &described), OptionsChange::Nothing);
/// assert_eq!(options_change(&presets, &with("")), OptionsChange::Restart); // the flag goes
/// assert_eq!(options_change(&presets, &with(r#", "preset_ini": "[a]\nmodel = /a.gguf", "environment": {"A": "1"}"#)), OptionsChange::Restart);
/// ```
pub fn options_change(old: &InstanceOptions, new: &InstanceOptions) -> OptionsChange {
    let without_presets = |o: &InstanceOptions| {
        let mut part = o.run_part();
        part.preset_ini = None;
        part
    };
    if without_presets(old) != without_presets(new) {
        return OptionsChange::Restart;
    }
    let router = matches!(&new.backend, BackendOptions::LlamaCpp(llama) if llama.is_router());
    match (&old.preset_ini, &new.preset_ini) {
        (a, b) if a == b => OptionsChange::Nothing,
        (Some(_), Some(_)) if router => OptionsChange::ReloadPresets,
        _ => OptionsChange::Restart,
    }
}
