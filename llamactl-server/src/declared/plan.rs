//! The plan of a reload, decided without touching anything: what happens to each declared
//! instance, and which global settings change and whether they take effect now. Pure: the
//! instances as they are and the declarations as read go in, the plan comes out.

use std::collections::BTreeMap;

pub use llamactl_api::reload::{Action, Effect, InstancePlan, SettingPlan};
use llamactl_core::options::{OptionsChange, options_change};
use llamactl_core::{InstanceName, InstanceOptions};
use serde_json::Value;

use super::read::Declared;
use crate::config::Config;

/// An instance as it is now, for planning.
#[derive(Debug, Clone)]
pub struct Current {
    /// Its options (`None`: unreadable, stored as they are).
    pub options: Option<InstanceOptions>,
    /// The file that declared it, if one did.
    pub declared_in: Option<String>,
    /// Whether a backend runs (or starts).
    pub running: bool,
}

/// Why a set of declarations cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The file declares a name that an instance created over the API already has.
    #[error(
        "instance {name} is declared in {file}, but an instance of that name was created over the API; rename one, or delete the API's"
    )]
    TakenByApi {
        /// The name.
        name: String,
        /// The declaring file.
        file: String,
    },
}

/// The plan for the instances: every declared one, every formerly declared one; instances
/// created over the API are left out (a reload never touches them).
pub fn plan_instances(
    current: &BTreeMap<InstanceName, Current>,
    declared: &BTreeMap<InstanceName, Declared>,
) -> Result<Vec<InstancePlan>, PlanError> {
    let mut plan = Vec::new();
    for (name, wanted) in declared {
        let file = wanted.file.display().to_string();
        let Some(now) = current.get(name) else {
            plan.push(InstancePlan { name: name.to_string(), action: Action::Create, file, changes: Vec::new() });
            continue;
        };
        if now.declared_in.is_none() {
            return Err(PlanError::TakenByApi { name: name.to_string(), file });
        }
        let (action, changes) = match &now.options {
            None => {
                (if now.running { Action::UpdateRestart } else { Action::UpdateNoRestart }, vec!["(unreadable)".into()])
            }
            Some(old) => {
                let changes = changed_paths(&old.to_json_value(), &wanted.options.to_json_value());
                let action = if changes.is_empty() {
                    Action::Unchanged
                } else if now.running && options_change(old, &wanted.options) == OptionsChange::Restart {
                    Action::UpdateRestart
                } else {
                    Action::UpdateNoRestart
                };
                (action, changes)
            }
        };
        plan.push(InstancePlan { name: name.to_string(), action, file, changes });
    }
    for (name, now) in current {
        if let Some(file) = &now.declared_in
            && !declared.contains_key(name)
        {
            plan.push(InstancePlan {
                name: name.to_string(),
                action: Action::Delete,
                file: file.clone(),
                changes: Vec::new(),
            });
        }
    }
    plan.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(plan)
}

/// `in_force` with the settings a reload takes at once taken from `new`: the declarations,
/// templates and `config.*`, and what the manager takes live
/// ([`llamactl_core::Manager::reconfigure`]): the port range, the limits, the instance defaults
/// and timeouts, the backends' commands. This is the one list of live settings: the plan's
/// effects are derived from it ([`plan_settings`]).
pub fn take_live_settings(in_force: &Config, new: &Config) -> Config {
    let mut next = in_force.clone();
    let (i, n) = (&mut next.instances, &new.instances);
    i.definitions = n.definitions.clone();
    i.definitions_dir = n.definitions_dir.clone();
    i.port_range = n.port_range;
    i.max_instances = n.max_instances;
    i.max_running_instances = n.max_running_instances;
    i.group_limits = n.group_limits.clone();
    i.enable_lru_eviction = n.enable_lru_eviction;
    i.default_idle_timeout = n.default_idle_timeout;
    i.default_auto_restart = n.default_auto_restart;
    i.default_max_restarts = n.default_max_restarts;
    i.default_restart_delay = n.default_restart_delay;
    i.default_on_demand_start = n.default_on_demand_start;
    i.startup_timeout = n.startup_timeout;
    i.stop_timeout = n.stop_timeout;
    i.drain_timeout = n.drain_timeout;
    i.shutdown_policy = n.shutdown_policy;
    for (mine, theirs) in [
        (&mut next.backends.llama_cpp, &new.backends.llama_cpp),
        (&mut next.backends.vllm, &new.backends.vllm),
        (&mut next.backends.mlx, &new.backends.mlx),
    ] {
        mine.command = theirs.command.clone();
        mine.args = theirs.args.clone();
        mine.environment = theirs.environment.clone();
    }
    next.templates = new.templates.clone();
    next.config = new.config.clone();
    next.origin = new.origin.clone();
    next
}

/// The changed global settings between the configuration in force and a new one, each with
/// its effect: applied live where [`take_live_settings`] takes the new value, else only at a
/// server restart. Declared instances and templates are planned per instance, not here.
///
/// ```
/// use llamactl_server::config::Config;
/// use llamactl_server::declared::plan::{Effect, plan_settings};
/// let old = Config::default();
/// let mut new = Config::default();
/// new.server.port = 9999;
/// new.instances.max_running_instances = 2;
/// let plan = plan_settings(&old, &new);
/// let effects: Vec<(&str, Effect)> = plan.iter().map(|p| (p.key.as_str(), p.effect)).collect();
/// assert_eq!(effects, [("instances.max_running_instances", Effect::AppliedLive), ("server.port", Effect::NeedsServerRestart)]);
/// ```
pub fn plan_settings(in_force: &Config, new: &Config) -> Vec<SettingPlan> {
    let json = |c: &Config| serde_json::to_value(c).unwrap_or_default();
    let (old, new_json, taken) = (json(in_force), json(new), json(&take_live_settings(in_force, new)));
    // What the reload leaves different from the new file is what waits for a restart.
    let waiting: std::collections::BTreeSet<String> = changed_paths(&taken, &new_json).into_iter().collect();
    changed_paths(&old, &new_json)
        .into_iter()
        .filter(|key| !under(key, "instances.definitions") && !under(key, "templates"))
        .map(|key| {
            let effect = if waiting.contains(&key) { Effect::NeedsServerRestart } else { Effect::AppliedLive };
            SettingPlan { key, effect }
        })
        .collect()
}

fn under(key: &str, prefix: &str) -> bool {
    key == prefix || key.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.'))
}

/// The dotted paths where `a` and `b` differ: down through objects, a list or scalar as one.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: Option<&Value>, b: Option<&Value>, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for key in keys {
                    let next = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                    walk(x.get(key), y.get(key), &next, out);
                }
            }
            (x, y) if x != y => out.push(path.to_owned()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(Some(a), Some(b), "", &mut out);
    out
}

#[cfg(test)]
mod tests;
