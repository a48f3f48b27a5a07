//! What the host is: its operating system, kernel, CPU, memory and GPUs (and, filled in by
//! whoever has an engine, the Docker engine's version).

use std::collections::HashSet;

use super::gpu::GpuReading;

/// A description of the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemInfo {
    /// The host's name.
    pub hostname: Option<String>,
    /// The operating system (`PRETTY_NAME` of `/etc/os-release`).
    pub os: Option<String>,
    /// The kernel's release (`uname -r`).
    pub kernel: Option<String>,
    /// The machine architecture this program was built for (`x86_64`, `aarch64`, ...).
    pub architecture: String,
    /// The CPU's model name.
    pub cpu_model: Option<String>,
    /// Logical CPUs (hardware threads).
    pub cpu_cores: u32,
    /// Physical cores, where `/proc/cpuinfo` tells them apart.
    pub cpu_physical_cores: Option<u32>,
    /// Memory in all, in bytes.
    pub memory_total_bytes: u64,
    /// The GPUs `nvidia-smi` reports (none without it).
    pub gpus: Vec<GpuInfo>,
    /// The Docker engine's version, when one answers.
    pub docker_version: Option<String>,
}

/// One GPU of [`SystemInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// Its index.
    pub index: u32,
    /// Its product name.
    pub name: String,
    /// Its memory, in bytes, when known.
    pub memory_total_bytes: Option<u64>,
}

impl From<&GpuReading> for GpuInfo {
    fn from(gpu: &GpuReading) -> Self {
        Self { index: gpu.index, name: gpu.name.clone(), memory_total_bytes: gpu.memory_total_bytes }
    }
}

/// The system's name in `/etc/os-release`: `PRETTY_NAME`, else `NAME` and `VERSION`.
///
/// ```
/// use llamactl_core::resources::system_info::os_name;
/// assert_eq!(os_name("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
/// assert_eq!(os_name("NAME=Alpine\nVERSION='3.20'").as_deref(), Some("Alpine 3.20"));
/// ```
pub fn os_name(os_release: &str) -> Option<String> {
    let field = |key: &str| {
        os_release.lines().find_map(|line| {
            let value = line.trim().strip_prefix(key)?.strip_prefix('=')?;
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            (!value.is_empty()).then(|| value.to_owned())
        })
    };
    field("PRETTY_NAME").or_else(|| match (field("NAME"), field("VERSION")) {
        (Some(name), Some(version)) => Some(format!("{name} {version}")),
        (name, _) => name,
    })
}

/// The CPU's model, logical CPUs and physical cores from `/proc/cpuinfo`: `model name` on
/// x86, `Model` or `Hardware` on ARM; physical cores as distinct (`physical id`, `core id`)
/// pairs, `None` where those lines are missing.
///
/// ```
/// use llamactl_core::resources::system_info::cpu_of;
/// let text = "processor\t: 0\nmodel name\t: AMD EPYC\nphysical id\t: 0\ncore id\t: 0\n\n\
///             processor\t: 1\nmodel name\t: AMD EPYC\nphysical id\t: 0\ncore id\t: 0\n";
/// assert_eq!(cpu_of(text), (Some("AMD EPYC".to_owned()), 2, Some(1)));
/// ```
pub fn cpu_of(cpuinfo: &str) -> (Option<String>, u32, Option<u32>) {
    let mut model = None;
    let mut fallback_model = None;
    let mut logical = 0u32;
    let mut cores = HashSet::new();
    let mut physical_id = None;
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "processor" => {
                logical += 1;
                physical_id = None;
            }
            "model name" if model.is_none() && !value.is_empty() => model = Some(value.to_owned()),
            "Model" | "Hardware" if fallback_model.is_none() && !value.is_empty() => {
                fallback_model = Some(value.to_owned())
            }
            "physical id" => physical_id = Some(value.to_owned()),
            "core id" => {
                if let Some(package) = &physical_id {
                    cores.insert((package.clone(), value.to_owned()));
                }
            }
            _ => {}
        }
    }
    let physical = (!cores.is_empty()).then(|| u32::try_from(cores.len()).unwrap_or(u32::MAX));
    (model.or(fallback_model), logical, physical)
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Describes this host from `/etc/os-release`, `/proc/sys/kernel`, `/proc/cpuinfo` and
/// `/proc/meminfo`, with `gpus` as given (see [`gpu::query`](super::gpu::query)) and no
/// Docker version (the caller that has an engine fills it in).
///
/// ```
/// let info = llamactl_core::resources::system_info::read(&[]);
/// assert!(info.cpu_cores > 0 && info.memory_total_bytes > 0);
/// ```
pub fn read(gpus: &[GpuReading]) -> SystemInfo {
    use procfs::Current;
    let os = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()
        .and_then(|text| os_name(&text));
    let (cpu_model, logical, cpu_physical_cores) =
        std::fs::read_to_string("/proc/cpuinfo").map(|text| cpu_of(&text)).unwrap_or((None, 0, None));
    let cpu_cores = if logical > 0 {
        logical
    } else {
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
    };
    SystemInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        os,
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        architecture: std::env::consts::ARCH.to_owned(),
        cpu_model,
        cpu_cores,
        cpu_physical_cores,
        memory_total_bytes: procfs::Meminfo::current().map_or(0, |m| m.mem_total),
        gpus: gpus.iter().map(GpuInfo::from).collect(),
        docker_version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_names() {
        let cases = [
            ("PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"", Some("Ubuntu 24.04.1 LTS")),
            (
                "NAME=\"Fedora Linux\"\nVERSION=\"41 (Workstation Edition)\"",
                Some("Fedora Linux 41 (Workstation Edition)"),
            ),
            ("NAME=Arch\n", Some("Arch")),
            ("PRETTY_NAME=\"\"\nNAME=NixOS", Some("NixOS")),
            ("# nothing\nID=x", None),
            ("PRETTY_NAMES=wrong", None),
        ];
        for (text, expected) in cases {
            assert_eq!(os_name(text).as_deref(), expected, "{text:?}");
        }
    }

    #[test]
    fn cpuinfo_of_x86_and_arm() {
        let x86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t: 0\n\n\
                   processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 0\ncore id\t: 1\n\n\
                   processor\t: 2\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\nphysical id\t: 1\ncore id\t: 0\n";
        assert_eq!(cpu_of(x86), (Some("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz".into()), 3, Some(3)));
        let arm = "processor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\nBogoMIPS\t: 108.00\n\n\
                   Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        assert_eq!(cpu_of(arm), (Some("BCM2835".into()), 2, None));
        assert_eq!(cpu_of(""), (None, 0, None));
    }

    #[test]
    fn this_host_is_described() {
        let gpu = GpuReading {
            index: 0,
            name: "G".into(),
            utilization_percent: None,
            memory_used_bytes: None,
            memory_total_bytes: Some(8),
        };
        let info = read(&[gpu]);
        assert!(info.cpu_cores >= 1 && info.memory_total_bytes > 0, "{info:?}");
        assert!(info.kernel.is_some(), "{info:?}");
        assert_eq!(info.gpus, [GpuInfo { index: 0, name: "G".into(), memory_total_bytes: Some(8) }]);
        assert_eq!(info.architecture, std::env::consts::ARCH);
    }
}
