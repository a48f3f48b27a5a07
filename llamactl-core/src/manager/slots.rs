//! Running-slot accounting for `max_running_instances` and group limits.
//!
//! An instance occupies a slot from the moment its start is admitted (a reservation) until its
//! process is gone (the actor releases it on reaching `stopped` or `failed`). Reservations for
//! an instance that already occupies a slot are free, so any number of concurrent starts of one
//! instance take one slot.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::Limit;

/// The configured limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_running: Option<usize>,
    pub(crate) groups: BTreeMap<String, usize>,
}

#[derive(Debug)]
struct Entry {
    group: Option<String>,
    held: bool,
    reservations: u32,
}

#[derive(Debug)]
pub(crate) struct Slots {
    limits: Mutex<Limits>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Serialises admissions, so that waiters for a freed slot are served in order.
    pub(crate) admission: tokio::sync::Mutex<()>,
}

/// A claim on a slot for one instance, made before its start is sent to its actor. Committed
/// by the actor when it spawns; given back if dropped uncommitted.
#[derive(Debug)]
pub(crate) struct SlotReservation {
    slots: Arc<Slots>,
    name: String,
    active: bool,
}

impl SlotReservation {
    /// The instance now holds its slot until [`Slots::release`].
    pub(crate) fn commit(mut self) {
        self.active = false;
        let mut entries = self.slots.lock();
        if let Some(entry) = entries.get_mut(&self.name) {
            entry.held = true;
            entry.reservations = entry.reservations.saturating_sub(1);
        }
    }
}

impl Drop for SlotReservation {
    fn drop(&mut self) {
        if self.active {
            let mut entries = self.slots.lock();
            if let Some(entry) = entries.get_mut(&self.name) {
                entry.reservations = entry.reservations.saturating_sub(1);
                if !entry.held && entry.reservations == 0 {
                    entries.remove(&self.name);
                }
            }
        }
    }
}

impl Slots {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits: Mutex::new(limits),
            entries: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
        })
    }

    /// Admits by `limits` from now on. Instances already holding a slot keep it, even past a
    /// lower limit: nothing is stopped for a smaller limit, new starts wait or evict.
    pub(crate) fn set_limits(&self, limits: Limits) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves a slot for `name`, or says which limit is in the way.
    pub(crate) fn try_reserve(self: &Arc<Self>, name: &str, group: Option<&str>) -> Result<SlotReservation, Limit> {
        let limits = self.limits.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name) {
            entry.reservations += 1;
        } else {
            if let Some(max) = limits.max_running
                && entries.len() >= max
            {
                return Err(Limit::Global { max });
            }
            if let Some(group) = group
                && let Some(&max) = limits.groups.get(group)
                && entries.values().filter(|e| e.group.as_deref() == Some(group)).count() >= max
            {
                return Err(Limit::Group { group: group.to_owned(), max });
            }
            entries.insert(name.to_owned(), Entry { group: group.map(str::to_owned), held: false, reservations: 1 });
        }
        Ok(SlotReservation { slots: self.clone(), name: name.to_owned(), active: true })
    }

    /// The instance's process is gone: its slot is free (unless a start is being admitted).
    pub(crate) fn release(&self, name: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(name) {
            entry.held = false;
            if entry.reservations == 0 {
                entries.remove(name);
            }
        }
    }

    /// The instance's group changed.
    pub(crate) fn set_group(&self, name: &str, group: Option<&str>) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.group = group.map(str::to_owned);
        }
    }

    /// Instances holding a slot, with their group.
    pub(crate) fn holders(&self) -> Vec<(String, Option<String>)> {
        self.lock().iter().filter(|(_, e)| e.held).map(|(n, e)| (n.clone(), e.group.clone())).collect()
    }

    /// Number of instances occupying a slot (held or reserved).
    pub(crate) fn occupied(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: Option<usize>, groups: &[(&str, usize)]) -> Limits {
        Limits { max_running: max, groups: groups.iter().map(|(g, m)| (g.to_string(), *m)).collect() }
    }

    #[test]
    fn concurrent_reservations_of_one_instance_take_one_slot() {
        let slots = Slots::new(limits(Some(1), &[]));
        let a1 = slots.try_reserve("a", None).unwrap();
        let a2 = slots.try_reserve("a", None).unwrap();
        assert_eq!(slots.try_reserve("b", None).unwrap_err(), Limit::Global { max: 1 });
        a1.commit();
        drop(a2);
        assert_eq!(slots.holders(), [("a".to_string(), None)]);
        slots.release("a");
        assert!(slots.try_reserve("b", None).is_ok());
    }

    #[test]
    fn an_abandoned_reservation_frees_the_slot() {
        let slots = Slots::new(limits(Some(1), &[]));
        drop(slots.try_reserve("a", None).unwrap());
        assert_eq!(slots.occupied(), 0);
        assert!(slots.try_reserve("b", None).is_ok());
    }

    #[test]
    fn group_limits_count_only_their_group() {
        let slots = Slots::new(limits(None, &[("gpu", 1)]));
        slots.try_reserve("a", Some("gpu")).unwrap().commit();
        assert_eq!(slots.try_reserve("b", Some("gpu")).unwrap_err(), Limit::Group { group: "gpu".into(), max: 1 });
        slots.try_reserve("c", Some("cpu")).unwrap().commit();
        slots.try_reserve("d", None).unwrap().commit();
        assert_eq!(slots.occupied(), 3);
    }

    #[test]
    fn release_while_a_start_is_admitted_keeps_the_slot() {
        let slots = Slots::new(limits(Some(1), &[]));
        slots.try_reserve("a", None).unwrap().commit();
        let again = slots.try_reserve("a", None).unwrap();
        slots.release("a");
        assert!(slots.try_reserve("b", None).is_err(), "a's new start still owns the slot");
        again.commit();
        assert_eq!(slots.holders().len(), 1);
    }
}
