//! The cold-start queue: a bounded waiting room per instance for requests that wait while it
//! starts. A place is taken only by a request that must wait (a ready instance is leased
//! without queueing) and given back when the request stops waiting, whatever the outcome.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The queue of one instance was full: [`ColdStartQueue::enter`]'s refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{capacity} requests are already waiting for instance {instance} to start")]
pub struct QueueFull {
    /// The instance.
    pub instance: String,
    /// Places per instance.
    pub capacity: usize,
}

/// Bounded waiting rooms, one per instance, each of `capacity` places. Cheap to clone; clones
/// share the places.
///
/// ```
/// use llamactl_core::manager::ColdStartQueue;
///
/// let queue = ColdStartQueue::new(1);
/// let first = queue.enter("tiny")?;
/// assert_eq!(first.position(), 1);
/// assert!(queue.enter("tiny").is_err(), "one place only");
/// assert!(queue.enter("other").is_ok(), "each instance has its own places");
/// drop(first);
/// assert_eq!(queue.depth("tiny"), 0);
/// # Ok::<(), llamactl_core::manager::QueueFull>(())
/// ```
#[derive(Debug, Clone)]
pub struct ColdStartQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    waiting: Mutex<Rooms>,
}

/// Each room's waiters in the order they entered (by an entry number), with the ticket each
/// was given, if any.
#[derive(Debug, Default)]
struct Rooms {
    entered: u64,
    rooms: HashMap<String, BTreeMap<u64, Option<u64>>>,
}

impl ColdStartQueue {
    /// Rooms of `capacity` places per instance (0: no request may wait).
    pub fn new(capacity: usize) -> Self {
        Self { inner: Arc::new(Inner { capacity, waiting: Mutex::new(Rooms::default()) }) }
    }

    /// Places per instance.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    fn waiting(&self) -> MutexGuard<'_, Rooms> {
        self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place in `instance`'s room, or says it is full.
    pub fn enter(&self, instance: &str) -> Result<QueuePlace, QueueFull> {
        self.enter_with(instance, None)
    }

    /// Takes a place in `instance`'s room for the request called `ticket` (see
    /// [`position_of`](Self::position_of)), or says it is full.
    pub fn enter_with(&self, instance: &str, ticket: Option<u64>) -> Result<QueuePlace, QueueFull> {
        let mut waiting = self.waiting();
        let Rooms { entered, rooms } = &mut *waiting;
        let room = rooms.entry(instance.to_owned()).or_default();
        if room.len() >= self.inner.capacity {
            let full = QueueFull { instance: instance.to_owned(), capacity: self.inner.capacity };
            if room.is_empty() {
                rooms.remove(instance);
            }
            return Err(full);
        }
        *entered += 1;
        room.insert(*entered, ticket);
        Ok(QueuePlace { queue: self.clone(), instance: instance.to_owned(), entry: *entered, position: room.len() })
    }

    /// Requests waiting for `instance` now.
    pub fn depth(&self, instance: &str) -> usize {
        self.waiting().rooms.get(instance).map_or(0, BTreeMap::len)
    }

    /// Every instance with requests waiting, and how many.
    pub fn depths(&self) -> Vec<(String, usize)> {
        let mut depths: Vec<(String, usize)> = self.waiting().rooms.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        depths.sort();
        depths
    }

    /// Where the request called `ticket` waits for `instance` now (1: next), if it waits.
    ///
    /// ```
    /// use llamactl_core::manager::ColdStartQueue;
    ///
    /// let queue = ColdStartQueue::new(8);
    /// let first = queue.enter_with("tiny", Some(10))?;
    /// let _second = queue.enter_with("tiny", Some(11))?;
    /// assert_eq!(queue.position_of("tiny", 11), Some(2));
    /// drop(first);
    /// assert_eq!(queue.position_of("tiny", 11), Some(1));
    /// assert_eq!(queue.position_of("tiny", 10), None);
    /// # Ok::<(), llamactl_core::manager::QueueFull>(())
    /// ```
    pub fn position_of(&self, instance: &str, ticket: u64) -> Option<usize> {
        let waiting = self.waiting();
        let room = waiting.rooms.get(instance)?;
        room.values().position(|t| *t == Some(ticket)).map(|i| i + 1)
    }
}

/// A place in an instance's room; dropping it gives the place back.
#[derive(Debug)]
pub struct QueuePlace {
    queue: ColdStartQueue,
    instance: String,
    entry: u64,
    position: usize,
}

impl QueuePlace {
    /// The instance waited for.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// How many requests waited for the instance when this one entered, itself included.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        let mut waiting = self.queue.waiting();
        if let Some(room) = waiting.rooms.get_mut(&self.instance) {
            room.remove(&self.entry);
            if room.is_empty() {
                waiting.rooms.remove(&self.instance);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_per_instance_and_given_back() {
        let queue = ColdStartQueue::new(2);
        let a = queue.enter("a").unwrap();
        let b = queue.enter("a").unwrap();
        assert_eq!((a.position(), b.position()), (1, 2));
        assert_eq!(queue.enter("a").unwrap_err(), QueueFull { instance: "a".into(), capacity: 2 });
        assert_eq!(queue.depths(), [("a".to_owned(), 2)]);
        drop(a);
        let c = queue.enter("a").unwrap();
        assert_eq!(queue.depth("a"), 2);
        drop((b, c));
        assert!(queue.depths().is_empty(), "an empty room is forgotten");
    }

    #[test]
    fn a_room_of_no_places_refuses_and_keeps_nothing() {
        let queue = ColdStartQueue::new(0);
        assert!(queue.enter("a").is_err());
        assert!(queue.depths().is_empty());
    }
}
