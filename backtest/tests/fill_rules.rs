//! Golden tests for every fill rule of the simulated exchange.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use backtest::exchange::{CommissionModel, ExchangeConfig, Intrabar, SimExchange};
use engine::event::Event;
use engine::model::{
    Bar, Conid, ExecSide, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif, Timestamp,
    Trail, TrailUnit,
};

const C: Conid = Conid(265598);

/// Bar on day `day` of Jan 2024 at 15:00 UTC (10:00 New York).
fn bar(day: u32, o: Decimal, h: Decimal, l: Decimal, c: Decimal) -> Bar {
    Bar {
        conid: C,
        time: Utc.with_ymd_and_hms(2024, 1, day, 15, 0, 0).unwrap(),
        open: o,
        high: h,
        low: l,
        close: c,
        volume: dec!(1000),
    }
}

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, 1, 21, 0, 0).unwrap()
}

fn req(id: u64, side: Side, ty: OrderType) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid: C,
        side,
        order_type: ty,
        quantity: dec!(10),
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("c{id}"),
        parent: None,
        oca_group: None,
    }
}

fn limit(id: u64, side: Side, p: Decimal) -> OrderRequest {
    OrderRequest {
        limit_price: Some(p),
        ..req(id, side, OrderType::Limit)
    }
}

fn stop(id: u64, side: Side, p: Decimal) -> OrderRequest {
    OrderRequest {
        stop_price: Some(p),
        ..req(id, side, OrderType::Stop)
    }
}

fn child(mut r: OrderRequest, parent: u64) -> OrderRequest {
    r.parent = Some(format!("c{parent}"));
    r
}

fn fills(events: &[Event]) -> Vec<(u64, ExecSide, Decimal)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Execution(x) => Some((x.order_id.map_or(0, |i| i.0), x.side, x.price)),
            _ => None,
        })
        .collect()
}

fn status_of(events: &[Event], id: u64) -> Option<OrderStatus> {
    events.iter().rev().find_map(|e| match e {
        Event::OrderUpdate(o) if o.id() == OrderId(id) => Some(o.status),
        _ => None,
    })
}

fn reason_of(events: &[Event], id: u64) -> Option<String> {
    events.iter().rev().find_map(|e| match e {
        Event::OrderUpdate(o) if o.id() == OrderId(id) => o.reason.clone(),
        _ => None,
    })
}

fn exchange() -> SimExchange {
    SimExchange::new(ExchangeConfig::default())
}

#[test]
fn market_order_fills_at_next_open() {
    let mut x = exchange();
    let mut ev = Vec::new();
    x.place(0, vec![req(1, Side::Buy, OrderType::Market)], t0(), &mut ev)
        .unwrap();
    assert_eq!(status_of(&ev, 1), Some(OrderStatus::Submitted));
    ev.clear();
    x.on_bar(&bar(2, dec!(101), dec!(103), dec!(99), dec!(102)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Bought, dec!(101))]);
    assert_eq!(status_of(&ev, 1), Some(OrderStatus::Filled));
    assert!(!x.has_orders());
}

#[test]
fn limit_fills_at_open_on_gap_else_at_limit() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let batch = vec![
        limit(1, Side::Buy, dec!(100)),
        limit(2, Side::Buy, dec!(97)),
        limit(3, Side::Buy, dec!(90)),
    ];
    for o in batch {
        x.place(0, vec![o], t0(), &mut ev).unwrap();
    }
    ev.clear();
    // Opens below the first limit (gap): fills at the open, 99.
    // The second limit is inside the range: fills at 97. The third never.
    x.on_bar(&bar(2, dec!(99), dec!(100.5), dec!(96), dec!(98)), &mut ev);
    assert_eq!(
        fills(&ev),
        vec![
            (1, ExecSide::Bought, dec!(99)),
            (2, ExecSide::Bought, dec!(97))
        ]
    );
    assert_eq!(x.orders().count(), 1);
    let mut ev = Vec::new();
    x.place(0, vec![limit(4, Side::Sell, dec!(105))], t0(), &mut ev)
        .unwrap();
    ev.clear();
    x.on_bar(&bar(3, dec!(101), dec!(105), dec!(100), dec!(104)), &mut ev);
    assert_eq!(fills(&ev), vec![(4, ExecSide::Sold, dec!(105))]);
}

#[test]
fn gap_through_stop_fills_at_open() {
    let mut x = exchange();
    let mut ev = Vec::new();
    x.place(0, vec![stop(1, Side::Sell, dec!(95))], t0(), &mut ev)
        .unwrap();
    x.place(0, vec![stop(2, Side::Buy, dec!(110))], t0(), &mut ev)
        .unwrap();
    ev.clear();
    // Opens at 92, below the sell stop at 95: filled at 92, not 95.
    x.on_bar(&bar(2, dec!(92), dec!(94), dec!(90), dec!(93)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Sold, dec!(92))]);
    ev.clear();
    // Range touches the buy stop at 110: filled at the stop.
    x.on_bar(
        &bar(3, dec!(105), dec!(111), dec!(104), dec!(110.5)),
        &mut ev,
    );
    assert_eq!(fills(&ev), vec![(2, ExecSide::Bought, dec!(110))]);
}

fn bracket() -> Vec<OrderRequest> {
    vec![
        req(1, Side::Buy, OrderType::Market),
        child(limit(2, Side::Sell, dec!(110)), 1),
        child(stop(3, Side::Sell, dec!(95)), 1),
    ]
}

#[test]
fn bracket_children_wait_for_parent_then_one_cancels_the_other() {
    let mut x = exchange();
    let mut ev = Vec::new();
    x.place(0, bracket(), t0(), &mut ev).unwrap();
    assert_eq!(status_of(&ev, 2), Some(OrderStatus::PreSubmitted));
    assert_eq!(status_of(&ev, 3), Some(OrderStatus::PreSubmitted));
    ev.clear();
    // Parent fills at the open. This bar's range reaches the take-profit, but
    // children only start working on the next bar.
    x.on_bar(&bar(2, dec!(100), dec!(111), dec!(99), dec!(105)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Bought, dec!(100))]);
    assert_eq!(status_of(&ev, 2), Some(OrderStatus::Submitted));
    assert_eq!(status_of(&ev, 3), Some(OrderStatus::Submitted));
    ev.clear();
    x.on_bar(&bar(3, dec!(106), dec!(112), dec!(104), dec!(111)), &mut ev);
    assert_eq!(fills(&ev), vec![(2, ExecSide::Sold, dec!(110))]);
    assert_eq!(status_of(&ev, 3), Some(OrderStatus::Cancelled));
    assert_eq!(reason_of(&ev, 3).as_deref(), Some("bracket sibling filled"));
    assert!(!x.has_orders());
}

#[test]
fn take_profit_and_stop_in_one_bar_stop_fills_first() {
    for (mode, expect) in [
        (Intrabar::StopFirst, (3, dec!(95))),
        (Intrabar::TargetFirst, (2, dec!(110))),
    ] {
        let mut x = SimExchange::new(ExchangeConfig {
            intrabar: mode,
            ..ExchangeConfig::default()
        });
        let mut ev = Vec::new();
        x.place(0, bracket(), t0(), &mut ev).unwrap();
        x.on_bar(&bar(2, dec!(100), dec!(101), dec!(99), dec!(100)), &mut ev);
        ev.clear();
        // One wide bar reaches both 110 and 95.
        x.on_bar(&bar(3, dec!(100), dec!(112), dec!(93), dec!(100)), &mut ev);
        assert_eq!(
            fills(&ev),
            vec![(expect.0, ExecSide::Sold, expect.1)],
            "{mode:?}"
        );
        let other = if expect.0 == 2 { 3 } else { 2 };
        assert_eq!(status_of(&ev, other), Some(OrderStatus::Cancelled));
    }
}

#[test]
fn gap_through_bracket_stop_fills_at_open_even_with_target_first() {
    let mut x = SimExchange::new(ExchangeConfig {
        intrabar: Intrabar::TargetFirst,
        ..ExchangeConfig::default()
    });
    let mut ev = Vec::new();
    x.place(0, bracket(), t0(), &mut ev).unwrap();
    x.on_bar(&bar(2, dec!(100), dec!(101), dec!(99), dec!(100)), &mut ev);
    ev.clear();
    // Gap down to 90 then rally through 110: the stop is hit at the open first.
    x.on_bar(&bar(3, dec!(90), dec!(111), dec!(89), dec!(100)), &mut ev);
    assert_eq!(fills(&ev), vec![(3, ExecSide::Sold, dec!(90))]);
}

#[test]
fn cancelling_parent_cancels_children() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let mut b = bracket();
    b[0] = limit(1, Side::Buy, dec!(50));
    x.place(0, b, t0(), &mut ev).unwrap();
    ev.clear();
    x.cancel(OrderId(1), t0(), &mut ev).unwrap();
    for id in 1..=3 {
        assert_eq!(status_of(&ev, id), Some(OrderStatus::Cancelled));
    }
    assert!(!x.has_orders());
    assert!(x.cancel(OrderId(1), t0(), &mut ev).is_err());
}

#[test]
fn oca_first_fill_cancels_the_group_and_its_children() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let mut up = stop(1, Side::Buy, dec!(105));
    up.oca_group = Some("g".into());
    let mut down = stop(4, Side::Sell, dec!(95));
    down.oca_group = Some("g".into());
    let batch = vec![
        up,
        child(limit(2, Side::Sell, dec!(115)), 1),
        child(stop(3, Side::Sell, dec!(100)), 1),
        down,
        child(limit(5, Side::Buy, dec!(85)), 4),
        child(stop(6, Side::Buy, dec!(100)), 4),
    ];
    x.place(0, batch, t0(), &mut ev).unwrap();
    ev.clear();
    x.on_bar(&bar(2, dec!(100), dec!(106), dec!(99), dec!(105)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Bought, dec!(105))]);
    for id in [4, 5, 6] {
        assert_eq!(
            status_of(&ev, id),
            Some(OrderStatus::Cancelled),
            "order {id}"
        );
    }
    assert_eq!(status_of(&ev, 2), Some(OrderStatus::Submitted));
    assert_eq!(x.orders().count(), 2);
}

#[test]
fn oca_both_sides_in_one_bar_nearest_trigger_wins() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let mut up = stop(1, Side::Buy, dec!(103));
    up.oca_group = Some("g".into());
    let mut down = stop(2, Side::Sell, dec!(95));
    down.oca_group = Some("g".into());
    x.place(0, vec![up, down], t0(), &mut ev).unwrap();
    ev.clear();
    x.on_bar(&bar(2, dec!(100), dec!(104), dec!(94), dec!(99)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Bought, dec!(103))]);
    assert_eq!(status_of(&ev, 2), Some(OrderStatus::Cancelled));
}

#[test]
fn day_orders_expire_at_session_end() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let mut day = limit(1, Side::Buy, dec!(90));
    day.tif = Tif::Day;
    let gtc = limit(2, Side::Buy, dec!(90));
    x.place(0, vec![day], t0(), &mut ev).unwrap();
    x.place(0, vec![gtc], t0(), &mut ev).unwrap();
    ev.clear();
    // Two bars of the same New York session: the DAY order stays.
    x.on_bar(&bar(2, dec!(100), dec!(101), dec!(99), dec!(100)), &mut ev);
    let mut later = bar(2, dec!(100), dec!(101), dec!(99), dec!(100));
    later.time = Utc.with_ymd_and_hms(2024, 1, 2, 20, 0, 0).unwrap();
    x.on_bar(&later, &mut ev);
    assert!(ev.is_empty());
    // The next session's first bar expires it before any fill is checked,
    // although this bar would have filled it.
    x.on_bar(&bar(3, dec!(89), dec!(101), dec!(88), dec!(100)), &mut ev);
    assert_eq!(status_of(&ev, 1), Some(OrderStatus::Cancelled));
    assert_eq!(
        reason_of(&ev, 1).as_deref(),
        Some("DAY order expired at session end")
    );
    assert_eq!(fills(&ev), vec![(2, ExecSide::Bought, dec!(89))]);
}

#[test]
fn ioc_cancels_its_unfilled_rest_after_one_bar() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let mut ioc = limit(1, Side::Buy, dec!(90));
    ioc.tif = Tif::Ioc;
    let mut ioc2 = limit(2, Side::Buy, dec!(100));
    ioc2.tif = Tif::Ioc;
    x.place(0, vec![ioc], t0(), &mut ev).unwrap();
    x.place(0, vec![ioc2], t0(), &mut ev).unwrap();
    ev.clear();
    x.on_bar(&bar(2, dec!(100), dec!(101), dec!(99), dec!(100)), &mut ev);
    assert_eq!(fills(&ev), vec![(2, ExecSide::Bought, dec!(100))]);
    assert_eq!(status_of(&ev, 1), Some(OrderStatus::Cancelled));
    assert!(!x.has_orders());
}

#[test]
fn trailing_stop_follows_highs() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let trail = OrderRequest {
        trail: Some(Trail {
            amount: dec!(2),
            unit: TrailUnit::Amount,
        }),
        ..req(1, Side::Sell, OrderType::Trail)
    };
    x.place(0, vec![trail], t0(), &mut ev).unwrap();
    ev.clear();
    // Starts at open - 2 = 98; the bar's high of 104 moves it to 102.
    x.on_bar(&bar(2, dec!(100), dec!(104), dec!(99), dec!(103)), &mut ev);
    assert!(fills(&ev).is_empty());
    // Checked against 102 first: a low of 102.5 does not reach it; the high of
    // 106 then moves it to 104.
    x.on_bar(
        &bar(3, dec!(103), dec!(106), dec!(102.5), dec!(105)),
        &mut ev,
    );
    assert!(fills(&ev).is_empty());
    // Now at 104: the low of 103 triggers it at 104.
    x.on_bar(
        &bar(4, dec!(105), dec!(105.5), dec!(103), dec!(103.5)),
        &mut ev,
    );
    assert_eq!(fills(&ev), vec![(1, ExecSide::Sold, dec!(104))]);
}

#[test]
fn trailing_limit_keeps_its_offset() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let tl = OrderRequest {
        trail: Some(Trail {
            amount: dec!(10),
            unit: TrailUnit::Percent,
        }),
        stop_price: Some(dec!(90)),
        limit_price: Some(dec!(89)),
        ..req(1, Side::Sell, OrderType::TrailLimit)
    };
    x.place(0, vec![tl], t0(), &mut ev).unwrap();
    // High 120 moves the stop to 108 (10% below) and the limit to 107.
    x.on_bar(&bar(2, dec!(100), dec!(120), dec!(99), dec!(118)), &mut ev);
    ev.clear();
    // Falls through 108 from an open of 110: triggered at 108, within the limit.
    x.on_bar(&bar(3, dec!(110), dec!(111), dec!(100), dec!(101)), &mut ev);
    assert_eq!(fills(&ev), vec![(1, ExecSide::Sold, dec!(108))]);
}

#[test]
fn stop_limit_gapping_past_limit_rests() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let sl = OrderRequest {
        stop_price: Some(dec!(105)),
        limit_price: Some(dec!(106)),
        ..req(1, Side::Buy, OrderType::StopLimit)
    };
    x.place(0, vec![sl], t0(), &mut ev).unwrap();
    ev.clear();
    // Gaps to 108: triggered, but 108 is above the 106 limit: rests as a limit.
    x.on_bar(&bar(2, dec!(108), dec!(109), dec!(107), dec!(108)), &mut ev);
    assert!(fills(&ev).is_empty());
    x.on_bar(
        &bar(3, dec!(107), dec!(107.5), dec!(105.5), dec!(106)),
        &mut ev,
    );
    assert_eq!(fills(&ev), vec![(1, ExecSide::Bought, dec!(106))]);
}

#[test]
fn commissions_and_clamped_slippage() {
    let mut x = SimExchange::new(ExchangeConfig {
        commission: CommissionModel::ibkr_fixed(),
        slippage_ticks: 3,
        ..ExchangeConfig::default()
    });
    let mut ev = Vec::new();
    let mut big = req(1, Side::Buy, OrderType::Market);
    big.quantity = dec!(1000);
    x.place(0, vec![big], t0(), &mut ev).unwrap();
    x.place(
        0,
        vec![req(2, Side::Sell, OrderType::Market)],
        t0(),
        &mut ev,
    )
    .unwrap();
    ev.clear();
    x.on_bar(
        &bar(2, dec!(100), dec!(100.02), dec!(99.9), dec!(100)),
        &mut ev,
    );
    let execs: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Execution(x) => Some(x.clone()),
            _ => None,
        })
        .collect();
    // The buy slips 3 ticks but the bar's high is 100.02: clamped.
    assert_eq!(execs[0].price, dec!(100.02));
    assert_eq!(execs[0].commission, dec!(5)); // 1000 * 0.005
                                              // The sell slips 3 ticks to 99.97; 10 shares: the $1 minimum applies.
    assert_eq!(execs[1].price, dec!(99.97));
    assert_eq!(execs[1].commission, dec!(1));
    // Tiny trade: 1% of value (0.05) caps the $1 minimum.
    assert_eq!(
        CommissionModel::ibkr_fixed().charge(dec!(1), dec!(5), Decimal::ONE),
        dec!(0.05)
    );
    assert_eq!(
        "per-order:2.5".parse::<CommissionModel>().unwrap(),
        CommissionModel::PerOrder(dec!(2.5))
    );
    assert!("flat".parse::<CommissionModel>().is_err());
}

#[test]
fn invalid_batches_are_rejected_whole() {
    let mut x = exchange();
    let mut ev = Vec::new();
    let orphan = child(limit(2, Side::Sell, dec!(110)), 99);
    let err = x.place(
        0,
        vec![req(1, Side::Buy, OrderType::Market), orphan],
        t0(),
        &mut ev,
    );
    assert!(err.is_err());
    assert_eq!(status_of(&ev, 1), Some(OrderStatus::Inactive));
    assert!(reason_of(&ev, 2).unwrap().contains("parentId"));
    let no_price = req(3, Side::Buy, OrderType::Limit);
    assert!(x.place(0, vec![no_price], t0(), &mut ev).is_err());
    assert!(!x.has_orders());
}
