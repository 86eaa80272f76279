//! The engine's one record of order state: what every strategy sees as its
//! working orders, and what the router folds venue reports into.
//!
//! Updates come from the simulated exchange, websocket `sor` messages,
//! broker answers and REST polls. They can repeat, arrive late or out of
//! order; [`WorkingOrders::update`] folds each into the order's
//! [`OrderState`] so a strategy never hears the same state twice or a
//! state go backwards, and a final order (filled, cancelled) never comes
//! back.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::{Order, OrderId};
use crate::order_state::OrderState;

/// How many finished orders are remembered, to refuse their late updates.
/// Late `sor` messages arrive within seconds; this bounds memory in a
/// backtest of millions of orders.
const REMEMBER_FINISHED: usize = 4096;

/// Hashes an order id with one multiplication: the ids are the engine's
/// own small integers, and a backtest looks them up on every fill.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<OrderId, V, BuildHasherDefault<IdHasher>>;

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned, never stored: a box would allocate for every finished order on the backtest's hot path"
)]
pub enum Applied {
    /// Stale or repeated: nothing changed, nobody is told.
    Stale,
    /// The order changed and is working: [`WorkingOrders::get`] has its
    /// new state.
    Working(OrderId),
    /// The order changed and left the working set (filled, cancelled,
    /// inactive): this is its final state.
    Finished(Order),
}

impl Applied {
    /// The order's new state, when it changed: a working order's is in
    /// `orders`, a finished order's is here.
    pub fn order<'a>(&'a self, orders: &'a WorkingOrders) -> Option<&'a Order> {
        match self {
            Applied::Stale => None,
            Applied::Working(id) => orders.get(*id),
            Applied::Finished(o) => Some(o),
        }
    }
}

/// Working orders by id, plus the states of recently finished ones. Orders
/// leave the working set when they reach a terminal status, so its size is
/// bounded by what is live, not by history.
#[derive(Debug, Clone)]
pub struct WorkingOrders {
    open: BTreeMap<OrderId, Order>,
    /// Final state and owning strategy of recently finished orders.
    finished: IdMap<(OrderState, usize)>,
    finished_order: VecDeque<OrderId>,
    /// How many finished orders to remember.
    remember: usize,
}

impl Default for WorkingOrders {
    fn default() -> Self {
        WorkingOrders {
            open: BTreeMap::new(),
            finished: IdMap::default(),
            finished_order: VecDeque::new(),
            remember: REMEMBER_FINISHED,
        }
    }
}

impl WorkingOrders {
    /// Fold the latest report of an order into its state. Terminal orders
    /// leave the working set. The report is taken by value: it becomes the
    /// order's state (after the fold keeps a status from going backwards,
    /// a fill quantity from shrinking, a known average price from being
    /// forgotten), so nothing is copied.
    pub fn update(&mut self, mut order: Order) -> Applied {
        let id = order.id();
        if let Some(known) = self.open.get_mut(&id) {
            let mut state = OrderState {
                status: known.status,
                filled: known.filled_quantity,
            };
            let moved = state.apply(order.status, Some(order.filled_quantity));
            // Cheapest tests first: most reports move the status.
            let changed = moved
                || order.avg_fill_price.is_some() && order.avg_fill_price != known.avg_fill_price
                || known.request != order.request;
            if !changed {
                return Applied::Stale;
            }
            order.status = state.status;
            order.filled_quantity = state.filled;
            if order.avg_fill_price.is_none() {
                order.avg_fill_price = known.avg_fill_price;
            }
            order.created = known.created;
            if !state.status.is_terminal() {
                *known = order;
                return Applied::Working(id);
            }
            self.open.remove(&id);
            self.finish(id, state, order.strategy);
            return Applied::Finished(order);
        }
        if let Some((state, _)) = self.finished.get_mut(&id) {
            // Only an inactive order can come back (IBKR reports `Inactive`
            // for orders it later works); filled and cancelled never change.
            if !state.apply(order.status, Some(order.filled_quantity)) {
                return Applied::Stale;
            }
            order.status = state.status;
            order.filled_quantity = state.filled;
            if state.status.is_terminal() {
                return Applied::Finished(order);
            }
            self.finished.remove(&id);
            self.open.insert(id, order);
            return Applied::Working(id);
        }
        if order.is_open() {
            self.open.insert(id, order);
            return Applied::Working(id);
        }
        let state = OrderState {
            status: order.status,
            filled: order.filled_quantity,
        };
        self.finish(id, state, order.strategy);
        Applied::Finished(order)
    }

    /// Remember at most `n` finished orders. A venue that reports in order
    /// (the simulated exchange: a fill before the update that closes its
    /// order, never a late status) needs none; a live venue's late reports
    /// need the default.
    pub fn set_finished_memory(&mut self, n: usize) {
        self.remember = n;
        while self.finished_order.len() > n {
            if let Some(old) = self.finished_order.pop_front() {
                self.finished.remove(&old);
            }
        }
    }

    fn finish(&mut self, id: OrderId, state: OrderState, strategy: usize) {
        if self.remember == 0 {
            return;
        }
        if self.finished.insert(id, (state, strategy)).is_none() {
            self.finished_order.push_back(id);
            if self.finished_order.len() > self.remember {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
    }

    /// A working order.
    pub fn get(&self, id: OrderId) -> Option<&Order> {
        self.open.get(&id)
    }

    /// The strategy that owns order `id`, working or recently finished (an
    /// execution often arrives after its order's final update).
    pub fn owner(&self, id: OrderId) -> Option<usize> {
        self.open
            .get(&id)
            .map(|o| o.strategy)
            .or_else(|| self.finished.get(&id).map(|&(_, s)| s))
    }

    /// Open orders in id (submission) order.
    pub fn open(&self) -> impl Iterator<Item = &Order> {
        self.open.values()
    }

    /// How many orders are working.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no order is working.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Conid, OrderRequest, OrderStatus, OrderType, Side, Tif};
    use rust_decimal::Decimal;

    fn order(status: OrderStatus, filled: i64) -> Order {
        let req = OrderRequest {
            id: OrderId(1),
            conid: Conid(1),
            side: Side::Buy,
            order_type: OrderType::Limit,
            quantity: Decimal::TEN,
            limit_price: Some(Decimal::ONE),
            stop_price: None,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: "c1".into(),
            parent: None,
            oca_group: None,
        };
        let mut o = Order::rejected(req, 0, chrono::DateTime::UNIX_EPOCH, "x");
        o.reason = None;
        o.status = status;
        o.filled_quantity = Decimal::from(filled);
        o
    }

    #[test]
    fn repeats_and_stale_updates_are_not_news() {
        let mut w = WorkingOrders::default();
        let id = OrderId(1);
        assert_eq!(
            w.update(order(OrderStatus::Submitted, 0)),
            Applied::Working(id)
        );
        assert_eq!(w.update(order(OrderStatus::Submitted, 0)), Applied::Stale);
        assert_eq!(
            w.update(order(OrderStatus::PreSubmitted, 0)),
            Applied::Stale
        );
        // A late status with a new fill: the fill counts, the status stays.
        assert_eq!(
            w.update(order(OrderStatus::PreSubmitted, 4)),
            Applied::Working(id)
        );
        let kept = w.get(id).unwrap();
        assert_eq!(kept.status, OrderStatus::Submitted);
        assert_eq!(kept.filled_quantity, Decimal::from(4));
        // A known average price is not forgotten by a report without one.
        let mut priced = order(OrderStatus::Submitted, 5);
        priced.avg_fill_price = Some(Decimal::TWO);
        assert_eq!(w.update(priced), Applied::Working(id));
        assert_eq!(
            w.update(order(OrderStatus::Submitted, 6)),
            Applied::Working(id)
        );
        assert_eq!(w.get(id).unwrap().avg_fill_price, Some(Decimal::TWO));
        match w.update(order(OrderStatus::Filled, 10)) {
            Applied::Finished(o) => {
                assert_eq!(o.status, OrderStatus::Filled);
                assert_eq!(o.avg_fill_price, Some(Decimal::TWO));
            }
            other => panic!("{other:?}"),
        }
        assert!(w.is_empty());
        // Final never changes: a late working update is refused.
        assert_eq!(w.update(order(OrderStatus::Submitted, 4)), Applied::Stale);
        assert!(w.get(id).is_none());
        assert_eq!(w.owner(id), Some(0));
    }

    #[test]
    fn an_inactive_order_can_come_back_to_work() {
        let mut w = WorkingOrders::default();
        let id = OrderId(1);
        assert!(matches!(
            w.update(order(OrderStatus::Inactive, 0)),
            Applied::Finished(_)
        ));
        assert_eq!(
            w.update(order(OrderStatus::Submitted, 0)),
            Applied::Working(id)
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn memory_of_finished_orders_is_bounded() {
        let mut w = WorkingOrders::default();
        for i in 0..(REMEMBER_FINISHED as u64 * 2) {
            let mut o = order(OrderStatus::Cancelled, 0);
            o.request.id = OrderId(i);
            w.update(o);
        }
        assert_eq!(w.finished.len(), REMEMBER_FINISHED);
        assert_eq!(w.finished_order.len(), REMEMBER_FINISHED);
    }
}
