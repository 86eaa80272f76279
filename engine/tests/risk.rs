//! One test per risk rule, on both sides of its limit, plus trading states
//! and a property: no sequence of approved intents takes a position past its
//! limit.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_engine as engine;

use std::collections::BTreeSet;

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use engine::contracts::Contracts;
use engine::model::{
    Conid, Contract, ExecSide, Execution, Order, OrderId, OrderRequest, OrderStatus, OrderType,
    SecType, Side, Tif, Timestamp,
};
use engine::portfolio::Portfolio;
use engine::risk::{RiskConfig, RiskEngine, RiskLimits, RiskReject, RiskView, TradingState};
use engine::strategy::Intent;
use engine::working_orders::WorkingOrders;

const C: Conid = Conid(1);

fn t(s: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 6, 3, 14, 0, 0).unwrap() + Duration::seconds(s)
}

fn order(id: u64, side: Side, qty: Decimal, ty: OrderType, price: Option<Decimal>) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid: C,
        side,
        order_type: ty,
        quantity: qty,
        limit_price: if ty == OrderType::Limit { price } else { None },
        stop_price: if ty == OrderType::Stop { price } else { None },
        trail: None,
        tif: Tif::Day,
        outside_rth: false,
        client_order_id: format!("c{id}"),
        parent: None,
        oca_group: None,
    }
}

fn buy(qty: Decimal) -> Intent {
    Intent::Place(vec![order(1, Side::Buy, qty, OrderType::Market, None)])
}

fn sell(qty: Decimal) -> Intent {
    Intent::Place(vec![order(1, Side::Sell, qty, OrderType::Market, None)])
}

struct World {
    pf: Portfolio,
    book: WorkingOrders,
}

impl World {
    fn new(position: Decimal, mark: Decimal) -> Self {
        let mut pf = Portfolio::new(dec!(100000));
        if !position.is_zero() {
            pf.apply(&Execution {
                execution_id: "e0".into(),
                order_id: None,
                order_ref: None,
                account: "U1".into(),
                conid: C,
                side: if position > Decimal::ZERO {
                    ExecSide::Bought
                } else {
                    ExecSide::Sold
                },
                size: position.abs(),
                price: mark,
                commission: Decimal::ZERO,
                net_amount: Decimal::ZERO,
                time: t(0),
            });
        }
        pf.mark(C, mark);
        World {
            pf,
            book: WorkingOrders::default(),
        }
    }

    fn check(
        &self,
        risk: &mut RiskEngine,
        intent: &Intent,
        now: Timestamp,
    ) -> Result<(), RiskReject> {
        let contracts = Contracts::new([
            Contract {
                sec_type: SecType::Future,
                multiplier: dec!(50),
                ..Contract::stock(Conid(2), "ES")
            },
            Contract {
                sec_type: SecType::EventContract,
                exchange: "FORECASTX".into(),
                ..Contract::stock(Conid(4), "FF")
            },
        ]);
        let view = RiskView {
            now,
            portfolio: &self.pf,
            orders: &self.book,
            contracts: &contracts,
        };
        risk.check(0, intent, &view)
    }

    fn working(&mut self, id: u64, side: Side, qty: Decimal) {
        self.book.update(Order {
            request: order(id, side, qty, OrderType::Limit, Some(dec!(1))),
            broker_order_id: None,
            status: OrderStatus::Submitted,
            filled_quantity: Decimal::ZERO,
            avg_fill_price: None,
            reason: None,
            strategy: 0,
            created: t(0),
            updated: t(0),
        });
    }
}

fn engine(l: RiskLimits) -> RiskEngine {
    RiskEngine::new(RiskConfig {
        global: l,
        ..Default::default()
    })
}

#[test]
fn max_order_quantity() {
    let mut r = engine(RiskLimits {
        max_order_quantity: Some(dec!(100)),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(10));
    assert!(w.check(&mut r, &buy(dec!(100)), t(1)).is_ok());
    assert!(matches!(
        w.check(&mut r, &buy(dec!(101)), t(1)),
        Err(RiskReject::OrderQuantity { .. })
    ));
}

#[test]
fn max_order_notional_uses_limit_price_or_last() {
    let mut r = engine(RiskLimits {
        max_order_notional: Some(dec!(1000)),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(10));
    assert!(w.check(&mut r, &buy(dec!(100)), t(1)).is_ok());
    assert!(matches!(
        w.check(&mut r, &buy(dec!(101)), t(1)),
        Err(RiskReject::OrderNotional { .. })
    ));
    let lmt = Intent::Place(vec![order(
        1,
        Side::Buy,
        dec!(50),
        OrderType::Limit,
        Some(dec!(20)),
    )]);
    assert!(w.check(&mut r, &lmt, t(1)).is_ok());
    let lmt = Intent::Place(vec![order(
        1,
        Side::Buy,
        dec!(51),
        OrderType::Limit,
        Some(dec!(20)),
    )]);
    assert!(w.check(&mut r, &lmt, t(1)).is_err());
    // Futures multiplier counts.
    let mut fut = order(1, Side::Buy, dec!(2), OrderType::Limit, Some(dec!(10)));
    fut.conid = Conid(2);
    assert!(w
        .check(&mut r, &Intent::Place(vec![fut.clone()]), t(1))
        .is_ok());
    fut.quantity = dec!(3);
    assert!(w.check(&mut r, &Intent::Place(vec![fut]), t(1)).is_err());
}

#[test]
fn max_position_counts_working_orders_and_lets_reductions_through() {
    let mut r = engine(RiskLimits {
        max_position: Some(dec!(100)),
        ..Default::default()
    });
    let mut w = World::new(dec!(60), dec!(10));
    assert!(w.check(&mut r, &buy(dec!(40)), t(1)).is_ok());
    assert!(matches!(
        w.check(&mut r, &buy(dec!(41)), t(1)),
        Err(RiskReject::Position { .. })
    ));
    w.working(7, Side::Buy, dec!(30));
    assert!(w.check(&mut r, &buy(dec!(10)), t(1)).is_ok());
    assert!(w.check(&mut r, &buy(dec!(11)), t(1)).is_err());
    // Selling the position down is always allowed.
    assert!(w.check(&mut r, &sell(dec!(60)), t(1)).is_ok());
    // Short beyond the limit is not.
    assert!(w.check(&mut r, &sell(dec!(161)), t(1)).is_err());
    assert!(w.check(&mut r, &sell(dec!(160)), t(1)).is_ok());
}

#[test]
fn oca_alternatives_count_once_and_exits_not_at_all() {
    let mut r = engine(RiskLimits {
        max_position: Some(dec!(100)),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(10));
    let mut up = order(1, Side::Buy, dec!(100), OrderType::Stop, Some(dec!(11)));
    up.oca_group = Some("g".into());
    let mut down = order(2, Side::Sell, dec!(100), OrderType::Stop, Some(dec!(9)));
    down.oca_group = Some("g".into());
    let mut tp = order(3, Side::Sell, dec!(100), OrderType::Limit, Some(dec!(12)));
    tp.parent = Some("c1".into());
    assert!(w
        .check(&mut r, &Intent::Place(vec![up, tp, down]), t(1))
        .is_ok());
}

#[test]
fn max_open_orders() {
    let mut r = engine(RiskLimits {
        max_open_orders: Some(3),
        ..Default::default()
    });
    let mut w = World::new(Decimal::ZERO, dec!(10));
    w.working(7, Side::Buy, dec!(1));
    w.working(8, Side::Buy, dec!(1));
    assert!(w.check(&mut r, &buy(dec!(1)), t(1)).is_ok());
    w.working(9, Side::Buy, dec!(1));
    assert!(matches!(
        w.check(&mut r, &buy(dec!(1)), t(1)),
        Err(RiskReject::OpenOrders { .. })
    ));
}

#[test]
fn order_rate_per_minute() {
    let mut r = engine(RiskLimits {
        max_orders_per_minute: Some(3),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(10));
    for s in 0..3 {
        assert!(w.check(&mut r, &buy(dec!(1)), t(s)).is_ok());
    }
    assert!(matches!(
        w.check(&mut r, &buy(dec!(1)), t(30)),
        Err(RiskReject::Rate(3))
    ));
    // A minute after the first, one slot frees up.
    assert!(w.check(&mut r, &buy(dec!(1)), t(60)).is_ok());
    assert!(w.check(&mut r, &buy(dec!(1)), t(60)).is_err());
}

#[test]
fn allowed_conids_and_sec_types() {
    let mut r = engine(RiskLimits {
        allowed_conids: Some(BTreeSet::from([C])),
        allowed_sec_types: Some(BTreeSet::from(["STK".to_owned()])),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(10));
    assert!(w.check(&mut r, &buy(dec!(1)), t(1)).is_ok());
    let mut other = order(1, Side::Buy, dec!(1), OrderType::Market, None);
    other.conid = Conid(3);
    assert_eq!(
        w.check(&mut r, &Intent::Place(vec![other]), t(1)),
        Err(RiskReject::ConidNotAllowed(Conid(3)))
    );
    let mut r = engine(RiskLimits {
        allowed_sec_types: Some(BTreeSet::from(["STK".to_owned()])),
        ..Default::default()
    });
    let mut fut = order(1, Side::Buy, dec!(1), OrderType::Market, None);
    fut.conid = Conid(2);
    assert_eq!(
        w.check(&mut r, &Intent::Place(vec![fut]), t(1)),
        Err(RiskReject::SecTypeNotAllowed("FUT".into()))
    );
}

#[test]
fn price_collar() {
    let mut r = engine(RiskLimits {
        price_collar_pct: Some(dec!(5)),
        ..Default::default()
    });
    let w = World::new(Decimal::ZERO, dec!(100));
    let at = |p| {
        Intent::Place(vec![order(
            1,
            Side::Buy,
            dec!(1),
            OrderType::Limit,
            Some(p),
        )])
    };
    assert!(w.check(&mut r, &at(dec!(105)), t(1)).is_ok());
    assert!(w.check(&mut r, &at(dec!(95)), t(1)).is_ok());
    assert!(matches!(
        w.check(&mut r, &at(dec!(105.01)), t(1)),
        Err(RiskReject::Collar { .. })
    ));
    assert!(w.check(&mut r, &at(dec!(94.99)), t(1)).is_err());
}

#[test]
fn no_short() {
    let mut r = engine(RiskLimits {
        no_short: true,
        ..Default::default()
    });
    let w = World::new(dec!(10), dec!(100));
    assert!(w.check(&mut r, &sell(dec!(10)), t(1)).is_ok());
    assert_eq!(
        w.check(&mut r, &sell(dec!(11)), t(1)),
        Err(RiskReject::Short(C))
    );
}

#[test]
fn trading_states_and_daily_loss_kill_switch() {
    let mut r = engine(RiskLimits {
        daily_loss_limit: Some(dec!(500)),
        ..Default::default()
    });
    let w = World::new(dec!(10), dec!(100));
    r.start_day(dec!(100000));
    assert!(!r.on_equity(dec!(99501)));
    assert_eq!(r.state(), TradingState::Active);
    r.set_state(TradingState::Reducing);
    assert!(w.check(&mut r, &sell(dec!(5)), t(1)).is_ok());
    assert_eq!(
        w.check(&mut r, &buy(dec!(1)), t(1)),
        Err(RiskReject::NotReducing(C))
    );
    assert!(
        w.check(&mut r, &sell(dec!(11)), t(1)).is_err(),
        "crossing zero is not reducing"
    );
    r.set_state(TradingState::Active);
    assert!(r.on_equity(dec!(99500)), "a loss of 500 reaches the limit");
    assert_eq!(r.state(), TradingState::Halted);
    let e = w.check(&mut r, &sell(dec!(1)), t(1)).unwrap_err();
    assert!(e.to_string().contains("daily loss limit"), "{e}");
    assert!(
        w.check(&mut r, &Intent::Cancel(OrderId(3)), t(1)).is_ok(),
        "cancels pass when halted"
    );
    r.kill("operator");
    assert!(w
        .check(&mut r, &buy(dec!(1)), t(1))
        .unwrap_err()
        .to_string()
        .contains("operator"));
}

#[test]
fn per_strategy_limits_add_to_global() {
    let mut cfg = RiskConfig::default();
    cfg.per_strategy.insert(
        0,
        RiskLimits {
            max_order_quantity: Some(dec!(5)),
            ..Default::default()
        },
    );
    let mut r = RiskEngine::new(cfg);
    let w = World::new(Decimal::ZERO, dec!(10));
    assert!(w.check(&mut r, &buy(dec!(5)), t(1)).is_ok());
    assert!(w.check(&mut r, &buy(dec!(6)), t(1)).is_err());
}

proptest! {
    /// Fill every approved order at once: the position never passes the limit.
    #[test]
    fn approved_intents_never_exceed_the_position_limit(
        orders in prop::collection::vec((any::<bool>(), 1i64..80), 1..40)
    ) {
        let limit = dec!(100);
        let mut r = engine(RiskLimits { max_position: Some(limit), ..Default::default() });
        let mut w = World::new(Decimal::ZERO, dec!(10));
        for (i, (is_buy, q)) in orders.into_iter().enumerate() {
            let qty = Decimal::from(q);
            let intent = if is_buy { buy(qty) } else { sell(qty) };
            let before = w.pf.quantity(C);
            if w.check(&mut r, &intent, t(i as i64)).is_ok() {
                w.pf.apply(&Execution {
                    execution_id: format!("x{i}"),
                    order_id: None,
                    order_ref: None,
                    account: "U1".into(),
                    conid: C,
                    side: if is_buy { ExecSide::Bought } else { ExecSide::Sold },
                    size: qty,
                    price: dec!(10),
                    commission: Decimal::ZERO,
                    net_amount: Decimal::ZERO,
                    time: t(i as i64),
                });
                let after = w.pf.quantity(C);
                prop_assert!(after.abs() <= limit || after.abs() < before.abs(),
                    "position {after} from {before}");
            }
        }
    }
}

#[test]
fn forecastex_contracts_cannot_be_sold() {
    let mut r = engine(RiskLimits::default());
    let w = World::new(Decimal::ZERO, dec!(10));
    let mut yes = order(1, Side::Buy, dec!(10), OrderType::Limit, Some(dec!(0.55)));
    yes.conid = Conid(4);
    assert!(w
        .check(&mut r, &Intent::Place(vec![yes.clone()]), t(1))
        .is_ok());
    yes.side = Side::Sell;
    assert_eq!(
        w.check(&mut r, &Intent::Place(vec![yes]), t(1)),
        Err(RiskReject::ForecastExSell(Conid(4)))
    );
}

/// Monday to Friday, 09:30-16:00 regular and 04:00-20:00 in all, New York.
fn us_equity_hours() -> engine::hours::TradingHours {
    use engine::hours::{ScheduleDay, TradingHours};
    let days = ["20000103", "20000104", "20000105", "20000106", "20000107"].map(|d| ScheduleDay {
        date: d,
        sessions: vec![("0930", "1600")],
        trading_times: vec![("0400", "2000")],
    });
    TradingHours::new("America/New_York", days).unwrap()
}

#[test]
fn trading_hours_from_the_schedule() {
    let mut r = engine(RiskLimits::default());
    r.set_trading_hours(C, us_equity_hours());
    let w = World::new(Decimal::ZERO, dec!(10));
    // t(0) is Monday 2024-06-03 14:00 UTC = 10:00 EDT: open.
    assert!(w.check(&mut r, &buy(dec!(1)), t(0)).is_ok());
    // 21:00 UTC = 17:00 EDT: closed for a regular order...
    let evening = t(7 * 3600);
    assert!(matches!(
        w.check(&mut r, &buy(dec!(1)), evening),
        Err(RiskReject::MarketClosed { .. })
    ));
    // ...open for one allowed outside regular hours.
    let mut ext = order(1, Side::Buy, dec!(1), OrderType::Market, None);
    ext.outside_rth = true;
    assert!(w.check(&mut r, &Intent::Place(vec![ext]), evening).is_ok());
    // Saturday: closed either way.
    assert!(w.check(&mut r, &buy(dec!(1)), t(5 * 86_400)).is_err());
}

#[test]
fn trading_hours_are_checked_on_the_venue_clock_when_it_has_its_own() {
    let mut r = engine(RiskLimits::default());
    r.set_trading_hours(C, us_equity_hours());
    let w = World::new(Decimal::ZERO, dec!(10));
    // Engine time (the bot's wall clock) is Saturday; the venue replays a
    // Monday morning: the venue's hours are what count.
    let saturday = t(5 * 86_400);
    r.set_venue_time(Some(t(0)));
    assert!(w.check(&mut r, &buy(dec!(1)), saturday).is_ok());
    // The other way round: the engine's Monday morning does not open a
    // market the venue says is in its Saturday.
    r.set_venue_time(Some(saturday));
    assert_eq!(
        w.check(&mut r, &buy(dec!(1)), t(0)),
        Err(RiskReject::MarketClosed {
            conid: C,
            at: saturday
        })
    );
    // No venue clock: engine time, as before.
    r.set_venue_time(None);
    assert!(w.check(&mut r, &buy(dec!(1)), t(0)).is_ok());
}

#[test]
fn a_paused_engine_refuses_orders_and_modifications_but_not_cancels() {
    let mut r = engine(RiskLimits::default());
    let w = World::new(Decimal::ZERO, dec!(10));
    r.pause("the session is being re-established");
    assert_eq!(
        w.check(&mut r, &buy(dec!(1)), t(0)),
        Err(RiskReject::Paused(
            "the session is being re-established".into()
        ))
    );
    assert!(w
        .check(&mut r, &Intent::Cancel(engine::model::OrderId(1)), t(0))
        .is_ok());
    assert_eq!(r.state(), TradingState::Active, "a pause is not a halt");
    r.resume();
    assert!(w.check(&mut r, &buy(dec!(1)), t(0)).is_ok());
}
