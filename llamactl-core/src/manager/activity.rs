//! In-flight request tracking. A request holds an [`ActivityGuard`] from when it is sent to a
//! backend until its response (streamed or not) is complete. The idle timer and eviction only
//! stop an instance whose gate they can close, which needs zero requests in flight; a request
//! can only enter while the gate is open. Both happen under one lock, so a stop decision and a
//! new request can never cross.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    in_flight: u32,
    last: Instant,
    open: bool,
}

/// Activity of one instance.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<State>,
    /// Woken when the last request in flight ends (for [`Activity::drained`]).
    idle: Notify,
}

/// Marks one request in flight; dropping it ends the request and counts as activity.
#[derive(Debug)]
pub struct ActivityGuard {
    activity: Arc<Activity>,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.last = Instant::now();
        let last_one = state.in_flight == 0;
        drop(state);
        if last_one {
            self.activity.idle.notify_waiters();
        }
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State { in_flight: 0, last: Instant::now(), open: false }),
            idle: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enters a request if the gate is open (the instance runs and is not being stopped).
    pub(crate) fn try_enter(self: &Arc<Self>) -> Option<ActivityGuard> {
        let mut state = self.lock();
        if !state.open {
            return None;
        }
        state.in_flight += 1;
        Some(ActivityGuard { activity: self.clone() })
    }

    /// Counts a request regardless of the gate (for callers that only want to mark activity).
    pub(crate) fn enter(self: &Arc<Self>) -> ActivityGuard {
        let mut state = self.lock();
        state.in_flight += 1;
        ActivityGuard { activity: self.clone() }
    }

    /// Opens the gate (the instance became ready); idle time counts from now.
    pub(crate) fn open(&self) {
        let mut state = self.lock();
        state.open = true;
        state.last = Instant::now();
    }

    /// Closes the gate unconditionally (a user stop, a crash).
    pub(crate) fn close(&self) {
        self.lock().open = false;
    }

    /// Closes the gate only if nothing is in flight and the last activity is at least
    /// `idle_for` ago. Returns whether it closed it.
    pub(crate) fn close_if_idle(&self, idle_for: Duration) -> bool {
        let mut state = self.lock();
        if state.open && state.in_flight == 0 && state.last.elapsed() >= idle_for {
            state.open = false;
            true
        } else {
            false
        }
    }

    /// Waits until no request is in flight, at most `timeout`; whether none is. Close the gate
    /// first, or new requests may keep it busy.
    pub(crate) async fn drained(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().in_flight == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.lock().in_flight == 0;
            }
        }
    }

    /// `(in flight, last activity)`.
    pub(crate) fn snapshot(&self) -> (u32, Instant) {
        let state = self.lock();
        (state.in_flight, state.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn draining_waits_for_the_last_request_and_no_longer_than_asked() {
        let activity = Activity::new();
        activity.open();
        assert!(activity.drained(Duration::from_secs(1)).await, "nothing in flight: drained at once");
        let first = activity.try_enter().unwrap();
        let second = activity.try_enter().unwrap();
        activity.close();
        let waiting = tokio::spawn({
            let activity = activity.clone();
            async move { activity.drained(Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(first);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "one request is still in flight");
        drop(second);
        assert!(waiting.await.unwrap());
        let _stuck = activity.enter();
        let started = Instant::now();
        assert!(!activity.drained(Duration::from_secs(5)).await, "a request that never ends: not drained");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[test]
    fn the_gate_and_idle_closing_agree() {
        let activity = Activity::new();
        assert!(activity.try_enter().is_none(), "closed until ready");
        activity.open();
        let guard = activity.try_enter().unwrap();
        assert!(!activity.close_if_idle(Duration::ZERO), "busy: cannot close");
        drop(guard);
        assert!(activity.close_if_idle(Duration::ZERO));
        assert!(activity.try_enter().is_none(), "closed: no new request");
        let counted = activity.enter();
        assert_eq!(activity.snapshot().0, 1);
        drop(counted);
        assert_eq!(activity.snapshot().0, 0);
    }

    #[test]
    fn recent_activity_keeps_the_gate_open() {
        let activity = Activity::new();
        activity.open();
        drop(activity.try_enter());
        assert!(!activity.close_if_idle(Duration::from_secs(60)));
    }
}
