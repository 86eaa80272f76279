//! The dispatcher and the strategy context: routing, ordering, timers and
//! the intents each helper emits.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_engine as engine;

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use engine::dispatch::Dispatcher;
use engine::event::{Event, SessionStatus};
use engine::model::{
    Bar, Conid, ExecSide, Execution, Order, OrderId, OrderStatus, OrderType, Side, Tif, Timestamp,
};
use engine::portfolio::Portfolio;
use engine::strategy::{Context, Exits, Intent, OrderSpec, Strategy, TimerId};

const C: Conid = Conid(5);

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 14, 0, 0).unwrap() + Duration::minutes(min)
}

fn bar(min: i64, close: Decimal) -> Bar {
    Bar {
        conid: C,
        time: t(min),
        open: close,
        high: close,
        low: close,
        close,
        volume: dec!(1),
    }
}

/// Records every callback as a line, so tests can assert the exact sequence.
#[derive(Default)]
struct Recorder {
    name: &'static str,
    log: Vec<String>,
    timer_at: Option<Timestamp>,
}

impl Strategy for Recorder {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.log.push(format!("{} start", self.name));
        if let Some(at) = self.timer_at {
            ctx.set_timer(at);
        }
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.log.push(format!(
            "{} bar {} eq {}",
            self.name,
            bar.close,
            ctx.equity()
        ));
    }
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        self.log.push(format!(
            "{} order {} {}",
            self.name,
            order.id(),
            order.status
        ));
    }
    fn on_execution(&mut self, ctx: &mut Context<'_>, e: &Execution) {
        self.log.push(format!(
            "{} exec {} pos {}",
            self.name,
            e.execution_id,
            ctx.position(e.conid)
        ));
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, id: TimerId) {
        self.log
            .push(format!("{} timer {} at {}", self.name, id.0, ctx.now()));
    }
    fn on_event(&mut self, _ctx: &mut Context<'_>, ev: &Event) {
        if let Event::Session(s) = ev {
            self.log
                .push(format!("{} session {}", self.name, s.authenticated));
        }
    }
    fn on_stop(&mut self, _ctx: &mut Context<'_>) {
        self.log.push(format!("{} stop", self.name));
    }
}

fn order(id: u64, strategy: usize, status: OrderStatus) -> Order {
    Order {
        request: engine::model::OrderRequest {
            id: OrderId(id),
            conid: C,
            side: Side::Buy,
            order_type: OrderType::Market,
            quantity: dec!(10),
            limit_price: None,
            stop_price: None,
            trail: None,
            tif: Tif::Day,
            outside_rth: false,
            client_order_id: format!("ibf-{id}"),
            parent: None,
            oca_group: None,
        },
        broker_order_id: None,
        status,
        filled_quantity: Decimal::ZERO,
        avg_fill_price: None,
        reason: None,
        strategy,
        created: t(0),
        updated: t(0),
    }
}

#[test]
fn events_reach_strategies_in_registration_order_and_orders_their_owner() {
    let a = Recorder {
        name: "a",
        ..Default::default()
    };
    let b = Recorder {
        name: "b",
        ..Default::default()
    };
    let mut d = Dispatcher::new(vec![a, b], Portfolio::new(dec!(1000)));
    d.start();
    d.on_bar(&bar(1, dec!(10)));
    d.dispatch(Event::OrderUpdate(order(1, 1, OrderStatus::Submitted)));
    d.dispatch(Event::Execution(Execution {
        execution_id: "x1".into(),
        order_id: Some(OrderId(1)),
        order_ref: Some("ibf-1".into()),
        account: "U1".into(),
        conid: C,
        side: ExecSide::Bought,
        size: dec!(10),
        price: dec!(10),
        commission: dec!(1),
        net_amount: dec!(100),
        time: t(2),
    }));
    d.dispatch(Event::OrderUpdate(order(1, 1, OrderStatus::Filled)));
    d.on_bar(&bar(3, dec!(12)));
    d.dispatch(Event::Session(SessionStatus {
        authenticated: true,
        connected: true,
        competing: false,
        message: None,
    }));
    d.stop();
    assert_eq!(d.orders().len(), 0, "filled orders leave the book");
    let [a, b] = d.strategies() else { panic!() };
    assert_eq!(
        a.log,
        [
            "a start",
            "a bar 10 eq 1000",
            "a bar 12 eq 1019",
            "a session true",
            "a stop"
        ]
    );
    assert_eq!(
        b.log,
        [
            "b start",
            "b bar 10 eq 1000",
            "b order 1 Submitted",
            "b exec x1 pos 10",
            "b order 1 Filled",
            "b bar 12 eq 1019",
            "b session true",
            "b stop"
        ]
    );
}

#[test]
fn timers_fire_in_time_order_with_engine_time() {
    let a = Recorder {
        name: "a",
        timer_at: Some(t(5)),
        ..Default::default()
    };
    let b = Recorder {
        name: "b",
        timer_at: Some(t(3)),
        ..Default::default()
    };
    let mut d = Dispatcher::new(vec![a, b], Portfolio::new(dec!(1)));
    d.start();
    assert_eq!(d.next_timer(), Some(t(3)));
    d.fire_timers(t(2));
    d.fire_timers(t(10));
    assert_eq!(d.next_timer(), None);
    let [a, b] = d.strategies() else { panic!() };
    assert_eq!(a.log.last().unwrap(), &format!("a timer 1 at {}", t(5)));
    assert_eq!(b.log.last().unwrap(), &format!("b timer 2 at {}", t(3)));
}

/// Emits one of each intent on its first bar.
struct Emitter;

impl Strategy for Emitter {
    fn on_bar(&mut self, ctx: &mut Context<'_>, _bar: &Bar) {
        let m = ctx.buy(C, dec!(3));
        assert_eq!(m, OrderId(1));
        ctx.submit(OrderSpec::limit(C, Side::Sell, dec!(2), dec!(11)).tif(Tif::Day));
        let b = ctx.bracket(
            OrderSpec::stop(C, Side::Buy, dec!(5), dec!(12)),
            Exits {
                take_profit: Some(dec!(14)),
                stop_loss: Some(dec!(11)),
            },
        );
        assert_eq!(
            (b.entry, b.take_profit, b.stop_loss),
            (OrderId(3), Some(OrderId(4)), Some(OrderId(5)))
        );
        let legs = ctx.oca(vec![
            (
                OrderSpec::stop(C, Side::Buy, dec!(1), dec!(13)),
                Exits::default(),
            ),
            (
                OrderSpec::stop(C, Side::Sell, dec!(1), dec!(9)),
                Exits {
                    take_profit: Some(dec!(8)),
                    stop_loss: None,
                },
            ),
        ]);
        assert_eq!(legs.len(), 2);
        ctx.cancel(OrderId(2));
        ctx.flatten(C);
    }
}

#[test]
fn context_helpers_emit_ibkr_shaped_batches() {
    let mut pf = Portfolio::new(dec!(1000));
    // Long 7 so flatten has something to close.
    pf.apply(&Execution {
        execution_id: "e".into(),
        order_id: None,
        order_ref: None,
        account: "U1".into(),
        conid: C,
        side: ExecSide::Bought,
        size: dec!(7),
        price: dec!(10),
        commission: Decimal::ZERO,
        net_amount: dec!(70),
        time: t(0),
    });
    let mut d = Dispatcher::new(vec![Emitter], pf);
    // One of this strategy's orders is working, so flatten cancels it too.
    d.on_order_update(order(99, 0, OrderStatus::Submitted));
    d.on_bar(&bar(1, dec!(10)));
    let intents: Vec<_> = d
        .outbox()
        .drain_intents()
        .map(|(s, i)| {
            assert_eq!(s, 0);
            i
        })
        .collect();
    assert_eq!(intents.len(), 7, "{intents:#?}");
    let Intent::Place(single) = &intents[0] else {
        panic!()
    };
    assert_eq!(single.len(), 1);
    assert_eq!(single[0].order_type, OrderType::Market);
    assert_eq!(single[0].client_order_id, "ibf-1");
    let Intent::Place(bracket) = &intents[2] else {
        panic!()
    };
    assert_eq!(bracket.len(), 3);
    assert_eq!(bracket[1].parent.as_deref(), Some("ibf-3"));
    assert_eq!(bracket[2].parent.as_deref(), Some("ibf-3"));
    assert_eq!(
        (bracket[1].order_type, bracket[1].limit_price),
        (OrderType::Limit, Some(dec!(14)))
    );
    assert_eq!(
        (bracket[2].order_type, bracket[2].stop_price),
        (OrderType::Stop, Some(dec!(11)))
    );
    assert!(bracket[1..]
        .iter()
        .all(|o| o.side == Side::Sell && o.tif == Tif::Gtc));
    let Intent::Place(oca) = &intents[3] else {
        panic!()
    };
    assert_eq!(oca.len(), 3);
    let group = oca[0].oca_group.clone().unwrap();
    assert_eq!(oca[1].oca_group.as_deref(), Some(group.as_str()));
    assert_eq!(
        oca[2].parent.as_deref(),
        Some(oca[1].client_order_id.as_str())
    );
    assert_eq!(oca[2].oca_group, None);
    assert_eq!(intents[4], Intent::Cancel(OrderId(2)));
    // flatten: cancel the working order (orders emitted in this same
    // callback are not working yet), then sell the 7 held.
    assert_eq!(intents[5], Intent::Cancel(OrderId(99)));
    let Intent::Place(flat) = &intents[6] else {
        panic!()
    };
    assert_eq!(
        (flat[0].side, flat[0].quantity, flat[0].order_type),
        (Side::Sell, dec!(7), OrderType::Market)
    );
}

/// ForecastEx: exiting YES is a buy of NO at the same strike, never a sell.
#[test]
fn forecastex_exit_is_a_buy_of_the_opposite_contract() {
    use engine::forecastex::{Right, StrikePair};
    struct Exit(StrikePair);
    impl Strategy for Exit {
        fn on_bar(&mut self, ctx: &mut Context<'_>, _bar: &Bar) {
            ctx.buy_event(&self.0, Right::Yes, dec!(100), dec!(0.55));
            ctx.exit_event(&self.0, Right::Yes, dec!(10), dec!(0.47));
        }
    }
    let pair = StrikePair {
        underlying: Conid(700),
        expiration: None,
        strike: dec!(3.5),
        strike_label: None,
        yes: Conid(701),
        no: Conid(702),
        payout: dec!(1),
    };
    let mut d = Dispatcher::new(vec![Exit(pair)], Portfolio::new(dec!(1000)));
    d.on_bar(&bar(1, dec!(1)));
    let orders: Vec<_> = d
        .outbox()
        .drain_intents()
        .filter_map(|(_, i)| match i {
            Intent::Place(b) => Some(b[0].clone()),
            _ => None,
        })
        .collect();
    assert_eq!(orders.len(), 2);
    assert_eq!(
        (orders[0].conid, orders[0].side, orders[0].quantity),
        (Conid(701), Side::Buy, dec!(100))
    );
    assert_eq!(
        (orders[1].conid, orders[1].side, orders[1].limit_price),
        (Conid(702), Side::Buy, Some(dec!(0.47)))
    );
}

/// `Scoped` strategies see the bars of their contracts only; everything
/// else (start, stop) still reaches them.
#[test]
fn scoped_strategies_see_their_contracts_only() {
    use engine::strategy::Scoped;
    let other = Conid(6);
    let a = Scoped::new(
        Recorder {
            name: "a",
            ..Recorder::default()
        },
        [C],
    );
    let b = Scoped::new(
        Recorder {
            name: "b",
            ..Recorder::default()
        },
        [other],
    );
    let mut d = Dispatcher::new(vec![a, b], Portfolio::new(dec!(1000)));
    d.start();
    d.on_bar(&bar(0, dec!(10)));
    d.on_bar(&Bar {
        conid: other,
        ..bar(1, dec!(20))
    });
    d.stop();
    let logs: Vec<&Vec<String>> = d.strategies().iter().map(|s| &s.inner().log).collect();
    assert_eq!(logs[0], &vec!["a start", "a bar 10 eq 1000", "a stop"]);
    assert_eq!(logs[1], &vec!["b start", "b bar 20 eq 1000", "b stop"]);
}
