//! Admission of a start under the running limits: a slot reserved at once, or the least
//! recently used idle instance evicted to make room (when the configuration and the caller
//! allow it), or a typed refusal saying why nothing could be evicted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Manager;
use super::command::Command;
use super::error::{Limit, ManagerError};
use super::handle::Handle;
use super::slots::SlotReservation;
use crate::{InstanceName, InstanceStatus};

impl Manager {
    /// Admits a start of `handle` under the running limits, evicting least recently used idle
    /// instances if needed and allowed (by the configuration and by `may_evict`).
    pub(super) async fn admit(
        &self,
        handle: &Handle,
        deadline: Instant,
        may_evict: bool,
    ) -> Result<SlotReservation, ManagerError> {
        let ctx = &self.shared.ctx;
        let name = handle.name.as_str();
        let group = handle.group();
        let _turn = match ctx.slots.admission.try_lock() {
            Ok(turn) => turn,
            Err(_) => tokio::time::timeout_at(deadline, ctx.slots.admission.lock()).await.map_err(|_| {
                ManagerError::Timeout {
                    name: name.to_owned(),
                    waited: Duration::ZERO,
                    status: handle.state.borrow().runtime.status,
                }
            })?,
        };
        // Instances that declined eviction in this admission, with their reason.
        let mut refused: Vec<(InstanceName, String)> = Vec::new();
        loop {
            let limit = match ctx.slots.try_reserve(name, group.as_deref()) {
                Ok(reservation) => return Ok(reservation),
                Err(limit) => limit,
            };
            let exhausted = |detail: String, retry_after: Duration| ManagerError::CapacityExhausted {
                name: name.to_owned(),
                limit: limit.clone(),
                detail,
                retry_after,
            };
            if !ctx.config().enable_lru_eviction {
                return Err(exhausted("LRU eviction is disabled".into(), Duration::from_secs(30)));
            }
            if !may_evict {
                return Err(exhausted("this request may not evict other instances".into(), Duration::from_secs(30)));
            }
            let victim = match self.pick_victim(&limit, name, &refused) {
                Ok(victim) => victim,
                Err(reasons) => {
                    // Requests end soon; loading and pinned instances stay a while.
                    let busy = reasons.iter().any(|r| r.contains("in flight"));
                    let retry_after = if busy { Duration::from_secs(2) } else { Duration::from_secs(30) };
                    return Err(exhausted(reasons.join("; "), retry_after));
                }
            };
            let by = name.to_owned();
            let (reply, answer) = oneshot::channel();
            if victim.post(Box::new(Command::Evict { by, reply })).is_err() {
                refused.push((victim.name.clone(), format!("{} is gone", victim.name)));
                continue;
            }
            match tokio::time::timeout_at(deadline, answer).await {
                Ok(Ok(Ok(()))) => tracing::info!(instance = name, evicted = %victim.name, "evicted to make room"),
                Ok(Ok(Err(why))) => refused.push((victim.name.clone(), why)),
                Ok(Err(_)) => refused.push((victim.name.clone(), format!("{} is gone", victim.name))),
                Err(_) => {
                    return Err(ManagerError::Timeout {
                        name: name.to_owned(),
                        waited: Duration::ZERO,
                        status: handle.state.borrow().runtime.status,
                    });
                }
            }
        }
    }

    /// The least recently used instance that holds a slot counting against `limit`, is ready,
    /// idle and not pinned, and has not refused already; or why there is none, per instance.
    fn pick_victim(
        &self,
        limit: &Limit,
        requester: &str,
        refused: &[(InstanceName, String)],
    ) -> Result<Arc<Handle>, Vec<String>> {
        let handles = self.read_handles();
        let defaults = &self.shared.ctx.config().defaults;
        let mut reasons = Vec::new();
        let mut best: Option<(Instant, Arc<Handle>)> = None;
        for (name, group) in self.shared.ctx.slots.holders() {
            let counts = match limit {
                Limit::Global { .. } => true,
                Limit::Group { group: wanted, .. } => group.as_deref() == Some(wanted.as_str()),
            };
            if name == requester || !counts {
                continue;
            }
            if let Some((_, why)) = refused.iter().find(|(n, _)| n.as_str() == name) {
                reasons.push(why.clone());
                continue;
            }
            let Some(handle) = handles.get(name.as_str()) else { continue };
            let state = handle.state.borrow();
            let pinned = state.options.as_ref().map(|o| defaults.apply(o).idle_timeout.is_zero()).unwrap_or(true);
            let (in_flight, last) = handle.activity.snapshot();
            let why = if state.runtime.status != InstanceStatus::Running {
                Some(format!("{name} is {}", state.runtime.status))
            } else if pinned {
                Some(format!("{name} is pinned (idle_timeout 0)"))
            } else if in_flight > 0 {
                Some(format!("{name} has {in_flight} requests in flight"))
            } else {
                None
            };
            drop(state);
            match why {
                Some(why) => reasons.push(why),
                None if best.as_ref().is_none_or(|(t, _)| last < *t) => best = Some((last, handle.clone())),
                None => {}
            }
        }
        best.map(|(_, handle)| handle).ok_or(reasons)
    }
}
