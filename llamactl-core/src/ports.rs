//! Port bookkeeping: pinned ports belong to their instance for its whole life; other instances
//! get a port from the configured range when they start and give it back when they stop, so
//! ten thousand defined instances need only as many ports as run at once. A port is checked
//! free by binding it before a backend is spawned.

use std::collections::HashMap;
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

/// A port problem, naming the port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Another instance pins this port.
    #[error("backend_options.port: port {port} is already pinned by instance {owner}")]
    Conflict {
        /// The port.
        port: u16,
        /// The instance that has it.
        owner: String,
    },
    /// Some process already listens on the port.
    #[error("port {port} on {host} is in use by another process")]
    InUse {
        /// The port.
        port: u16,
        /// The address checked.
        host: String,
    },
    /// Every port of the range is taken.
    #[error("no free port in the range {start}-{end}")]
    Exhausted {
        /// First port of the range.
        start: u16,
        /// Last port of the range.
        end: u16,
    },
}

#[derive(Debug)]
struct State {
    range: RangeInclusive<u16>,
    pinned: HashMap<u16, String>,
    leased: HashMap<u16, String>,
    cursor: u16,
}

/// Hands out ports. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct PortAllocator {
    state: Arc<Mutex<State>>,
}

/// A port held by a running instance; given back when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl PortLease {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.leased.remove(&self.port);
    }
}

/// Whether `host:port` can be bound right now.
pub fn port_is_free(host: &str, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

impl PortAllocator {
    /// An allocator for `range` (e.g. `8000..=9000`).
    pub fn new(range: RangeInclusive<u16>) -> Self {
        let cursor = *range.start();
        let state = State { range, pinned: HashMap::new(), leased: HashMap::new(), cursor };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// Hands out ports of `range` from now on; ports leased or pinned outside it stay theirs.
    pub fn set_range(&self, range: RangeInclusive<u16>) {
        let mut state = self.lock();
        if !range.contains(&state.cursor) {
            state.cursor = *range.start();
        }
        state.range = range;
    }

    /// The range ports are handed out from.
    pub fn range(&self) -> RangeInclusive<u16> {
        self.lock().range.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `owner` pins `port`; fails if another instance pins it.
    pub fn pin(&self, owner: &str, port: u16) -> Result<(), PortError> {
        let mut state = self.lock();
        match state.pinned.get(&port) {
            Some(other) if other != owner => Err(PortError::Conflict { port, owner: other.clone() }),
            _ => {
                state.pinned.insert(port, owner.to_owned());
                Ok(())
            }
        }
    }

    /// Forgets `owner`'s pin on `port`.
    pub fn unpin(&self, owner: &str, port: u16) {
        let mut state = self.lock();
        if state.pinned.get(&port).is_some_and(|o| o == owner) {
            state.pinned.remove(&port);
        }
    }

    /// The instance pinning `port`, if any.
    pub fn pinned_by(&self, port: u16) -> Option<String> {
        self.lock().pinned.get(&port).cloned()
    }

    /// Takes `port` for a run of `owner` that is already listening on it (an adopted backend):
    /// no check that the port is free, but it must not be leased to another instance.
    pub fn adopt(&self, owner: &str, port: u16) -> Result<PortLease, PortError> {
        let mut state = self.lock();
        if let Some(holder) = state.leased.get(&port).filter(|h| *h != owner) {
            return Err(PortError::Conflict { port, owner: holder.clone() });
        }
        if let Some(holder) = state.pinned.get(&port).filter(|h| *h != owner) {
            return Err(PortError::Conflict { port, owner: holder.clone() });
        }
        state.leased.insert(port, owner.to_owned());
        Ok(PortLease { port, state: self.state.clone() })
    }

    /// Takes a port for a run of `owner`: its pinned port if given (checked free), else the next
    /// free port of the range, round robin, skipping pinned and leased ports and any port that
    /// cannot be bound on `host`.
    pub fn lease(&self, owner: &str, pinned: Option<u16>, host: &str) -> Result<PortLease, PortError> {
        let mut state = self.lock();
        if let Some(port) = pinned {
            if let Some(holder) = state.leased.get(&port).filter(|h| *h != owner) {
                return Err(PortError::Conflict { port, owner: holder.clone() });
            }
            if !port_is_free(host, port) {
                return Err(PortError::InUse { port, host: host.to_owned() });
            }
            state.leased.insert(port, owner.to_owned());
            return Ok(PortLease { port, state: self.state.clone() });
        }
        let (start, end) = (*state.range.start(), *state.range.end());
        let size = u32::from(end) - u32::from(start) + 1;
        for step in 0..size {
            let offset = (u32::from(state.cursor.saturating_sub(start)) + step) % size;
            let Ok(port) = u16::try_from(u32::from(start) + offset) else { continue };
            if state.pinned.contains_key(&port) || state.leased.contains_key(&port) || !port_is_free(host, port) {
                continue;
            }
            state.cursor = if port == end { start } else { port + 1 };
            state.leased.insert(port, owner.to_owned());
            return Ok(PortLease { port, state: self.state.clone() });
        }
        Err(PortError::Exhausted { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_range(len: u16) -> RangeInclusive<u16> {
        // Find `len` consecutive bindable ports in a high range.
        'outer: for start in (32_000..32_700u16).step_by(7) {
            for port in start..start + len {
                if !port_is_free("127.0.0.1", port) {
                    continue 'outer;
                }
            }
            return start..=start + len - 1;
        }
        panic!("no free port range");
    }

    #[test]
    fn leases_are_unique_and_come_back_when_dropped() {
        let range = free_range(3);
        let ports = PortAllocator::new(range.clone());
        let a = ports.lease("a", None, "127.0.0.1").unwrap();
        let b = ports.lease("b", None, "127.0.0.1").unwrap();
        let c = ports.lease("c", None, "127.0.0.1").unwrap();
        let mut got = vec![a.port(), b.port(), c.port()];
        got.sort_unstable();
        assert_eq!(got, range.clone().collect::<Vec<_>>());
        assert!(matches!(ports.lease("d", None, "127.0.0.1"), Err(PortError::Exhausted { .. })));
        drop(b);
        assert!(ports.lease("d", None, "127.0.0.1").is_ok());
    }

    #[test]
    fn pinned_ports_are_skipped_and_conflicts_named() {
        let range = free_range(2);
        let ports = PortAllocator::new(range.clone());
        ports.pin("owner", *range.start()).unwrap();
        let err = ports.pin("other", *range.start()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("backend_options.port: port {} is already pinned by instance owner", range.start())
        );
        let lease = ports.lease("x", None, "127.0.0.1").unwrap();
        assert_eq!(lease.port(), *range.end());
        ports.unpin("owner", *range.start());
        assert!(ports.pin("other", *range.start()).is_ok());
    }

    #[test]
    fn a_port_taken_by_another_process_is_never_handed_out() {
        let range = free_range(2);
        let squatter = TcpListener::bind(("127.0.0.1", *range.start())).unwrap();
        let ports = PortAllocator::new(range.clone());
        assert_eq!(ports.lease("x", None, "127.0.0.1").unwrap().port(), *range.end());
        let err = ports.lease("y", Some(*range.start()), "127.0.0.1").unwrap_err();
        assert!(matches!(err, PortError::InUse { .. }), "{err}");
        drop(squatter);
    }

    #[test]
    fn ten_thousand_pinned_definitions_do_not_exhaust_a_small_range() {
        let range = free_range(2);
        let ports = PortAllocator::new(range);
        for i in 0..10_000u32 {
            // Pins far outside the range, as instances that are defined but not running would hold.
            ports.pin(&format!("i{i}"), 1 + (i % 20_000) as u16).ok();
        }
        assert!(ports.lease("runner", None, "127.0.0.1").is_ok());
    }
}
