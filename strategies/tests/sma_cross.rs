//! `sma_cross` driven through a real `Dispatcher` on hand-built closes.
//!
//! Most tests use fast = 2, slow = 4 so the averages can be checked by hand;
//! comments give `fast_sum * 4` against `slow_sum * 2`, the comparison the
//! strategy makes.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

mod common;

use common::*;
use engine::model::{Conid, ExecSide, OrderId, OrderRequest, OrderType, Side, Tif};
use engine::registry::{Params, RegistryError};
use engine::strategy::Intent;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use strategies::{SmaCross, SmaCrossParams};

fn strategy(fast: usize, slow: usize) -> SmaCross {
    SmaCross::new(SmaCrossParams {
        fast,
        slow,
        size: dec!(100),
    })
    .unwrap()
}

fn market(id: u64, conid: Conid, side: Side, qty: Decimal) -> Intent {
    Intent::Place(vec![OrderRequest {
        id: OrderId(id),
        conid,
        side,
        order_type: OrderType::Market,
        quantity: qty,
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("ibf-{id}"),
        parent: None,
        oca_group: None,
    }])
}

/// Down then up: bar 4 (first full) fast < slow, bar 6 equal, bar 7 the
/// up-cross.
///
/// | bar | close | fast*4 | slow*2 |
/// |-----|-------|--------|--------|
/// | 4   | 10    | 84     | 92     |
/// | 5   | 10    | 80     | 86     |
/// | 6   | 11    | 84     | 84     |
/// | 7   | 13    | 96     | 88     |
const UP: [i64; 7] = [13, 12, 11, 10, 10, 11, 13];

#[test]
fn buys_on_the_exact_bar_of_an_up_cross() {
    let mut d = dispatcher(strategy(2, 4));
    for (i, c) in UP.iter().enumerate() {
        let out = step(&mut d, &bar(A, i as i64, Decimal::from(*c)));
        if i == 6 {
            // Previous bar was equal (fast <= slow), this one is above.
            assert_eq!(out, vec![market(1, A, Side::Buy, dec!(100))]);
        } else {
            assert!(out.is_empty(), "bar {} emitted {out:?}", i + 1);
        }
    }
    assert_eq!(d.strategies()[0].averages(A), Some((dec!(12), dec!(11))));
}

#[test]
fn holds_while_long_and_sells_the_whole_position_on_the_down_cross() {
    let mut d = dispatcher(strategy(2, 4));
    let mut i = 0;
    let mut feed = |d: &mut engine::dispatch::Dispatcher<SmaCross>, c: i64| {
        i += 1;
        step(d, &bar(A, i, Decimal::from(c)))
    };
    for c in UP {
        feed(&mut d, c);
    }
    assert_eq!(d.outbox().drain_intents().count(), 0);
    fill(
        &mut d,
        A,
        ExecSide::Bought,
        dec!(100),
        dec!(13),
        Some(OrderId(1)),
    );
    // Someone else adds 50 to the account: "the whole position" is 150.
    fill(&mut d, A, ExecSide::Bought, dec!(50), dec!(13), None);
    assert_eq!(d.portfolio().quantity(A), dec!(150));

    // Window 10,11,13,9: fast 22*4 = 88 > slow 43*2 = 86, still above.
    assert!(feed(&mut d, 9).is_empty());
    // Window 11,13,9,8: fast 17*4 = 68 < slow 41*2 = 82: down-cross.
    assert_eq!(feed(&mut d, 8), vec![market(2, A, Side::Sell, dec!(150))]);
    // The sell has not filled. Window 13,9,8,20: fast 28*4 = 112 > 50*2 =
    // 100: an up-cross, but the account is long, so no second buy.
    assert!(feed(&mut d, 20).is_empty());
    // Window 9,8,20,21: 41*4 = 164 > 58*2 = 116, still above: nothing.
    assert!(feed(&mut d, 21).is_empty());
    // The sell fills: flat. Window 8,20,21,1: 22*4 = 88 < 50*2 = 100, a
    // down-cross while flat, which sells nothing.
    fill(
        &mut d,
        A,
        ExecSide::Sold,
        dec!(150),
        dec!(20),
        Some(OrderId(2)),
    );
    assert!(d.portfolio().quantity(A).is_zero());
    assert!(feed(&mut d, 1).is_empty());
    // Window 20,21,1,30: 31*4 = 124 < 72*2 = 144, still below: nothing.
    assert!(feed(&mut d, 30).is_empty());
    // Window 21,1,30,40: 70*4 = 280 > 92*2 = 184: up-cross while flat.
    assert_eq!(feed(&mut d, 40), vec![market(3, A, Side::Buy, dec!(100))]);
}

#[test]
fn ignores_crosses_before_the_slow_window_is_full() {
    let mut d = dispatcher(strategy(2, 4));
    // Bar 3 on partial windows: fast 8.5 < slow 9; bar 4 (first full):
    // fast 14 > slow 11.75. Looks like a cross, but bar 4 only sets the
    // reference: nothing may be bought.
    let closes = [10, 9, 8, 20, 21];
    for (i, c) in closes.iter().enumerate() {
        let out = step(&mut d, &bar(A, i as i64, Decimal::from(*c)));
        assert!(out.is_empty(), "bar {} emitted {out:?}", i + 1);
    }
    // Window 8,20,21,5: fast 26*4 = 104 < 54*2 = 108: down-cross, flat:
    // nothing.
    assert!(step(&mut d, &bar(A, 6, dec!(5))).is_empty());
    // Window 20,21,5,30: 35*4 = 140 < 76*2 = 152: still below.
    assert!(step(&mut d, &bar(A, 7, dec!(30))).is_empty());
    // Window 21,5,30,40: 70*4 = 280 > 96*2 = 192: the first real up-cross.
    assert_eq!(
        step(&mut d, &bar(A, 8, dec!(40))),
        vec![market(1, A, Side::Buy, dec!(100))]
    );
}

#[test]
fn the_default_windows_need_thirty_bars() {
    let mut d = dispatcher(SmaCross::from_params(&Params::new()).unwrap());
    // 30 falling closes, then a jump: the slow window fills at bar 30, the
    // jump at bar 31 crosses.
    for i in 0..30 {
        let c = Decimal::from(200 - i);
        assert!(step(&mut d, &bar(A, i, c)).is_empty());
    }
    assert_eq!(
        step(&mut d, &bar(A, 30, dec!(400))),
        vec![market(1, A, Side::Buy, dec!(100))]
    );
}

#[test]
fn contracts_are_independent() {
    let mut d = dispatcher(strategy(2, 4));
    // A follows UP (cross on its 7th bar); B is flat at 10 then jumps to 12
    // on its 5th bar. Interleaved, B's bars must not touch A's averages.
    let events: [(Conid, i64); 13] = [
        (A, 13),
        (A, 12),
        (A, 11),
        (B, 10),
        (A, 10),
        (B, 10),
        (A, 10),
        (B, 10),
        (A, 11),
        (B, 10),
        (A, 13), // A crosses up
        (A, 9),
        (B, 12), // B crosses up
    ];
    let mut seen = Vec::new();
    for (i, (conid, c)) in events.iter().enumerate() {
        let out = step(&mut d, &bar(*conid, i as i64, Decimal::from(*c)));
        if i == 10 {
            fill(
                &mut d,
                A,
                ExecSide::Bought,
                dec!(100),
                dec!(13),
                Some(OrderId(1)),
            );
        }
        if !out.is_empty() {
            seen.push((i, out));
        }
    }
    assert_eq!(
        seen,
        vec![
            (10, vec![market(1, A, Side::Buy, dec!(100))]),
            // A is long; B is flat, so B buys.
            (12, vec![market(2, B, Side::Buy, dec!(100))]),
        ]
    );
    // A's window 10,11,13,9 and fast 13,9 came from A's bars only.
    assert_eq!(d.strategies()[0].averages(A), Some((dec!(11), dec!(10.75))));
    // A down-crosses next (11,13,9,8): only A is sold.
    assert_eq!(
        step(&mut d, &bar(A, 20, dec!(8))),
        vec![market(3, A, Side::Sell, dec!(100))]
    );
}

#[test]
fn built_by_name_through_the_registry() {
    let mut p = Params::new();
    p.set_pair("fast=2").unwrap();
    p.set_pair("slow=4").unwrap();
    p.set_pair("size=0.5").unwrap();
    let s = strategies::registry().build("sma_cross", &p).ok().unwrap();
    let mut d = dispatcher(s);
    let mut last = Vec::new();
    for (i, c) in UP.iter().enumerate() {
        last = step(&mut d, &bar(A, i as i64, Decimal::from(*c)));
    }
    assert_eq!(last, vec![market(1, A, Side::Buy, dec!(0.5))]);
}

#[test]
fn defaults() {
    let s = SmaCross::from_params(&Params::new()).unwrap();
    assert_eq!(
        s.params(),
        &SmaCrossParams {
            fast: 10,
            slow: 30,
            size: dec!(100)
        }
    );
    assert_eq!(s.params(), &SmaCrossParams::default());
}

#[test]
fn rejects_bad_params() {
    let cases: &[(&[&str], &str)] = &[
        (&["fast=0"], "fast must be at least 1"),
        (&["fast=1", "slow=0"], "slow must be at least 1"),
        (
            &["fast=30", "slow=30"],
            "fast (30) must be shorter than slow (30)",
        ),
        (&["fast=40"], "fast (40) must be shorter than slow (30)"),
        (&["size=0"], "size must be positive"),
        (&["size=-5"], "size must be positive"),
        (&["slwo=50"], "slwo"),
        // The engine's message for a type error names the value, not the
        // field (see `Params::parse`).
        (&["fast=ten"], "\"ten\", expected usize"),
        (&["fast=-1"], "-1"),
    ];
    let registry = strategies::registry();
    for (pairs, needle) in cases {
        let mut p = Params::new();
        for pair in *pairs {
            p.set_pair(pair).unwrap();
        }
        let err = registry.build("sma_cross", &p).err().unwrap();
        match &err {
            RegistryError::BadParams { strategy, message } => {
                assert_eq!(strategy, "sma_cross");
                assert!(message.contains(needle), "{pairs:?}: {message}");
            }
            other => panic!("{pairs:?}: expected BadParams, got {other:?}"),
        }
        assert!(err.to_string().contains("sma_cross"));
    }
}
