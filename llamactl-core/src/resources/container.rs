//! A container's CPU and memory as the Docker engine counts them (its one-shot stats), and
//! the percentages `docker stats` shows, computed from two of them.

use std::collections::HashMap;

/// One reading of a container's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerReading {
    /// The container's CPU time, in nanoseconds (`cpu_stats.cpu_usage.total_usage`).
    pub cpu_total_ns: u64,
    /// The host's CPU time at the reading, in nanoseconds (`cpu_stats.system_cpu_usage`;
    /// `None` on engines that do not give it).
    pub system_ns: Option<u64>,
    /// CPUs the container may use (`cpu_stats.online_cpus`).
    pub online_cpus: u32,
    /// Memory in use, page cache that can be dropped left out (see [`memory_in_use`]).
    pub memory_bytes: Option<u64>,
}

/// A container's CPU use between two readings, as `docker stats` computes it: its CPU time
/// over the host's, times the CPUs it may use, in percent (a container busy on two cores
/// shows 200). `None` when the engine gave no host time or none passed.
///
/// ```
/// use llamactl_core::resources::{ContainerReading, container::cpu_percent};
/// let before = ContainerReading { cpu_total_ns: 1_000, system_ns: Some(10_000), online_cpus: 4, memory_bytes: None };
/// let after = ContainerReading { cpu_total_ns: 2_000, system_ns: Some(20_000), ..before };
/// assert_eq!(cpu_percent(&before, &after), Some(40.0));
/// ```
pub fn cpu_percent(before: &ContainerReading, after: &ContainerReading) -> Option<f64> {
    let system = after.system_ns?.checked_sub(before.system_ns?).filter(|d| *d > 0)?;
    let container = after.cpu_total_ns.saturating_sub(before.cpu_total_ns);
    let cpus = if after.online_cpus == 0 { 1 } else { after.online_cpus };
    Some(container as f64 / system as f64 * f64::from(cpus) * 100.0)
}

/// Memory in use as `docker stats` shows it: the cgroup's usage less its inactive file pages
/// (`inactive_file` on cgroup v2, `total_inactive_file` on v1), which the kernel drops first.
///
/// ```
/// use std::collections::HashMap;
/// use llamactl_core::resources::container::memory_in_use;
/// let stats = HashMap::from([("inactive_file".to_owned(), 300)]);
/// assert_eq!(memory_in_use(1_000, &stats), 700);
/// ```
pub fn memory_in_use(usage: u64, stats: &HashMap<String, u64>) -> u64 {
    let inactive = stats.get("total_inactive_file").or_else(|| stats.get("inactive_file")).copied().unwrap_or(0);
    if inactive < usage { usage - inactive } else { usage }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(cpu: u64, system: Option<u64>, cpus: u32) -> ContainerReading {
        ContainerReading { cpu_total_ns: cpu, system_ns: system, online_cpus: cpus, memory_bytes: None }
    }

    #[test]
    fn cpu_percent_follows_docker_stats() {
        let cases = [
            (reading(0, Some(0), 2), reading(500, Some(1_000), 2), Some(100.0)),
            (reading(0, Some(0), 2), reading(1_000, Some(1_000), 2), Some(200.0)),
            (reading(0, Some(0), 0), reading(250, Some(1_000), 0), Some(25.0)),
            (reading(900, Some(0), 1), reading(100, Some(1_000), 1), Some(0.0)),
            (reading(0, Some(1_000), 1), reading(100, Some(1_000), 1), None),
            (reading(0, None, 1), reading(100, Some(1_000), 1), None),
            (reading(0, Some(2_000), 1), reading(100, Some(1_000), 1), None),
        ];
        for (before, after, expected) in cases {
            assert_eq!(cpu_percent(&before, &after), expected, "{before:?} -> {after:?}");
        }
    }

    #[test]
    fn inactive_file_pages_are_not_in_use() {
        let v1 = HashMap::from([("total_inactive_file".to_owned(), 100), ("inactive_file".to_owned(), 1)]);
        assert_eq!(memory_in_use(1_000, &v1), 900, "cgroup v1's total counts");
        assert_eq!(memory_in_use(1_000, &HashMap::new()), 1_000);
        let more = HashMap::from([("inactive_file".to_owned(), 2_000)]);
        assert_eq!(memory_in_use(1_000, &more), 1_000, "never below zero");
    }
}
