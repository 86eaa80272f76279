//! The exactly-once gate of a live feed: ids already delivered, so the
//! same execution reported twice (a websocket `str` replay after a
//! reconnect, the REST trades fetched to cover a gap, both at once) reaches
//! strategies and the portfolio once.
//!
//! Bounded: a bot runs for weeks, and an unbounded set would grow with
//! every execution. The oldest ids are forgotten first, beyond
//! [`SeenIds::capacity`]. The default (100,000) is far above what a venue
//! can report again: IBKR's trades endpoint reaches back 7 days, and the
//! CP Web API's pacing (10 requests per second) caps how many orders a bot
//! sends in that time well below it for any strategy that waits for its
//! fills.

use std::collections::{HashSet, VecDeque};

/// Ids seen, the newest `capacity` of them remembered.
#[derive(Debug, Clone)]
pub struct SeenIds {
    set: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Default for SeenIds {
    fn default() -> Self {
        SeenIds::with_capacity(SeenIds::DEFAULT_CAPACITY)
    }
}

impl SeenIds {
    /// See the module doc.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty gate remembering at most `capacity` ids (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        SeenIds {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Record `id`; true when it was not seen before (deliver it), false
    /// for a repeat (drop it).
    pub fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }

    /// Whether `id` was seen (and is still remembered).
    pub fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nothing was seen yet.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The most ids remembered.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_is_refused_and_the_oldest_forgotten_first() {
        let mut seen = SeenIds::with_capacity(2);
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"), "a repeat");
        assert!(seen.insert("b"));
        assert!(seen.insert("c"), "beyond capacity: a is forgotten");
        assert_eq!(seen.len(), 2);
        assert!(!seen.contains("a"));
        assert!(seen.contains("b") && seen.contains("c"));
        assert!(!seen.insert("c"));
        assert!(seen.insert("a"), "forgotten, so new again");
        assert!(!seen.contains("b"));
    }

    #[test]
    fn memory_stays_bounded_over_a_long_run() {
        let mut seen = SeenIds::with_capacity(1000);
        for i in 0..100_000 {
            assert!(seen.insert(&format!("exec-{i}")));
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.contains("exec-99999") && !seen.contains("exec-98999"));
        assert_eq!(SeenIds::with_capacity(0).capacity(), 1);
    }
}
