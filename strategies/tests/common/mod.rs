//! Helpers shared by the integration tests: hand-built bars, fills and order
//! updates fed through a real `Dispatcher`.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use chrono::Duration;
use engine::dispatch::Dispatcher;
use engine::model::{
    Bar, Conid, ExecSide, Execution, Order, OrderId, OrderRequest, OrderStatus, Timestamp,
};
use engine::portfolio::Portfolio;
use engine::strategy::{Intent, Strategy};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

pub(crate) const A: Conid = Conid(265598);
pub(crate) const B: Conid = Conid(8314);

/// Minute `i` after the epoch.
pub(crate) fn t(i: i64) -> Timestamp {
    Timestamp::UNIX_EPOCH + Duration::minutes(i)
}

/// A bar whose open, high, low and close are all `close`.
pub(crate) fn bar(conid: Conid, i: i64, close: Decimal) -> Bar {
    ohlc(conid, i, close, close, close)
}

pub(crate) fn ohlc(conid: Conid, i: i64, high: Decimal, low: Decimal, close: Decimal) -> Bar {
    Bar {
        conid,
        time: t(i),
        open: close,
        high,
        low,
        close,
        volume: dec!(1000),
    }
}

pub(crate) fn dispatcher<S: Strategy>(strategy: S) -> Dispatcher<S> {
    let mut d = Dispatcher::new(vec![strategy], Portfolio::new(dec!(1000000)));
    d.start();
    d
}

/// Every intent emitted since the last call, without the strategy index
/// (always 0: one strategy per dispatcher).
pub(crate) fn drain<S: Strategy>(d: &mut Dispatcher<S>) -> Vec<Intent> {
    d.outbox()
        .drain_intents()
        .map(|(i, intent)| {
            assert_eq!(i, 0);
            intent
        })
        .collect()
}

/// Feed one bar; return what it made the strategy emit.
pub(crate) fn step<S: Strategy>(d: &mut Dispatcher<S>, b: &Bar) -> Vec<Intent> {
    d.on_bar(b);
    drain(d)
}

/// The only Place batch in `intents`.
pub(crate) fn single_batch(intents: Vec<Intent>) -> Vec<OrderRequest> {
    assert_eq!(intents.len(), 1, "expected one intent, got {intents:?}");
    match intents.into_iter().next() {
        Some(Intent::Place(batch)) => batch,
        other => panic!("expected a Place, got {other:?}"),
    }
}

/// Book a fill of `size` at `price` for order `id` of strategy 0.
pub(crate) fn fill<S: Strategy>(
    d: &mut Dispatcher<S>,
    conid: Conid,
    side: ExecSide,
    size: Decimal,
    price: Decimal,
    id: Option<OrderId>,
) {
    let exec = Execution {
        execution_id: format!("x-{conid}-{}-{size}-{price}", d.now().timestamp()),
        order_id: id,
        order_ref: id.map(|i| format!("ibf-{i}")),
        account: "DU1".into(),
        conid,
        side,
        size,
        price,
        commission: Decimal::ZERO,
        net_amount: size * price,
        time: d.now(),
    };
    d.on_execution(&exec);
}

/// The engine's view of `req` with the given status and filled quantity.
pub(crate) fn order(req: &OrderRequest, status: OrderStatus, filled: Decimal) -> Order {
    Order {
        request: req.clone(),
        broker_order_id: Some(format!("b{}", req.id)),
        status,
        filled_quantity: filled,
        avg_fill_price: None,
        reason: None,
        strategy: 0,
        created: t(0),
        updated: t(0),
    }
}

pub(crate) fn update<S: Strategy>(
    d: &mut Dispatcher<S>,
    req: &OrderRequest,
    status: OrderStatus,
    filled: Decimal,
) {
    d.on_order_update(order(req, status, filled));
}
