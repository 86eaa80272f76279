//! Knowing which of a strategy's own orders are still working.
//!
//! The engine's order book only learns of an order when the venue
//! acknowledges it, so right after a strategy places a batch the book is
//! still empty; a strategy that asked the book "do I have working orders?"
//! on the next bar would place the same batch again. [`OrderTracker`] closes
//! that gap: it records the ids a strategy placed at once and forgets each
//! one when an update reports it terminal.

use engine::model::{Order, OrderId};
use engine::strategy::BracketIds;

/// The ids a strategy placed (in one contract) and has not yet seen end.
///
/// Bracket exits are remembered with their entry: when an entry ends without
/// any fill (cancelled, expired, rejected) its exits can never go live, and a
/// venue is not obliged to report each of them separately, so they are
/// dropped with it. Exits of an entry that filled, even partly, stay tracked
/// until their own terminal update.
#[derive(Debug, Clone, Default)]
pub struct OrderTracker {
    live: Vec<OrderId>,
    /// (entry, exit) pairs of brackets whose entry is still live.
    children: Vec<(OrderId, OrderId)>,
}

impl OrderTracker {
    /// Nothing tracked.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing placed is still working (or not yet acknowledged).
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// How many placed orders are still working (or not yet acknowledged),
    /// bracket exits counted one by one.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when `id` was placed through this tracker and has not been seen
    /// to end.
    pub fn contains(&self, id: OrderId) -> bool {
        self.live.contains(&id)
    }

    /// Working ids in placement order.
    pub fn ids(&self) -> &[OrderId] {
        &self.live
    }

    /// Remember a single order.
    pub fn track(&mut self, id: OrderId) {
        self.live.push(id);
    }

    /// Remember an entry and its exits.
    pub fn track_bracket(&mut self, ids: &BracketIds) {
        self.live.push(ids.entry);
        for child in [ids.take_profit, ids.stop_loss].into_iter().flatten() {
            self.live.push(child);
            self.children.push((ids.entry, child));
        }
    }

    /// Apply an order update. Returns true when the order is one of the
    /// tracked ones.
    pub fn on_update(&mut self, order: &Order) -> bool {
        let id = order.id();
        if !self.live.contains(&id) {
            return false;
        }
        if !order.status.is_terminal() {
            return true;
        }
        self.live.retain(|x| *x != id);
        if order.filled_quantity.is_zero() {
            let children = &self.children;
            self.live
                .retain(|x| !children.iter().any(|(p, c)| *p == id && c == x));
        }
        self.children.retain(|(p, c)| *p != id && *c != id);
        true
    }

    /// Forget everything (e.g. after the venue was reconciled).
    pub fn clear(&mut self) {
        self.live.clear();
        self.children.clear();
    }
}
