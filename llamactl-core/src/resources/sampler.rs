//! One tick of the resource history: the host, every instance's process group or container and
//! every GPU read at once, with CPU percentages from the previous tick's readings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::container::{self, ContainerReading};
use super::host::{self, CpuTimes, HostReading};
use super::process_group::{self, GroupReading};
use super::{ResourceError, gpu};
use crate::db::{ResourceSample, ResourceScope, RuntimeRecord};
use crate::docker::DockerEngine;

/// What an instance's resources are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleTarget {
    /// The process group its backend leads (the group id is the backend's pid).
    ProcessGroup(i32),
    /// Its Docker container, by id.
    Container(String),
}

impl SampleTarget {
    /// What to read for an instance whose runtime record is `runtime`: its container when it
    /// runs in one, else its process group; `None` while it has neither (stopped, failed).
    ///
    /// ```
    /// use llamactl_core::RuntimeRecord;
    /// use llamactl_core::resources::SampleTarget;
    /// let process = RuntimeRecord { pid: Some(42), ..Default::default() };
    /// assert_eq!(SampleTarget::of(&process), Some(SampleTarget::ProcessGroup(42)));
    /// let container = RuntimeRecord { container_id: Some("c0ffee".into()), ..Default::default() };
    /// assert_eq!(SampleTarget::of(&container), Some(SampleTarget::Container("c0ffee".into())));
    /// assert_eq!(SampleTarget::of(&RuntimeRecord::default()), None);
    /// ```
    pub fn of(runtime: &RuntimeRecord) -> Option<Self> {
        match (&runtime.container_id, runtime.pid) {
            (Some(id), _) => Some(Self::Container(id.clone())),
            (None, Some(pid)) if pid > 1 => Some(Self::ProcessGroup(pid)),
            _ => None,
        }
    }
}

/// What one tick read: the samples to store (the host first, then instances in the order
/// asked, then GPUs) and the GPUs' names.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// The samples.
    pub samples: Vec<ResourceSample>,
    /// GPU names by index (for [`SystemInfo`](super::SystemInfo)-less readers).
    pub gpu_names: Vec<(u32, String)>,
}

/// The previous readings that the next tick's percentages are computed from.
#[derive(Debug)]
pub struct Sampler {
    gpu_timeout: Duration,
    ticks_per_second: u64,
    host: Option<CpuTimes>,
    /// Per instance: its group, when read, and its CPU ticks then.
    groups: HashMap<String, (i32, Instant, u64)>,
    /// Per instance: its container and the last reading.
    containers: HashMap<String, (String, ContainerReading)>,
}

/// The host's sample from its reading and the previous CPU counters.
///
/// ```
/// use llamactl_core::resources::{CpuTimes, HostReading, sampler::host_sample};
/// let reading = HostReading { cpu: CpuTimes { busy: 20, total: 200 }, memory_total_bytes: 10, memory_available_bytes: 4, load1: 0.5, load5: 0.0, load15: 0.0 };
/// let sample = host_sample(chrono::Utc::now(), &reading, Some(CpuTimes { busy: 10, total: 100 }));
/// assert_eq!((sample.cpu_percent, sample.memory_used_bytes, sample.load1), (Some(10.0), Some(6), Some(0.5)));
/// ```
pub fn host_sample(at: DateTime<Utc>, reading: &HostReading, before: Option<CpuTimes>) -> ResourceSample {
    let mut sample = ResourceSample::new(at, ResourceScope::Host);
    sample.cpu_percent = before.and_then(|b| host::cpu_percent(b, reading.cpu));
    sample.memory_used_bytes = Some(reading.memory_used_bytes());
    sample.memory_total_bytes = Some(reading.memory_total_bytes);
    sample.memory_available_bytes = Some(reading.memory_available_bytes);
    sample.load1 = Some(reading.load1);
    sample
}

impl Sampler {
    /// A sampler with no previous readings (the first tick has no CPU percentages), running
    /// `nvidia-smi` for at most `gpu_timeout`.
    pub fn new(gpu_timeout: Duration) -> Self {
        Self {
            gpu_timeout,
            ticks_per_second: procfs::ticks_per_second(),
            host: None,
            groups: HashMap::new(),
            containers: HashMap::new(),
        }
    }

    /// Reads the host, each of `targets` (instance name and what to read), and the GPUs.
    /// Containers are read from `docker`. What cannot be read is left out of the tick and
    /// logged; an instance whose group or container changed starts over (no CPU percentage).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use llamactl_core::resources::{SampleTarget, Sampler};
    /// let me = nix::unistd::getpgrp().as_raw();
    /// let mut sampler = Sampler::new(std::time::Duration::from_secs(5));
    /// let tick = sampler.sample(&[("me".into(), SampleTarget::ProcessGroup(me))], None).await;
    /// assert_eq!(tick.samples.len(), 2 + tick.gpu_names.len());
    /// # }
    /// ```
    pub async fn sample(&mut self, targets: &[(String, SampleTarget)], docker: Option<&DockerEngine>) -> Tick {
        let pgids: Vec<i32> = targets
            .iter()
            .filter_map(|(_, t)| match t {
                SampleTarget::ProcessGroup(pgid) => Some(*pgid),
                SampleTarget::Container(_) => None,
            })
            .collect();
        let procfs_reads = tokio::task::spawn_blocking(move || (host::read(), process_group::read_groups(&pgids)));
        let gpus = gpu::query(self.gpu_timeout).await;
        let (host, groups) = procfs_reads.await.unwrap_or_else(|error| {
            let failed = || ResourceError::Proc { what: "/proc", message: error.to_string() };
            (Err(failed()), Err(failed()))
        });
        let (at, now) = (Utc::now(), Instant::now());
        let mut samples = Vec::with_capacity(targets.len() + 1);
        match host {
            Ok(reading) => {
                samples.push(host_sample(at, &reading, self.host));
                self.host = Some(reading.cpu);
            }
            Err(error) => tracing::warn!(%error, "cannot read the host's resources"),
        }
        let groups = groups.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the instances' processes");
            HashMap::new()
        });
        let mut groups_seen = HashMap::new();
        let mut containers_seen = HashMap::new();
        for (name, target) in targets {
            let mut sample = ResourceSample::new(at, ResourceScope::Instance(name.clone()));
            match target {
                SampleTarget::ProcessGroup(pgid) => {
                    let Some(reading) = groups.get(pgid) else { continue };
                    sample.cpu_percent = self.group_cpu(name, *pgid, reading, now);
                    sample.memory_used_bytes = Some(reading.rss_bytes);
                    groups_seen.insert(name.clone(), (*pgid, now, reading.cpu_ticks));
                }
                SampleTarget::Container(id) => {
                    let Some(docker) = docker else { continue };
                    let reading = match tokio::time::timeout(self.gpu_timeout, docker.container_reading(id)).await {
                        Ok(Ok(reading)) => reading,
                        Ok(Err(error)) => {
                            tracing::debug!(instance = %name, %error, "cannot read the container's stats");
                            continue;
                        }
                        Err(_) => {
                            tracing::debug!(instance = %name, "the container's stats took too long");
                            continue;
                        }
                    };
                    sample.cpu_percent = self
                        .containers
                        .get(name)
                        .filter(|(before_id, _)| before_id == id)
                        .and_then(|(_, before)| container::cpu_percent(before, &reading));
                    sample.memory_used_bytes = reading.memory_bytes;
                    containers_seen.insert(name.clone(), (id.clone(), reading));
                }
            }
            samples.push(sample);
        }
        // Instances no longer read are forgotten.
        self.groups = groups_seen;
        self.containers = containers_seen;
        let mut gpu_names = Vec::new();
        match gpus {
            Ok(Some(gpus)) => {
                for gpu in gpus {
                    let mut sample = ResourceSample::new(at, ResourceScope::Gpu(gpu.index));
                    sample.cpu_percent = gpu.utilization_percent;
                    sample.memory_used_bytes = gpu.memory_used_bytes;
                    sample.memory_total_bytes = gpu.memory_total_bytes;
                    samples.push(sample);
                    gpu_names.push((gpu.index, gpu.name));
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the GPUs"),
        }
        Tick { at, samples, gpu_names }
    }

    fn group_cpu(&self, name: &str, pgid: i32, reading: &GroupReading, now: Instant) -> Option<f64> {
        let (before_pgid, when, ticks) = self.groups.get(name)?;
        if *before_pgid != pgid {
            return None;
        }
        process_group::cpu_percent(*ticks, reading.cpu_ticks, now.duration_since(*when), self.ticks_per_second)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;

    #[tokio::test]
    async fn a_busy_group_shows_cpu_on_the_second_tick_and_a_gone_one_is_left_out() {
        let mut busy = Command::new("sh").args(["-c", "while :; do :; done"]).process_group(0).spawn().unwrap();
        let pgid = i32::try_from(busy.id()).unwrap();
        let targets = [
            ("busy".to_owned(), SampleTarget::ProcessGroup(pgid)),
            ("gone".to_owned(), SampleTarget::ProcessGroup(999_999_999)),
            ("boxed".to_owned(), SampleTarget::Container("c".into())),
        ];
        let mut sampler = Sampler::new(Duration::from_secs(5));
        let first = sampler.sample(&targets, None).await;
        let instances: Vec<_> =
            first.samples.iter().filter(|s| matches!(s.scope, ResourceScope::Instance(_))).collect();
        assert_eq!(instances.len(), 1, "only the live group: {instances:?}");
        assert_eq!(instances[0].cpu_percent, None, "no earlier reading");
        assert!(instances[0].memory_used_bytes.unwrap() > 0);
        assert_eq!(first.samples[0].scope, ResourceScope::Host);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = sampler.sample(&targets, None).await;
        let busy_sample = second.samples.iter().find(|s| s.scope == ResourceScope::Instance("busy".into())).unwrap();
        let percent = busy_sample.cpu_percent.unwrap();
        assert!(percent > 20.0, "a spinning shell: {percent}");
        assert!(second.samples[0].cpu_percent.is_some_and(|p| p > 0.0), "{:?}", second.samples[0]);
        let _ = busy.kill();
        let _ = busy.wait();
        let third = sampler.sample(&targets[..1], None).await;
        assert!(third.samples.iter().all(|s| s.scope != ResourceScope::Instance("busy".into())), "{third:?}");
    }
}
