//! What a change of options asks of an instance that runs: most changes restart its backend,
//! but some are llamactl's alone, and a llama.cpp router re-reads its presets without one.

use super::{BackendOptions, InstanceOptions};

/// How a running instance takes new options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionsChange {
    /// Its backend starts again with them.
    Restart,
    /// Nothing changes for the backend (only llamactl's own scheduling of a router's models,
    /// `sub_models`, changed).
    Nothing,
    /// Only a router's `preset_ini` text changed: the file is written again and the router
    /// re-reads its model sources, keeping the models it runs.
    ReloadPresets,
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
/// assert_eq!(options_change(&presets, &more_presets), OptionsChange::ReloadPresets);
/// assert_eq!(options_change(&presets, &pinned), OptionsChange::Nothing);
/// assert_eq!(options_change(&presets, &with("")), OptionsChange::Restart); // the flag goes
/// assert_eq!(options_change(&presets, &with(r#", "preset_ini": "[a]\nmodel = /a.gguf", "group": "g""#)), OptionsChange::Restart);
/// ```
pub fn options_change(old: &InstanceOptions, new: &InstanceOptions) -> OptionsChange {
    let backend_part = |o: &InstanceOptions| {
        let mut part = o.clone();
        part.sub_models.clear();
        part.preset_ini = None;
        part
    };
    if backend_part(old) != backend_part(new) {
        return OptionsChange::Restart;
    }
    let router = matches!(&new.backend, BackendOptions::LlamaCpp(llama) if llama.is_router());
    match (&old.preset_ini, &new.preset_ini) {
        (a, b) if a == b => OptionsChange::Nothing,
        (Some(_), Some(_)) if router => OptionsChange::ReloadPresets,
        _ => OptionsChange::Restart,
    }
}
