//! The engine's view of working orders.

use std::collections::BTreeMap;

use crate::model::{Order, OrderId};

/// Working orders by id. Orders leave the book when they reach a terminal
/// status, so its size is bounded by what is live, not by history.
#[derive(Debug, Default, Clone)]
pub struct WorkingOrders {
    open: BTreeMap<OrderId, Order>,
}

impl WorkingOrders {
    /// Record the latest state of an order; terminal orders are removed.
    pub fn update(&mut self, order: &Order) {
        if order.is_open() {
            match self.open.get_mut(&order.id()) {
                Some(o) => o.clone_from(order),
                None => {
                    self.open.insert(order.id(), order.clone());
                }
            }
        } else {
            self.open.remove(&order.id());
        }
    }

    pub fn get(&self, id: OrderId) -> Option<&Order> {
        self.open.get(&id)
    }

    /// Open orders in id (submission) order.
    pub fn open(&self) -> impl Iterator<Item = &Order> {
        self.open.values()
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}
