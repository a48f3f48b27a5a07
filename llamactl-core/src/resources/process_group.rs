//! CPU time and resident memory of whole process groups, from `/proc/<pid>/stat`.
//!
//! A backend is the leader of its own process group (and, started through `setsid`, of its
//! own session), so everything it started — vLLM's engine workers, say — is counted with it:
//! every process whose group or session id is the backend's pid.

use std::collections::HashMap;
use std::time::Duration;

use super::ResourceError;

/// The sum over every live process of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupReading {
    /// User and system CPU time of its processes, in clock ticks.
    pub cpu_ticks: u64,
    /// Resident memory of its processes, in bytes.
    pub rss_bytes: u64,
    /// How many processes it has.
    pub processes: u32,
}

/// A group's CPU use between two readings `elapsed` apart, in percent of one core (a group
/// busy on two cores shows 200, as `top` shows it); `None` when no time passed. A group whose
/// counters went down (a busy child ended) counts as idle.
///
/// ```
/// use std::time::Duration;
/// use llamactl_core::resources::process_group::cpu_percent;
/// // 50 ticks of 100 per second in 2 s: a quarter of one core.
/// assert_eq!(cpu_percent(100, 150, Duration::from_secs(2), 100), Some(25.0));
/// assert_eq!(cpu_percent(100, 150, Duration::ZERO, 100), None);
/// ```
pub fn cpu_percent(before_ticks: u64, after_ticks: u64, elapsed: Duration, ticks_per_second: u64) -> Option<f64> {
    let capacity = elapsed.as_secs_f64() * ticks_per_second as f64;
    if capacity <= 0.0 {
        return None;
    }
    Some(after_ticks.saturating_sub(before_ticks) as f64 * 100.0 / capacity)
}

/// Adds one process (its group id, session id, CPU ticks and resident pages) to the groups of
/// `wanted` it belongs to. The fold [`read_groups`] applies to every process.
///
/// ```
/// use std::collections::HashMap;
/// use llamactl_core::resources::process_group::{add_process, GroupReading};
/// let mut groups = HashMap::new();
/// add_process(&mut groups, &[7], (7, 1), 10, 2, 4096);
/// add_process(&mut groups, &[7], (9, 7), 5, 1, 4096); // its own group, the same session
/// add_process(&mut groups, &[7], (3, 3), 99, 9, 4096); // another program
/// assert_eq!(groups[&7], GroupReading { cpu_ticks: 15, rss_bytes: 3 * 4096, processes: 2 });
/// ```
pub fn add_process(
    groups: &mut HashMap<i32, GroupReading>,
    wanted: &[i32],
    (pgrp, session): (i32, i32),
    cpu_ticks: u64,
    rss_pages: u64,
    page_size: u64,
) {
    let group = if wanted.contains(&pgrp) {
        pgrp
    } else if wanted.contains(&session) {
        session
    } else {
        return;
    };
    let reading = groups.entry(group).or_default();
    reading.cpu_ticks += cpu_ticks;
    reading.rss_bytes += rss_pages * page_size;
    reading.processes += 1;
}

/// Reads every group of `pgids` in one walk of `/proc`. A group without a live process is
/// left out; zombies count for nothing (they hold no memory).
///
/// ```
/// let me = nix::unistd::getpgrp().as_raw();
/// let groups = llamactl_core::resources::process_group::read_groups(&[me])?;
/// assert!(groups[&me].rss_bytes > 0);
/// # Ok::<(), llamactl_core::resources::ResourceError>(())
/// ```
pub fn read_groups(pgids: &[i32]) -> Result<HashMap<i32, GroupReading>, ResourceError> {
    let mut groups = HashMap::new();
    let wanted: Vec<i32> = pgids.iter().copied().filter(|p| *p > 1).collect();
    if wanted.is_empty() {
        return Ok(groups);
    }
    let page_size = procfs::page_size();
    let processes = procfs::process::all_processes().map_err(|e| ResourceError::proc("/proc", e))?;
    for process in processes {
        // A process may end between the listing and the read: it is no longer in the group.
        let Ok(stat) = process.and_then(|p| p.stat()) else { continue };
        if stat.state == 'Z' || stat.state == 'X' {
            continue;
        }
        add_process(&mut groups, &wanted, (stat.pgrp, stat.session), stat.utime + stat.stime, stat.rss, page_size);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn cpu_percent_is_ticks_over_elapsed_capacity() {
        let second = Duration::from_secs(1);
        let cases = [
            (0, 100, second, 100, Some(100.0)),
            (0, 200, second, 100, Some(200.0)),
            (0, 0, second, 100, Some(0.0)),
            (500, 400, second, 100, Some(0.0)),
            (0, 10, Duration::from_millis(500), 100, Some(20.0)),
            (0, 10, second, 0, None),
        ];
        for (before, after, elapsed, hz, expected) in cases {
            assert_eq!(cpu_percent(before, after, elapsed, hz), expected, "{before} -> {after} in {elapsed:?} at {hz}");
        }
    }

    #[test]
    fn a_group_of_real_processes_is_summed_and_a_gone_group_left_out() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .process_group(0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pgid = i32::try_from(child.id()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let reading = loop {
            let groups = read_groups(&[pgid, 999_999_999]).unwrap();
            assert!(!groups.contains_key(&999_999_999));
            if let Some(r) = groups.get(&pgid).filter(|r| r.processes >= 3) {
                break *r;
            }
            assert!(std::time::Instant::now() < deadline, "the shell and its two sleeps: {groups:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(reading.rss_bytes > 0);
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read_groups(&[pgid]).unwrap().contains_key(&pgid) {
            assert!(std::time::Instant::now() < deadline, "a killed group is gone");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(read_groups(&[0, 1, -1]).unwrap().is_empty(), "never every process or init");
    }
}
