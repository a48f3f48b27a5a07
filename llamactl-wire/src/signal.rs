//! Names of signal numbers, for saying how a backend ended.
//!
//! The numbers in an [`ExitInfo`](crate::ExitInfo) are those of the machine that ran the backend,
//! which for llamactl is Linux (the supervisor reads `/proc`). The names are therefore Linux's,
//! wherever they are printed: a client on another system shows what the server saw.

/// Linux's signal names, indexed by number (`SIGNALS[0]` is unused: 0 is no signal).
const SIGNALS: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The name of Linux signal `number`, or `None` for 0, a real-time signal or a number no signal
/// has.
///
/// ```
/// use llamactl_wire::signal_name;
/// assert_eq!(signal_name(9), Some("SIGKILL"));
/// assert_eq!(signal_name(15), Some("SIGTERM"));
/// assert_eq!(signal_name(0), None);
/// assert_eq!(signal_name(40), None);
/// ```
pub fn signal_name(number: i32) -> Option<&'static str> {
    let index = usize::try_from(number).ok().filter(|&i| i > 0)?;
    SIGNALS.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_the_table_have_no_name() {
        for number in [i32::MIN, -1, 0, 32, 64, i32::MAX] {
            assert_eq!(signal_name(number), None, "{number}");
        }
    }

    #[test]
    fn every_standard_signal_has_a_distinct_name() {
        let names: Vec<&str> = (1..32).filter_map(signal_name).collect();
        assert_eq!(names.len(), 31);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().all(|name| name.starts_with("SIG")));
    }
}
