//! A `max_in_flight` limit, for routes and upstreams alike: places are taken as [`Slot`]s, and
//! a slot gives its place back when it is dropped, so no phase has to remember to.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// At most `max` requests at once. The count is shared with the slots, so a slot taken on one
/// config stays countable after a reload replaced that config.
#[derive(Debug)]
pub struct Limit {
    max: usize,
    taken: Arc<AtomicUsize>,
}

impl Limit {
    /// A limit of `max` places.
    pub fn new(max: usize) -> Self {
        Limit { max, taken: Arc::new(AtomicUsize::new(0)) }
    }

    /// Takes a place, or `None` when all are taken.
    pub fn try_take(&self) -> Option<Slot> {
        if self.taken.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.taken.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.taken.clone()))
    }

    /// Places taken now.
    pub fn taken(&self) -> usize {
        self.taken.load(Ordering::Acquire)
    }
}

/// One place of a [`Limit`], given back on drop.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_on_drop() {
        let limit = Limit::new(2);
        let a = limit.try_take().expect("first place");
        let b = limit.try_take().expect("second place");
        assert!(limit.try_take().is_none(), "the limit is 2");
        assert_eq!(limit.taken(), 2, "a refused take leaves the count as it was");
        drop(a);
        let c = limit.try_take().expect("a dropped slot frees its place");
        drop((b, c));
        assert_eq!(limit.taken(), 0);
    }
}
