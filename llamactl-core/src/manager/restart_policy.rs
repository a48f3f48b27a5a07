//! The restart policy, as pure functions: whether and when a backend that ended by itself is
//! started again ([`after_exit`]), the delays between restarts ([`backoff`]), and whether an
//! on-demand request may start again an instance whose start just failed
//! ([`after_failed_start`]). Everything they depend on is an input — the instance's settings,
//! how the run ended, the restart count, the times, even the random part of a delay (its
//! jitter) — so every rule is tested without a process (see `restart_policy/tests.rs`). The
//! actor applies the decisions; the manager's on-demand path asks [`after_failed_start`].
//!
//! The rules:
//! - A run that ends by itself is restarted only with `auto_restart`, and only if it had been
//!   ready or was itself an automatic restart: a first start that fails is reported at once
//!   (its error is what the user needs to see), a crash of a ready backend is retried.
//! - A run that stayed ready for `restart_reset_after` starts a new series: the count of
//!   restarts in a row goes back to zero before this crash is counted.
//! - After `max_restarts` restarts in a row the instance gives up (`failed`, `gave_up`).
//! - Restart number n waits `restart_delay × 2^(n-1)`, capped at `max_restart_delay`, plus up
//!   to 25 % jitter (never beyond the cap), so that instances that crashed together do not
//!   restart in lockstep.
//! - A stop asked by anyone (user, idle timeout, eviction, shutdown, update) is not an exit:
//!   the actor ends the run inline and the policy is never asked about it. A user's start or
//!   restart, and new options, begin a new series (the count goes back to zero).
//! - An on-demand request for an instance whose start failed less than `restart_delay` ago gets
//!   that failure again, with how long to wait, rather than another doomed start.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::RngExt;

use super::config::{InstanceSettings, ManagerConfig};
use crate::runtime::RunExit;
use crate::{InstanceStatus, TransitionReason};

/// The largest jitter: a quarter of the delay.
pub(crate) const MAX_JITTER: f64 = 0.25;

/// The delay before restart number `attempt` (from 1), with a random jitter.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::manager::restart_delay;
/// let d = restart_delay(Duration::from_secs(2), 3, Duration::from_secs(300));
/// assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(10));
/// ```
pub fn restart_delay(base: Duration, attempt: u32, cap: Duration) -> Duration {
    backoff(base, attempt, cap, random_jitter())
}

/// A random jitter for [`backoff`], from 0 to [`MAX_JITTER`].
pub(crate) fn random_jitter() -> f64 {
    rand::rng().random_range(0.0..=MAX_JITTER)
}

/// The delay before restart number `attempt` (from 1): `base × 2^(attempt-1)`, capped at `cap`,
/// then `jitter` (a fraction, from 0 to [`MAX_JITTER`]) on top, never beyond the cap.
pub(crate) fn backoff(base: Duration, attempt: u32, cap: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let nominal = base.saturating_mul(1u32 << exponent).min(cap);
    let jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, MAX_JITTER) };
    let extra = Duration::try_from_secs_f64(nominal.as_secs_f64() * jitter).unwrap_or(Duration::MAX);
    // `nominal` is within the cap already.
    nominal.saturating_add(extra).min(cap)
}

/// An instance's restart settings, with the manager's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RestartPolicy {
    /// Restart after an unexpected exit.
    pub(crate) auto_restart: bool,
    /// Restarts in a row before giving up.
    pub(crate) max_restarts: u32,
    /// The first restart's delay.
    pub(crate) restart_delay: Duration,
    /// The longest delay.
    pub(crate) max_restart_delay: Duration,
    /// Time ready after which a crash starts a new series of restarts.
    pub(crate) reset_after: Duration,
}

impl RestartPolicy {
    /// The policy of an instance with `settings`, under `config`.
    pub(crate) fn new(settings: &InstanceSettings, config: &ManagerConfig) -> Self {
        Self {
            auto_restart: settings.auto_restart,
            max_restarts: settings.max_restarts,
            restart_delay: settings.restart_delay,
            max_restart_delay: config.max_restart_delay,
            reset_after: config.restart_reset_after,
        }
    }
}

/// A run that ended by itself (it was not asked to stop), as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The instance's status when it ended: `running`, or `starting` (not ready yet).
    pub(crate) status: InstanceStatus,
    /// How it ended.
    pub(crate) exit: RunExit,
    /// The run was itself started by an automatic restart.
    pub(crate) automatic: bool,
    /// Restarts in a row before this run ended.
    pub(crate) restarts: u32,
    /// How long it had been ready (zero if it never was).
    pub(crate) ready_for: Duration,
}

/// What to do after a run ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterExit {
    /// Restart number `attempt`, after `after`; meanwhile `restarting`, with `reason`.
    Restart { attempt: u32, after: Duration, reason: TransitionReason },
    /// Not restarted (`auto_restart` is off, or a first start failed): `failed`, with `reason`.
    Fail { reason: TransitionReason },
    /// `max_restarts` restarts in a row did not last: `failed`, with `reason` (`gave_up`).
    GiveUp { reason: TransitionReason },
}

/// The decision after a run ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitDecision {
    /// Why the run ended: out of memory, exited while starting, or crashed.
    pub(crate) cause: TransitionReason,
    /// The count of restarts in a row to record.
    pub(crate) restart_count: u32,
    /// What to do.
    pub(crate) action: AfterExit,
}

/// Why a run ended by itself, given the status it was in.
pub(crate) fn exit_cause(status: InstanceStatus, ended: RunExit) -> TransitionReason {
    let exit = ended.exit;
    if ended.oom_killed {
        TransitionReason::OutOfMemory { exit }
    } else if status == InstanceStatus::Starting {
        TransitionReason::StartupExited { exit }
    } else {
        TransitionReason::Crashed { exit }
    }
}

/// Whether and when a run that ended by itself is started again (see the module's rules);
/// `jitter` (from 0 to [`MAX_JITTER`]) is the random part of the delay.
pub(crate) fn after_exit(policy: &RestartPolicy, ended: &Ended, jitter: f64) -> ExitDecision {
    let cause = exit_cause(ended.status, ended.exit);
    let was_ready = ended.status == InstanceStatus::Running;
    let mut restarts = ended.restarts;
    if was_ready && ended.ready_for >= policy.reset_after {
        restarts = 0;
    }
    let retry = policy.auto_restart && (was_ready || ended.automatic);
    let action = if !retry {
        AfterExit::Fail { reason: cause.clone() }
    } else if restarts >= policy.max_restarts {
        AfterExit::GiveUp { reason: TransitionReason::GaveUp { restarts, exit: ended.exit.exit } }
    } else {
        restarts += 1;
        let after = backoff(policy.restart_delay, restarts, policy.max_restart_delay, jitter);
        AfterExit::Restart { attempt: restarts, after, reason: cause.clone() }
    };
    ExitDecision { cause, restart_count: restarts, action }
}

/// Whether an on-demand request may start an instance whose last start failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDemand {
    /// Start it.
    StartNow,
    /// The start failed moments ago: report that failure, and that a new start is worth trying
    /// after this long.
    RetryAfter(Duration),
}

/// The failed-start cooldown: an instance whose start failed at `failed_at` is started again on
/// demand only once its `restart_delay` has passed (none without settings, at once when the
/// time of the failure is unknown or in the future), so that a stream of requests cannot turn
/// into a stream of doomed starts.
pub(crate) fn after_failed_start(
    settings: Option<&InstanceSettings>,
    failed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> OnDemand {
    let cooldown = settings.map(|s| s.restart_delay).unwrap_or_default();
    let since = failed_at.and_then(|t| (now - t).to_std().ok()).unwrap_or(cooldown);
    if since < cooldown { OnDemand::RetryAfter(cooldown - since) } else { OnDemand::StartNow }
}

#[cfg(test)]
mod tests;
