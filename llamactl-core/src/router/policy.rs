//! llamactl's decisions about a router's models, as pure functions: what a listing means, which
//! model makes room for another, which one is idle, how long a failed one waits.

use std::time::Duration;

use llamactl_wire::{SubModelReason, SubModelStatus};

use super::listing::ListedModel;
use crate::options::SubModelSettings;

/// What llamactl last asked the router to do with a model, so that the next listing is read
/// right (an unload asked for is not a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// A load, and why.
    Load(SubModelReason),
    /// An unload, and why.
    Unload(SubModelReason),
}

/// The status a listing gives a model that was `before` (`None`: not known yet), and the
/// reason to record if it changed.
///
/// The router lists a crashed child as `unloaded` with its exit code; llamactl calls a model
/// that held a process and ended without an unload asked for `failed`, and keeps it failed
/// until it loads again.
///
/// ```
/// use llamactl_core::router::{Intent, ListedModel, observe};
/// use llamactl_wire::{SubModelReason, SubModelStatus};
/// let listed = |status: &str, exit_code| ListedModel {
///     id: "m".into(), aliases: vec![], tags: vec![], status: status.into(), exit_code, failed: false, source: None,
/// };
/// let unloaded = listed("unloaded", Some(137));
/// // Not asked for: a crash.
/// assert_eq!(
///     observe(Some(SubModelStatus::Loaded), &unloaded, None),
///     (SubModelStatus::Failed, SubModelReason::Crashed { exit_code: Some(137) })
/// );
/// // Asked for: an unload.
/// let asked = Intent::Unload(SubModelReason::IdleTimeout);
/// assert_eq!(observe(Some(SubModelStatus::Loaded), &unloaded, Some(&asked)), (SubModelStatus::Unloaded, SubModelReason::IdleTimeout));
/// assert_eq!(observe(Some(SubModelStatus::Loading), &listed("loaded", None), None), (SubModelStatus::Loaded, SubModelReason::Ready));
/// ```
pub fn observe(
    before: Option<SubModelStatus>,
    listed: &ListedModel,
    intent: Option<&Intent>,
) -> (SubModelStatus, SubModelReason) {
    let intended = |fallback: SubModelReason| match intent {
        Some(Intent::Load(reason) | Intent::Unload(reason)) => reason.clone(),
        None => fallback,
    };
    let crashed = || SubModelReason::Crashed { exit_code: listed.exit_code };
    match listed.status.as_str() {
        "loaded" => match (before, intent) {
            (None, _) => (SubModelStatus::Loaded, SubModelReason::Discovered),
            (Some(SubModelStatus::Loading), _) | (_, Some(Intent::Load(_))) => {
                (SubModelStatus::Loaded, SubModelReason::Ready)
            }
            _ => (SubModelStatus::Loaded, SubModelReason::Router),
        },
        "loading" => (
            SubModelStatus::Loading,
            if before.is_none() { SubModelReason::Discovered } else { intended(SubModelReason::Router) },
        ),
        "sleeping" => (
            SubModelStatus::Sleeping,
            if before.is_none() { SubModelReason::Discovered } else { SubModelReason::Router },
        ),
        "failed" => (SubModelStatus::Failed, crashed()),
        _ => match (before, intent) {
            (_, Some(Intent::Unload(reason))) => (SubModelStatus::Unloaded, reason.clone()),
            (Some(SubModelStatus::Loading), Some(Intent::Load(_))) if listed.exit_code.is_some() || listed.failed => {
                (SubModelStatus::Failed, SubModelReason::LoadFailed { error: exit_text(listed.exit_code) })
            }
            (Some(status), _) if status.holds_slot() && (listed.failed || listed.exit_code.is_some_and(|c| c != 0)) => {
                (SubModelStatus::Failed, crashed())
            }
            (Some(SubModelStatus::Failed), _) => (SubModelStatus::Failed, crashed()),
            (None, _) => (SubModelStatus::Unloaded, SubModelReason::Discovered),
            _ => (SubModelStatus::Unloaded, SubModelReason::Router),
        },
    }
}

fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("its process exited with code {code} while loading"),
        None => "its process ended while loading".into(),
    }
}

/// A model as the scheduling decisions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its status.
    pub status: SubModelStatus,
    /// Requests in flight to it (streams included), and requests waiting for it to load.
    pub in_flight: u32,
    /// How long since its last request ended (`None`: it never had one).
    pub idle_for: Option<Duration>,
    /// Its settings from the instance's `sub_models`.
    pub settings: SubModelSettings,
}

/// Whether loading `needing` must first unload another model: the models holding a process
/// (`needing` aside) already fill `models_max` (`None`: no limit).
///
/// ```
/// use llamactl_core::router::{Candidate, needs_room};
/// use llamactl_wire::SubModelStatus;
/// let m = |id, status| Candidate { id, status, in_flight: 0, idle_for: None, settings: Default::default() };
/// let models = [m("a", SubModelStatus::Loaded), m("b", SubModelStatus::Loading), m("c", SubModelStatus::Unloaded)];
/// assert!(needs_room(&models, "c", Some(2)));
/// assert!(!needs_room(&models, "c", Some(3)));
/// assert!(!needs_room(&models, "c", None));
/// ```
pub fn needs_room(models: &[Candidate<'_>], needing: &str, models_max: Option<usize>) -> bool {
    let Some(max) = models_max else { return false };
    models.iter().filter(|m| m.id != needing && m.status.holds_slot()).count() >= max
}

/// The model to unload so that `needing` can load: the least recently used of those holding a
/// process that are idle (no request in flight or waiting), loaded or sleeping (never one
/// still loading) and not pinned; one never used goes first. `None`: nothing may go.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::router::{Candidate, eviction_victim};
/// use llamactl_wire::SubModelStatus::*;
/// let m = |id, in_flight, idle_s| Candidate {
///     id, status: Loaded, in_flight, idle_for: Some(Duration::from_secs(idle_s)), settings: Default::default(),
/// };
/// // "a" is busy, so the older of the idle ones goes.
/// assert_eq!(eviction_victim(&[m("a", 1, 90), m("b", 0, 60), m("c", 0, 30)], "d"), Some("b"));
/// assert_eq!(eviction_victim(&[m("a", 1, 90)], "d"), None);
/// ```
pub fn eviction_victim<'a>(models: &[Candidate<'a>], needing: &str) -> Option<&'a str> {
    models
        .iter()
        .filter(|m| m.id != needing)
        .filter(|m| matches!(m.status, SubModelStatus::Loaded | SubModelStatus::Sleeping))
        .filter(|m| m.in_flight == 0 && !m.settings.pinned)
        .max_by_key(|m| m.idle_for.unwrap_or(Duration::MAX))
        .map(|m| m.id)
}

/// Whether `model` has been idle past its `idle_timeout` and should be unloaded.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::options::SubModelSettings;
/// use llamactl_core::router::{Candidate, idle_due};
/// use llamactl_wire::SubModelStatus;
/// let settings = SubModelSettings { idle_timeout: Some(Duration::from_secs(30)), pinned: false };
/// let m = |idle_s, pinned| Candidate {
///     id: "m", status: SubModelStatus::Loaded, in_flight: 0,
///     idle_for: Some(Duration::from_secs(idle_s)), settings: SubModelSettings { pinned, ..settings },
/// };
/// assert!(idle_due(&m(31, false)));
/// assert!(!idle_due(&m(29, false)));
/// assert!(!idle_due(&m(31, true))); // pinned
/// ```
pub fn idle_due(model: &Candidate<'_>) -> bool {
    let Some(timeout) = model.settings.idle_timeout else { return false };
    !model.settings.pinned
        && model.in_flight == 0
        && matches!(model.status, SubModelStatus::Loaded | SubModelStatus::Sleeping)
        && model.idle_for.is_some_and(|idle| idle >= timeout)
}

/// How long a model that failed `failures` times in a row waits before llamactl loads it again:
/// one second, doubling, at most a minute.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::router::retry_delay;
/// assert_eq!(retry_delay(0), Duration::ZERO);
/// assert_eq!(retry_delay(1), Duration::from_secs(1));
/// assert_eq!(retry_delay(3), Duration::from_secs(4));
/// assert_eq!(retry_delay(40), Duration::from_secs(60));
/// ```
pub fn retry_delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64.checked_shl(failures - 1).unwrap_or(u64::MAX).min(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubModelStatus::*;

    fn listed(status: &str, exit_code: Option<i32>, failed: bool) -> ListedModel {
        ListedModel {
            id: "m".into(),
            aliases: vec![],
            tags: vec![],
            status: status.into(),
            exit_code,
            failed,
            source: None,
        }
    }

    #[test]
    fn listings_read_with_what_was_asked() {
        let on_demand = Intent::Load(SubModelReason::OnDemand);
        type Case = (Option<SubModelStatus>, ListedModel, Option<Intent>, SubModelStatus, SubModelReason);
        let cases: Vec<Case> = vec![
            (None, listed("unloaded", None, false), None, Unloaded, SubModelReason::Discovered),
            (None, listed("loaded", None, false), None, Loaded, SubModelReason::Discovered),
            (
                Some(Unloaded),
                listed("loading", None, false),
                Some(on_demand.clone()),
                Loading,
                SubModelReason::OnDemand,
            ),
            (Some(Loading), listed("loaded", None, false), Some(on_demand.clone()), Loaded, SubModelReason::Ready),
            (Some(Unloaded), listed("loaded", None, false), Some(on_demand.clone()), Loaded, SubModelReason::Ready),
            (Some(Unloaded), listed("loaded", None, false), None, Loaded, SubModelReason::Router),
            (Some(Loaded), listed("sleeping", None, false), None, Sleeping, SubModelReason::Router),
            (Some(Loaded), listed("unloaded", None, false), None, Unloaded, SubModelReason::Router),
            (Some(Loaded), listed("unloaded", Some(0), false), None, Unloaded, SubModelReason::Router),
            (
                Some(Loaded),
                listed("unloaded", Some(-9), false),
                None,
                Failed,
                SubModelReason::Crashed { exit_code: Some(-9) },
            ),
            (Some(Sleeping), listed("unloaded", None, true), None, Failed, SubModelReason::Crashed { exit_code: None }),
            (
                Some(Failed),
                listed("unloaded", Some(1), false),
                None,
                Failed,
                SubModelReason::Crashed { exit_code: Some(1) },
            ),
            (
                Some(Loading),
                listed("unloaded", Some(1), false),
                Some(on_demand),
                Failed,
                SubModelReason::LoadFailed { error: "its process exited with code 1 while loading".into() },
            ),
            (
                Some(Loaded),
                listed("failed", Some(2), true),
                None,
                Failed,
                SubModelReason::Crashed { exit_code: Some(2) },
            ),
            (
                Some(Loaded),
                listed("unloaded", Some(-15), false),
                Some(Intent::Unload(SubModelReason::UserUnload)),
                Unloaded,
                SubModelReason::UserUnload,
            ),
        ];
        for (before, listing, intent, status, reason) in cases {
            assert_eq!(
                observe(before, &listing, intent.as_ref()),
                (status, reason),
                "{before:?} + {listing:?} + {intent:?}"
            );
        }
    }

    #[test]
    fn eviction_never_takes_a_busy_pinned_or_loading_model() {
        let m = |id, status, in_flight, idle_s: Option<u64>, pinned| Candidate {
            id,
            status,
            in_flight,
            idle_for: idle_s.map(Duration::from_secs),
            settings: SubModelSettings { idle_timeout: None, pinned },
        };
        let models = [
            m("busy", Loaded, 2, Some(500), false),
            m("pinned", Loaded, 0, Some(400), true),
            m("loading", Loading, 0, None, false),
            m("recent", Loaded, 0, Some(5), false),
            m("sleepy", Sleeping, 0, Some(50), false),
        ];
        assert_eq!(eviction_victim(&models, "new"), Some("sleepy"));
        assert_eq!(eviction_victim(&models[..4], "new"), Some("recent"));
        assert_eq!(eviction_victim(&models[..3], "new"), None);
        // The one that needs the room is never its own victim.
        assert_eq!(eviction_victim(&models[3..4], "recent"), None);
        // Never used beats used.
        assert_eq!(
            eviction_victim(&[m("x", Loaded, 0, Some(5), false), m("y", Loaded, 0, None, false)], "n"),
            Some("y")
        );
    }
}
