//! The host's CPU, memory and load, from `/proc/stat`, `/proc/meminfo` and `/proc/loadavg`.

use procfs::{Current, CurrentSI, KernelStats, LoadAverage, Meminfo};

use super::ResourceError;

/// The cumulative CPU time of every core, in clock ticks (the first line of `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    /// Ticks spent doing anything but idling or waiting for I/O.
    pub busy: u64,
    /// Every tick, idle ones included.
    pub total: u64,
}

impl CpuTimes {
    /// The times of `/proc/stat`'s `cpu` line, from its fields in ticks (`user nice system idle
    /// iowait irq softirq steal`; guest time is already counted in user time, so not added).
    ///
    /// ```
    /// use llamactl_core::resources::CpuTimes;
    /// let times = CpuTimes::from_fields(&[10, 0, 5, 80, 5, 0, 0, 0]);
    /// assert_eq!((times.busy, times.total), (15, 100));
    /// ```
    pub fn from_fields(fields: &[u64]) -> Self {
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        let idle = field(3) + field(4);
        let busy = field(0) + field(1) + field(2) + field(5) + field(6) + field(7);
        Self { busy, total: busy + idle }
    }
}

/// The host's CPU use between two readings, in percent of every core (0 to 100), or `None`
/// when no tick passed (or the counters went back, as after a reset).
///
/// ```
/// use llamactl_core::resources::{CpuTimes, host::cpu_percent};
/// let before = CpuTimes { busy: 100, total: 1000 };
/// let after = CpuTimes { busy: 150, total: 1200 };
/// assert_eq!(cpu_percent(before, after), Some(25.0));
/// assert_eq!(cpu_percent(after, after), None);
/// ```
pub fn cpu_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total).filter(|t| *t > 0)?;
    let busy = after.busy.saturating_sub(before.busy).min(total);
    Some(busy as f64 * 100.0 / total as f64)
}

/// One reading of the host: its CPU counters, memory and load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostReading {
    /// CPU counters (a percentage needs two readings).
    pub cpu: CpuTimes,
    /// `MemTotal`, in bytes.
    pub memory_total_bytes: u64,
    /// `MemAvailable` (what new programs can get without swapping), in bytes.
    pub memory_available_bytes: u64,
    /// The 1-minute load average.
    pub load1: f64,
    /// The 5-minute load average.
    pub load5: f64,
    /// The 15-minute load average.
    pub load15: f64,
}

impl HostReading {
    /// Memory in use: total less available.
    ///
    /// ```
    /// # use llamactl_core::resources::{CpuTimes, HostReading};
    /// let r = HostReading { cpu: CpuTimes::default(), memory_total_bytes: 100, memory_available_bytes: 30, load1: 0.0, load5: 0.0, load15: 0.0 };
    /// assert_eq!(r.memory_used_bytes(), 70);
    /// ```
    pub fn memory_used_bytes(&self) -> u64 {
        self.memory_total_bytes.saturating_sub(self.memory_available_bytes)
    }
}

/// Reads `/proc/stat`'s CPU line.
pub fn read_cpu_times() -> Result<CpuTimes, ResourceError> {
    let stats = KernelStats::current().map_err(|e| ResourceError::proc("/proc/stat", e))?;
    let t = stats.total;
    Ok(CpuTimes::from_fields(&[
        t.user,
        t.nice,
        t.system,
        t.idle,
        t.iowait.unwrap_or(0),
        t.irq.unwrap_or(0),
        t.softirq.unwrap_or(0),
        t.steal.unwrap_or(0),
    ]))
}

/// Reads the host's CPU counters, memory and load.
///
/// ```
/// let reading = llamactl_core::resources::host::read()?;
/// assert!(reading.memory_total_bytes > 0 && reading.cpu.total > 0);
/// # Ok::<(), llamactl_core::resources::ResourceError>(())
/// ```
pub fn read() -> Result<HostReading, ResourceError> {
    let cpu = read_cpu_times()?;
    let memory = Meminfo::current().map_err(|e| ResourceError::proc("/proc/meminfo", e))?;
    let load = LoadAverage::current().map_err(|e| ResourceError::proc("/proc/loadavg", e))?;
    Ok(HostReading {
        cpu,
        memory_total_bytes: memory.mem_total,
        // Kernels before 3.14 have no MemAvailable: free memory is the nearest there is.
        memory_available_bytes: memory.mem_available.unwrap_or(memory.mem_free),
        load1: f64::from(load.one),
        load5: f64::from(load.five),
        load15: f64::from(load.fifteen),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_counts_busy_ticks_over_all_ticks() {
        let cases = [
            // (before, after, expected)
            ((0, 0), (0, 100), Some(0.0)),
            ((0, 0), (100, 100), Some(100.0)),
            ((40, 400), (90, 600), Some(25.0)),
            ((50, 500), (40, 600), Some(0.0)),
            ((50, 500), (50, 500), None),
            ((50, 500), (60, 400), None),
        ];
        for ((b0, t0), (b1, t1), expected) in cases {
            let got = cpu_percent(CpuTimes { busy: b0, total: t0 }, CpuTimes { busy: b1, total: t1 });
            assert_eq!(got, expected, "{b0}/{t0} -> {b1}/{t1}");
        }
    }

    #[test]
    fn iowait_is_idle_and_steal_is_busy() {
        let times = CpuTimes::from_fields(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(times, CpuTimes { busy: 1 + 2 + 3 + 6 + 7 + 8, total: 36 });
        assert_eq!(CpuTimes::from_fields(&[1, 1, 1, 1]), CpuTimes { busy: 3, total: 4 }, "old kernels: 4 fields");
    }

    #[test]
    fn two_readings_of_this_host_give_a_percentage() {
        let before = read().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(100) {
            std::hint::black_box(0u64);
        }
        let after = read().unwrap();
        let percent = cpu_percent(before.cpu, after.cpu).unwrap();
        assert!(percent > 0.0 && percent <= 100.0, "{percent}");
        assert!(after.memory_available_bytes <= after.memory_total_bytes);
        assert!(after.memory_used_bytes() > 0);
    }
}
