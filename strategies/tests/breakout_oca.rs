//! `breakout_oca` driven through a real `Dispatcher`.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

mod common;

use common::*;
use engine::dispatch::Dispatcher;
use engine::model::{Conid, ExecSide, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif};
use engine::registry::{Params, RegistryError};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use strategies::{BreakoutOca, BreakoutOcaParams};

fn strategy(lookback: usize) -> BreakoutOca {
    BreakoutOca::new(BreakoutOcaParams {
        lookback,
        ..BreakoutOcaParams::default()
    })
    .unwrap()
}

#[allow(clippy::too_many_arguments)]
fn req(
    id: u64,
    conid: Conid,
    side: Side,
    order_type: OrderType,
    price: Decimal,
    parent: Option<u64>,
    oca: Option<&str>,
) -> OrderRequest {
    let (limit_price, stop_price) = match order_type {
        OrderType::Limit => (Some(price), None),
        _ => (None, Some(price)),
    };
    OrderRequest {
        id: OrderId(id),
        conid,
        side,
        order_type,
        quantity: dec!(100),
        limit_price,
        stop_price,
        trail: None,
        // Entries are good for the day; bracket exits are GTC.
        tif: if parent.is_some() { Tif::Gtc } else { Tif::Day },
        outside_rth: false,
        client_order_id: format!("ibf-{id}"),
        parent: parent.map(|p| format!("ibf-{p}")),
        oca_group: oca.map(str::to_owned),
    }
}

/// The six orders of one pair whose entry ids start at `first`, for the
/// default 4% take-profit and 2% stop-loss.
#[allow(clippy::too_many_arguments)]
fn pair(
    first: u64,
    conid: Conid,
    buy: Decimal,
    buy_tp: Decimal,
    buy_sl: Decimal,
    sell: Decimal,
    sell_tp: Decimal,
    sell_sl: Decimal,
) -> Vec<OrderRequest> {
    let g = format!("oca-{first}");
    let g = Some(g.as_str());
    let (b, s) = (first, first + 3);
    vec![
        req(b, conid, Side::Buy, OrderType::Stop, buy, None, g),
        req(
            b + 1,
            conid,
            Side::Sell,
            OrderType::Limit,
            buy_tp,
            Some(b),
            None,
        ),
        req(
            b + 2,
            conid,
            Side::Sell,
            OrderType::Stop,
            buy_sl,
            Some(b),
            None,
        ),
        req(s, conid, Side::Sell, OrderType::Stop, sell, None, g),
        req(
            s + 1,
            conid,
            Side::Buy,
            OrderType::Limit,
            sell_tp,
            Some(s),
            None,
        ),
        req(
            s + 2,
            conid,
            Side::Buy,
            OrderType::Stop,
            sell_sl,
            Some(s),
            None,
        ),
    ]
}

/// Three bars: high 102.50 (bar 1), low 98 (bar 1).
fn first_range(d: &mut Dispatcher<BreakoutOca>) -> Vec<OrderRequest> {
    assert!(step(d, &ohlc(A, 0, dec!(101), dec!(99), dec!(100))).is_empty());
    assert!(step(d, &ohlc(A, 1, dec!(102.50), dec!(98), dec!(100))).is_empty());
    single_batch(step(d, &ohlc(A, 2, dec!(101.50), dec!(99.50), dec!(100))))
}

/// Buy stop 102.51: TP 102.51 * 1.04 = 106.6104 -> 106.61, SL 102.51 * 0.98
/// = 100.4598 -> 100.46. Sell stop 97.99: TP 97.99 * 0.96 = 94.0704 ->
/// 94.07, SL 97.99 * 1.02 = 99.9498 -> 99.95.
fn first_pair() -> Vec<OrderRequest> {
    pair(
        1,
        A,
        dec!(102.51),
        dec!(106.61),
        dec!(100.46),
        dec!(97.99),
        dec!(94.07),
        dec!(99.95),
    )
}

#[test]
fn places_one_oca_pair_of_brackets() {
    let mut d = dispatcher(strategy(3));
    let batch = first_range(&mut d);
    assert_eq!(batch.len(), 6);
    assert_eq!(batch, first_pair());
    // The structure the venue relies on, spelled out.
    let entries: Vec<_> = batch.iter().filter(|o| o.parent.is_none()).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].oca_group, entries[1].oca_group);
    assert!(entries[0].oca_group.is_some());
    for e in &entries {
        let kids: Vec<_> = batch
            .iter()
            .filter(|o| o.parent.as_deref() == Some(e.client_order_id.as_str()))
            .collect();
        assert_eq!(kids.len(), 2);
        assert!(kids.iter().all(|k| k.side == e.side.opposite()));
    }
    assert!(batch.iter().all(|o| o.tif
        == if o.parent.is_some() {
            Tif::Gtc
        } else {
            Tif::Day
        }
        && o.validate().is_ok()));
    // Nothing acknowledged yet: still no second pair.
    assert!(step(&mut d, &ohlc(A, 3, dec!(103), dec!(97), dec!(100))).is_empty());
    assert_eq!(d.strategies()[0].working(A).len(), 6);
}

#[test]
fn places_again_after_the_day_orders_expire() {
    let mut d = dispatcher(strategy(3));
    let batch = first_range(&mut d);
    for o in &batch {
        update(&mut d, o, OrderStatus::Submitted, Decimal::ZERO);
    }
    assert!(step(&mut d, &ohlc(A, 3, dec!(103), dec!(99), dec!(100))).is_empty());
    // Session close: the venue reports both entries cancelled. Their exits
    // never went live; they are not reported and need not be.
    update(&mut d, &batch[0], OrderStatus::Cancelled, Decimal::ZERO);
    assert!(!d.strategies()[0].working(A).is_empty());
    update(&mut d, &batch[3], OrderStatus::Cancelled, Decimal::ZERO);
    assert!(d.strategies()[0].working(A).is_empty());
    // Next session's first bar: range of bars 2..4 is 99 .. 104.
    // Buy 104.01: TP 108.1704 -> 108.17, SL 101.9298 -> 101.93.
    // Sell 98.99: TP 95.0304 -> 95.03, SL 100.9698 -> 100.97.
    let batch = single_batch(step(
        &mut d,
        &ohlc(A, 4, dec!(104), dec!(100.50), dec!(103)),
    ));
    assert_eq!(
        batch,
        pair(
            7,
            A,
            dec!(104.01),
            dec!(108.17),
            dec!(101.93),
            dec!(98.99),
            dec!(95.03),
            dec!(100.97),
        )
    );
}

#[test]
fn waits_for_the_position_and_its_exits_to_finish() {
    let mut d = dispatcher(strategy(3));
    let batch = first_range(&mut d);
    for o in &batch {
        update(&mut d, o, OrderStatus::Submitted, Decimal::ZERO);
    }
    // The buy stop triggers; OCA cancels the sell entry (and its exits).
    update(&mut d, &batch[0], OrderStatus::Filled, dec!(100));
    fill(
        &mut d,
        A,
        ExecSide::Bought,
        dec!(100),
        dec!(102.51),
        Some(OrderId(1)),
    );
    update(&mut d, &batch[3], OrderStatus::Cancelled, Decimal::ZERO);
    assert_eq!(d.strategies()[0].working(A), &[OrderId(2), OrderId(3)]);
    assert!(step(&mut d, &ohlc(A, 3, dec!(105), dec!(102), dec!(104))).is_empty());
    // Take-profit fills: flat, but the stop-loss is not reported done yet.
    update(&mut d, &batch[1], OrderStatus::Filled, dec!(100));
    fill(
        &mut d,
        A,
        ExecSide::Sold,
        dec!(100),
        dec!(106.61),
        Some(OrderId(2)),
    );
    assert!(d.portfolio().quantity(A).is_zero());
    assert!(step(&mut d, &ohlc(A, 4, dec!(107), dec!(104), dec!(106))).is_empty());
    // Stop-loss cancelled: nothing works any more, so the next bar places.
    update(&mut d, &batch[2], OrderStatus::Cancelled, Decimal::ZERO);
    // Range of bars 3..5: 102 .. 108.
    // Buy 108.01: TP 112.3304 -> 112.33, SL 105.8498 -> 105.85.
    // Sell 101.99: TP 97.9104 -> 97.91, SL 104.0298 -> 104.03.
    let batch = single_batch(step(&mut d, &ohlc(A, 5, dec!(108), dec!(105), dec!(107))));
    assert_eq!(
        batch,
        pair(
            7,
            A,
            dec!(108.01),
            dec!(112.33),
            dec!(105.85),
            dec!(101.99),
            dec!(97.91),
            dec!(104.03),
        )
    );
}

#[test]
fn a_rejected_batch_frees_the_contract() {
    let mut d = dispatcher(strategy(3));
    let batch = first_range(&mut d);
    for o in &batch {
        update(&mut d, o, OrderStatus::Inactive, Decimal::ZERO);
    }
    assert!(d.strategies()[0].working(A).is_empty());
    assert_eq!(
        single_batch(step(&mut d, &ohlc(A, 3, dec!(101), dec!(99), dec!(100)))).len(),
        6
    );
}

#[test]
fn contracts_are_independent() {
    let mut d = dispatcher(strategy(2));
    assert!(step(&mut d, &ohlc(A, 0, dec!(11), dec!(9), dec!(10))).is_empty());
    assert!(step(&mut d, &ohlc(B, 1, dec!(51), dec!(49), dec!(50))).is_empty());
    let a = single_batch(step(&mut d, &ohlc(A, 2, dec!(12), dec!(10), dec!(11))));
    assert!(a.iter().all(|o| o.conid == A));
    assert_eq!(a[0].stop_price, Some(dec!(12.01)));
    assert_eq!(a[3].stop_price, Some(dec!(8.99)));
    // A's working orders do not block B.
    let b = single_batch(step(&mut d, &ohlc(B, 3, dec!(52), dec!(50), dec!(51))));
    assert!(b.iter().all(|o| o.conid == B));
    assert_eq!(b[0].stop_price, Some(dec!(52.01)));
    assert_eq!(b[3].stop_price, Some(dec!(48.99)));
    assert_eq!(b[0].oca_group.as_deref(), Some("oca-7"));
}

#[test]
fn leaves_out_a_sell_leg_at_or_below_zero() {
    let mut d = dispatcher(strategy(1));
    let batch = single_batch(step(
        &mut d,
        &ohlc(A, 0, dec!(0.05), dec!(0.01), dec!(0.02)),
    ));
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].side, Side::Buy);
    assert_eq!(batch[0].stop_price, Some(dec!(0.06)));
}

#[test]
fn defaults_and_bad_params() {
    let s = BreakoutOca::from_params(&Params::new()).unwrap();
    assert_eq!(
        s.params(),
        &BreakoutOcaParams {
            lookback: 20,
            size: dec!(100),
            take_profit_pct: dec!(4),
            stop_loss_pct: dec!(2),
            tick: dec!(0.01),
        }
    );
    let cases: &[(&str, &str)] = &[
        ("lookback=0", "lookback must be at least 1"),
        ("size=0", "size must be positive"),
        ("tick=-0.01", "tick must be positive"),
        (
            "take_profit_pct=0",
            "take_profit_pct must be between 0 and 100",
        ),
        (
            "take_profit_pct=100",
            "take_profit_pct must be between 0 and 100",
        ),
        (
            "stop_loss_pct=-1",
            "stop_loss_pct must be between 0 and 100",
        ),
        ("lookbak=5", "lookbak"),
    ];
    for (pair, needle) in cases {
        let mut p = Params::new();
        p.set_pair(pair).unwrap();
        match strategies::registry().build("breakout_oca", &p).err() {
            Some(RegistryError::BadParams { strategy, message }) => {
                assert_eq!(strategy, "breakout_oca");
                assert!(message.contains(needle), "{pair}: {message}");
            }
            other => panic!("{pair}: expected BadParams, got {other:?}"),
        }
    }
}
