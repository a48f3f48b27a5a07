//! On-demand leases: the one entry a request takes to reach a backend. A ready instance is
//! leased at once; otherwise, if the caller may start it, the request takes a place in the
//! instance's cold-start queue and waits (up to its deadline) while the instance starts, once
//! however many requests wait for it.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Manager;
use super::activity::ActivityGuard;
use super::cold_start_queue::ColdStartQueue;
use super::command::Command;
use super::error::ManagerError;
use super::handle::Handle;
use super::restart_policy::{self, OnDemand};
use super::state::{InstanceState, Lease};
use crate::{InstanceStatus, TransitionReason};

/// What a caller may do with the instance it asks a lease on (for a server: what the caller's
/// key allows on that instance).
///
/// ```
/// use llamactl_core::manager::Rights;
/// assert!(Rights::ALL.start && Rights::ALL.evict);
/// let infer_only = Rights { infer: true, ..Rights::NONE };
/// assert!(!infer_only.start);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    /// Send requests to it.
    pub infer: bool,
    /// Start it when it is stopped (subject to its `on_demand_start`).
    pub start: bool,
    /// Have other instances evicted to make room for its start at a running limit.
    pub evict: bool,
}

impl Rights {
    /// Every right.
    pub const ALL: Self = Self { infer: true, start: true, evict: true };
    /// No right.
    pub const NONE: Self = Self { infer: false, start: false, evict: false };
}

/// A request for a lease: the caller's rights, its deadline, and the cold-start queue it
/// waits in when the instance is not ready (none: wait without a bound on waiters).
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::manager::{ColdStartQueue, LeaseRequest, Rights};
///
/// let queue = ColdStartQueue::new(64);
/// let request = LeaseRequest::within(Duration::from_secs(30)).with_rights(Rights::ALL).in_queue(&queue);
/// assert_eq!(request.rights, Rights::ALL);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LeaseRequest<'a> {
    /// What the caller may do.
    pub rights: Rights,
    /// When the caller stops waiting.
    pub deadline: Instant,
    /// Where it waits while the instance starts.
    pub queue: Option<&'a ColdStartQueue>,
    /// What the request is called in the queue ([`ColdStartQueue::position_of`]).
    pub ticket: Option<u64>,
}

impl<'a> LeaseRequest<'a> {
    /// Every right, waiting at most `timeout` from now, in no queue.
    pub fn within(timeout: Duration) -> Self {
        Self { rights: Rights::ALL, deadline: Instant::now() + timeout, queue: None, ticket: None }
    }

    /// With `rights` instead.
    pub fn with_rights(self, rights: Rights) -> Self {
        Self { rights, ..self }
    }

    /// Waiting in `queue`.
    pub fn in_queue(self, queue: &'a ColdStartQueue) -> LeaseRequest<'a> {
        LeaseRequest { queue: Some(queue), ..self }
    }

    /// Called `ticket` in the queue, so that its place can be asked for.
    pub fn with_ticket(self, ticket: u64) -> Self {
        Self { ticket: Some(ticket), ..self }
    }
}

impl Manager {
    /// A lease on `name` for one request: at once if it is ready; otherwise, if the caller may
    /// start it, after waiting (in the request's queue, until its deadline) while it starts —
    /// once, however many callers ask at the same time. A caller that gives up (or is dropped)
    /// does not disturb the start or the other callers.
    ///
    /// Typed refusals: [`ManagerError::MayNotUse`] without the `infer` right;
    /// [`ManagerError::MayNotStart`] for a stopped or failed instance without the `start`
    /// right; [`ManagerError::QueueFull`]; [`ManagerError::NotRunning`] where on-demand start
    /// is off; without `evict`, a start at a running limit evicts nothing
    /// ([`ManagerError::CapacityExhausted`]).
    ///
    /// ```no_run
    /// # async fn f(manager: llamactl_core::Manager) -> Result<(), llamactl_core::ManagerError> {
    /// use std::time::Duration;
    /// use llamactl_core::manager::{LeaseRequest, Rights};
    ///
    /// let no_start = Rights { start: false, ..Rights::ALL };
    /// let lease = manager.acquire("tiny", LeaseRequest::within(Duration::from_secs(5)).with_rights(no_start)).await?;
    /// // Ready at once, or after waiting for a start someone else asked for.
    /// println!("{} (waited {:?})", lease.base_url(), lease.waited());
    /// # Ok(()) }
    /// ```
    pub async fn acquire(&self, name: &str, request: LeaseRequest<'_>) -> Result<Lease, ManagerError> {
        let handle = self.handle(name)?;
        if !request.rights.infer {
            return Err(ManagerError::MayNotUse { name: name.to_owned() });
        }
        if let Some(lease) = self.lease(&handle) {
            return Ok(lease);
        }
        let status = handle.state.borrow().runtime.status;
        if !request.rights.start && matches!(status, InstanceStatus::Stopped | InstanceStatus::Failed) {
            return Err(ManagerError::MayNotStart { name: name.to_owned(), status });
        }
        let _place = request.queue.map(|queue| queue.enter_with(name, request.ticket)).transpose()?;
        let started = Instant::now();
        let mut lease = self.wait_ready(&handle, request).await?;
        lease.waited = Some(started.elapsed());
        Ok(lease)
    }

    /// Waits until `name` is ready, starting it on demand, with every right and no queue:
    /// [`acquire`](Self::acquire) with [`LeaseRequest::within`]`(timeout)`.
    pub async fn ensure_ready(&self, name: &str, timeout: Duration) -> Result<Lease, ManagerError> {
        self.acquire(name, LeaseRequest::within(timeout)).await
    }

    /// The waiting part of [`acquire`](Self::acquire): follows the instance's state, asks for
    /// one on-demand start, and leases it once it is ready.
    async fn wait_ready(&self, handle: &Handle, request: LeaseRequest<'_>) -> Result<Lease, ManagerError> {
        let Rights { start: may_start, evict: may_evict, .. } = request.rights;
        let (started, deadline) = (Instant::now(), request.deadline);
        let name = handle.name.as_str();
        let mut state = handle.state.subscribe();
        let mut requested = false;
        loop {
            let (status, reason, settings, failed_at, attempt) = {
                let current = state.borrow_and_update();
                let settings = current.options.as_ref().ok().map(|o| self.shared.ctx.config().defaults.apply(o));
                let runtime = &current.runtime;
                (runtime.status, runtime.last_reason.clone(), settings, runtime.stopped_at, current.attempt)
            };
            match status {
                InstanceStatus::Running => {
                    if let Some(lease) = self.lease(handle) {
                        return Ok(lease);
                    }
                    // Running but its gate is closed: it is being stopped; wait for that.
                }
                InstanceStatus::Starting | InstanceStatus::Restarting | InstanceStatus::Stopping => {}
                InstanceStatus::Stopped | InstanceStatus::Failed => {
                    let reason = reason.unwrap_or(TransitionReason::UserStop);
                    let failure = |retry_after| ManagerError::StartFailed {
                        name: name.to_owned(),
                        reason: reason.clone(),
                        detail: state.borrow().runtime.last_error.clone().unwrap_or_default(),
                        retry_after,
                    };
                    if requested {
                        match (status, &reason) {
                            // The start this caller asked for failed.
                            (InstanceStatus::Failed, _) => return Err(failure(None)),
                            (_, TransitionReason::UserStop | TransitionReason::Shutdown) => {
                                return Err(ManagerError::StoppedWhileWaiting { name: name.to_owned(), reason });
                            }
                            // Idle timeout or eviction got there first: start it again.
                            _ => {}
                        }
                    } else if !may_start || !settings.as_ref().is_some_and(|s| s.on_demand_start) {
                        return Err(ManagerError::NotRunning { name: name.to_owned(), status });
                    }
                    // A start that failed moments ago is reported again rather than retried at
                    // once, so a stream of requests cannot turn into a stream of doomed spawns.
                    if status == InstanceStatus::Failed
                        && !requested
                        && let OnDemand::RetryAfter(wait) =
                            restart_policy::after_failed_start(settings.as_ref(), failed_at, Utc::now())
                    {
                        return Err(failure(Some(wait)));
                    }
                    self.check_running()?;
                    let slot = self.admit(handle, deadline, may_evict).await?;
                    let ask = handle.ask(|reply| Command::Start {
                        reason: TransitionReason::OnDemand,
                        slot,
                        seen_attempt: Some(attempt),
                        reply,
                    });
                    match tokio::time::timeout_at(deadline, ask).await {
                        Ok(result) => result?,
                        Err(_) => return Err(self.timeout(name, started, &state)),
                    }
                    requested = true;
                    continue;
                }
            }
            if tokio::time::timeout_at(deadline, state.changed()).await.is_err() {
                return Err(self.timeout(name, started, &state));
            }
        }
    }

    fn timeout(&self, name: &str, started: Instant, state: &watch::Receiver<InstanceState>) -> ManagerError {
        ManagerError::Timeout {
            name: name.to_owned(),
            waited: started.elapsed(),
            status: state.borrow().runtime.status,
        }
    }

    fn lease(&self, handle: &Handle) -> Option<Lease> {
        let guard = handle.activity.try_enter()?;
        let state = handle.state.borrow();
        let listen = state.listen.clone()?;
        let serving = state.serving.clone();
        Some(Lease {
            name: handle.name.clone(),
            listen,
            request_model: serving.as_ref().and_then(|s| s.request_model.clone()),
            backend: serving.map(|s| s.backend),
            attempt: state.attempt,
            waited: None,
            _guard: guard,
        })
    }

    /// A lease on `name` if it is ready right now, without waiting or starting anything.
    pub fn try_lease(&self, name: &str) -> Option<Lease> {
        self.lease(&*self.handle(name).ok()?)
    }

    /// Marks one request in flight without starting anything (for callers that route requests
    /// themselves); the idle timer and eviction treat the instance as busy until it is dropped.
    pub fn track_activity(&self, name: &str) -> Result<ActivityGuard, ManagerError> {
        Ok(self.handle(name)?.activity.enter())
    }
}
