//! Carrying out the instances' part of a plan on the manager: deletions first (they free
//! places under the limits), then creations and updates, each on its own (one that fails does
//! not hold the others). An update that changes what runs drains the instance's requests in
//! flight before its restart (the manager's `update`); one that does not keeps the same process.

use std::collections::BTreeMap;

use futures::future::join_all;
pub use llamactl_api::reload::Applied;
use llamactl_core::{InstanceName, InstanceStatus, Manager};

use super::plan::{Action, Current, InstancePlan};
use super::read::Declared;

/// The manager's instances as the planner sees them.
pub fn current_instances(manager: &Manager) -> BTreeMap<InstanceName, Current> {
    manager
        .map_instances(|view| {
            let options = view.state.options.as_ref().ok().map(|o| o.as_ref().clone());
            let declared_in = options.as_ref().and_then(|o| o.declared_in.clone());
            let running = matches!(view.state.runtime.status, InstanceStatus::Running | InstanceStatus::Starting);
            (view.name.clone(), Current { options, declared_in, running })
        })
        .into_iter()
        .collect()
}

/// Does what `plan` says; `declared` holds the options of the instances it creates or updates.
pub async fn apply_plan(
    manager: &Manager,
    plan: &[InstancePlan],
    declared: &BTreeMap<InstanceName, Declared>,
) -> Vec<Applied> {
    let deletions = plan.iter().filter(|p| p.action == Action::Delete).map(|p| async move {
        let error = manager.delete(&p.name).await.err().map(|e| e.to_string());
        Applied { name: p.name.clone(), action: p.action, error }
    });
    let mut applied = join_all(deletions).await;
    let changes = plan.iter().filter(|p| !matches!(p.action, Action::Delete | Action::Unchanged)).map(|p| async move {
        let result = match (p.name.parse::<InstanceName>(), declared.get(p.name.as_str())) {
            (Ok(name), Some(wanted)) => {
                let options = wanted.options.clone();
                match p.action {
                    Action::Create => manager.create(name, options).await.map(drop).map_err(|e| e.to_string()),
                    _ => manager.update(name.as_str(), options).await.map(drop).map_err(|e| e.to_string()),
                }
            }
            _ => Err("not in the declarations".to_owned()),
        };
        Applied { name: p.name.clone(), action: p.action, error: result.err() }
    });
    applied.extend(join_all(changes).await);
    applied.extend(plan.iter().filter(|p| p.action == Action::Unchanged).map(|p| Applied {
        name: p.name.clone(),
        action: p.action,
        error: None,
    }));
    applied.sort_by(|a, b| a.name.cmp(&b.name));
    applied
}
