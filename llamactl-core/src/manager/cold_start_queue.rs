//! The cold-start queue: a bounded waiting room per instance for requests that wait while it
//! starts. A place is taken only by a request that must wait (a ready instance is leased
//! without queueing) and given back when the request stops waiting, whatever the outcome.

use std::collections::HashMap;
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
    waiting: Mutex<HashMap<String, usize>>,
}

impl ColdStartQueue {
    /// Rooms of `capacity` places per instance (0: no request may wait).
    pub fn new(capacity: usize) -> Self {
        Self { inner: Arc::new(Inner { capacity, waiting: Mutex::new(HashMap::new()) }) }
    }

    /// Places per instance.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place in `instance`'s room, or says it is full.
    pub fn enter(&self, instance: &str) -> Result<QueuePlace, QueueFull> {
        let mut waiting = self.waiting();
        let count = waiting.entry(instance.to_owned()).or_insert(0);
        if *count >= self.inner.capacity {
            let full = QueueFull { instance: instance.to_owned(), capacity: self.inner.capacity };
            if *count == 0 {
                waiting.remove(instance);
            }
            return Err(full);
        }
        *count += 1;
        Ok(QueuePlace { queue: self.clone(), instance: instance.to_owned(), position: *count })
    }

    /// Requests waiting for `instance` now.
    pub fn depth(&self, instance: &str) -> usize {
        self.waiting().get(instance).copied().unwrap_or(0)
    }

    /// Every instance with requests waiting, and how many.
    pub fn depths(&self) -> Vec<(String, usize)> {
        let mut depths: Vec<(String, usize)> = self.waiting().iter().map(|(k, v)| (k.clone(), *v)).collect();
        depths.sort();
        depths
    }
}

/// A place in an instance's room; dropping it gives the place back.
#[derive(Debug)]
pub struct QueuePlace {
    queue: ColdStartQueue,
    instance: String,
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
        if let Some(count) = waiting.get_mut(&self.instance) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.instance);
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
