//! Signals to whole process groups, and waiting for a group to be gone.
//!
//! Every backend runs in its own process group (its pid is the group id), so a stop reaches the
//! backend's children too (vLLM's engine workers, for instance).

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::time::Instant;

/// Interval between checks while waiting for processes to go.
const POLL: Duration = Duration::from_millis(10);

/// Sends `signal` to every process of group `pgid`; `false` if the group has no process.
pub fn signal_group(pgid: i32, signal: Signal) -> bool {
    if pgid <= 1 {
        // Never signal "every process" (0, -1) or init by mistake.
        return false;
    }
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        Err(error) => {
            tracing::warn!(pgid, %error, "cannot signal process group");
            false
        }
    }
}

/// Whether group `pgid` still has a live process. Zombies do not count: they hold no port and
/// no memory, and their reaping is up to their parent (for orphans, PID 1, which may lag).
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 || matches!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH)) {
        return false;
    }
    let Ok(processes) = procfs::process::all_processes() else {
        return true;
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .any(|stat| stat.pgrp == pgid && stat.state != 'Z' && stat.state != 'X')
}

/// Waits until group `pgid` has no live process, or `timeout` passes; `true` if it is gone.
pub async fn wait_group_gone(pgid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How a group stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStop {
    /// SIGKILL was needed after the grace period.
    pub killed: bool,
    /// The group is gone (false only if even SIGKILL did not end it within the timeout).
    pub gone: bool,
}

/// Stops a process group that is not our child (e.g. left over by an earlier manager):
/// SIGTERM, up to `grace` for it to end, then SIGKILL and up to `kill_timeout`.
pub async fn terminate_group(pgid: i32, grace: Duration, kill_timeout: Duration) -> GroupStop {
    if !signal_group(pgid, Signal::SIGTERM) {
        return GroupStop { killed: false, gone: true };
    }
    // A stopped process acts on SIGTERM only once it runs again.
    signal_group(pgid, Signal::SIGCONT);
    if wait_group_gone(pgid, grace).await {
        return GroupStop { killed: false, gone: true };
    }
    signal_group(pgid, Signal::SIGKILL);
    GroupStop { killed: true, gone: wait_group_gone(pgid, kill_timeout).await }
}
