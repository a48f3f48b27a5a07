//! Recognising a process again later: its pid alone is not enough (pids are reused), so the
//! pid is recorded with the process's start time and the kernel's boot id.

use std::sync::OnceLock;

/// A process as recorded: pid, start time (clock ticks after boot) and boot id.
///
/// ```
/// use llamactl_core::process::ProcessIdentity;
///
/// let me = ProcessIdentity::of(std::process::id() as i32).expect("/proc is readable");
/// assert!(me.is_running());
/// let impostor = ProcessIdentity { start_ticks: me.start_ticks + 1, ..me.clone() };
/// assert!(!impostor.is_running(), "same pid, different start time: not the same process");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks after boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
    /// The kernel's boot id when the process was recorded.
    pub boot_id: Option<String>,
}

/// The current kernel boot id (`/proc/sys/kernel/random/boot_id`), read once.
pub fn boot_id() -> Option<String> {
    static BOOT_ID: OnceLock<Option<String>> = OnceLock::new();
    BOOT_ID.get_or_init(|| procfs::sys::kernel::random::boot_id().ok().map(|id| id.trim().to_owned())).clone()
}

/// Start time and state of a live process, `None` if there is no such process.
fn stat(pid: i32) -> Option<(u64, char)> {
    let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some((stat.starttime, stat.state))
}

impl ProcessIdentity {
    /// The identity of a running process, `None` if it does not exist.
    pub fn of(pid: i32) -> Option<Self> {
        let (start_ticks, _) = stat(pid)?;
        Some(Self { pid, start_ticks, boot_id: boot_id() })
    }

    /// Whether this very process still runs: same boot, same pid, same start time, and not a
    /// zombie. A pid reused by another process is not a match.
    pub fn is_running(&self) -> bool {
        if self.boot_id.is_some() && self.boot_id != boot_id() {
            return false;
        }
        matches!(stat(self.pid), Some((ticks, state)) if ticks == self.start_ticks && state != 'Z' && state != 'X')
    }
}

/// A fingerprint of a command line: the program's file name and every argument (the program's
/// folder is left out: one manager may find it on `PATH`, the next by its full path).
///
/// ```
/// use llamactl_core::process::command_hash;
/// let a = command_hash("/usr/local/bin/llama-server", &["--port".into(), "8001".into()]);
/// assert_eq!(a, command_hash("llama-server", &["--port".into(), "8001".into()]));
/// assert_ne!(a, command_hash("llama-server", &["--port".into(), "8002".into()]));
/// ```
pub fn command_hash(program: &str, args: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let name = std::path::Path::new(program).file_name().map_or_else(|| program.into(), |n| n.to_string_lossy());
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    for arg in args {
        hasher.update([0]);
        hasher.update(arg.as_bytes());
    }
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// [`command_hash`] of what process `pid` runs now (`/proc/PID/cmdline`), `None` if it cannot
/// be read.
pub fn running_command_hash(pid: i32) -> Option<String> {
    let argv = procfs::process::Process::new(pid).ok()?.cmdline().ok()?;
    let (program, args) = argv.split_first()?;
    Some(command_hash(program, args))
}
