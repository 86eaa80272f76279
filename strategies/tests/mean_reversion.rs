//! `mean_reversion` driven through a real `Dispatcher`.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

mod common;

use common::*;
use engine::model::{ExecSide, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif};
use engine::registry::{Params, RegistryError};
use engine::strategy::Intent;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use strategies::{MeanReversion, MeanReversionParams};

fn bracket(first: u64, take_profit: Decimal, stop_loss: Decimal) -> Vec<OrderRequest> {
    let base = OrderRequest {
        id: OrderId(first),
        conid: A,
        side: Side::Buy,
        order_type: OrderType::Market,
        quantity: dec!(100),
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("ibf-{first}"),
        parent: None,
        oca_group: None,
    };
    let child = |id: u64, order_type, limit_price, stop_price| OrderRequest {
        id: OrderId(id),
        side: Side::Sell,
        order_type,
        limit_price,
        stop_price,
        client_order_id: format!("ibf-{id}"),
        parent: Some(format!("ibf-{first}")),
        ..base.clone()
    };
    vec![
        base.clone(),
        child(first + 1, OrderType::Limit, Some(take_profit), None),
        child(first + 2, OrderType::Stop, None, Some(stop_loss)),
    ]
}

/// Defaults (period 20, k 2, stop 2%): nineteen closes of 100, then 90.
/// Window sum 1990, mean 99.5; sum of squares 198100;
/// 20 * 198100 - 1990^2 = 1900, std = sqrt(1900) / 20 = 2.1794...;
/// lower = 99.5 - 4.3589... = 95.14..., and 90 is below it.
/// Take-profit at the middle band 99.50, stop-loss 90 * 0.98 = 88.20.
#[test]
fn buys_below_the_lower_band_with_a_bracket() {
    let mut d = dispatcher(MeanReversion::from_params(&Params::new()).unwrap());
    for i in 0..19 {
        assert!(step(&mut d, &bar(A, i, dec!(100))).is_empty());
    }
    let batch = single_batch(step(&mut d, &bar(A, 19, dec!(90))));
    assert_eq!(batch, bracket(1, dec!(99.50), dec!(88.20)));
    // The market order has not filled: the next close, still below the band,
    // must not double the entry.
    assert!(step(&mut d, &bar(A, 20, dec!(89))).is_empty());
}

#[test]
fn needs_a_full_window_and_a_close_strictly_below_the_band() {
    let mut d = dispatcher(MeanReversion::from_params(&Params::new()).unwrap());
    // A drop on bar 19 of 20 comes before the window is full.
    for i in 0..18 {
        assert!(step(&mut d, &bar(A, i, dec!(100))).is_empty());
    }
    assert!(step(&mut d, &bar(A, 18, dec!(80))).is_empty());
    // Bar 20 at 100: the window is full, but 100 is above the lower band.
    assert!(step(&mut d, &bar(A, 19, dec!(100))).is_empty());
    // Constant closes: zero width, close == lower: never an entry.
    let mut d = dispatcher(MeanReversion::from_params(&Params::new()).unwrap());
    for i in 0..40 {
        assert!(step(&mut d, &bar(A, i, dec!(100))).is_empty());
    }
}

/// Period 3, k 1: closes 10, 10.02, 9. Sum 29.02, mean 9.67333... -> TP
/// 9.67; sum of squares 281.4004, 3 * 281.4004 - 29.02^2 = 2.0408,
/// std = sqrt(2.0408) / 3 = 0.4761..., lower = 9.197..., 9 is below.
/// Stop 9 * 0.98 = 8.82.
#[test]
fn exits_are_rounded_to_the_tick() {
    let mut p = Params::new();
    p.set_pair("period=3").unwrap();
    p.set_pair("k=1").unwrap();
    let mut d = dispatcher(MeanReversion::from_params(&p).unwrap());
    assert!(step(&mut d, &bar(A, 0, dec!(10))).is_empty());
    assert!(step(&mut d, &bar(A, 1, dec!(10.02))).is_empty());
    let batch = single_batch(step(&mut d, &bar(A, 2, dec!(9))));
    assert_eq!(batch, bracket(1, dec!(9.67), dec!(8.82)));
}

#[test]
fn enters_again_only_when_flat_and_the_exits_are_done() {
    let mut p = Params::new();
    p.set_pair("period=3").unwrap();
    p.set_pair("k=1").unwrap();
    let mut d = dispatcher(MeanReversion::from_params(&p).unwrap());
    step(&mut d, &bar(A, 0, dec!(10)));
    step(&mut d, &bar(A, 1, dec!(10.02)));
    let batch = single_batch(step(&mut d, &bar(A, 2, dec!(9))));
    update(&mut d, &batch[0], OrderStatus::Filled, dec!(100));
    for o in &batch[1..] {
        update(&mut d, o, OrderStatus::Submitted, Decimal::ZERO);
    }
    fill(
        &mut d,
        A,
        ExecSide::Bought,
        dec!(100),
        dec!(9),
        Some(OrderId(1)),
    );
    assert_eq!(d.strategies()[0].working(A), &[OrderId(2), OrderId(3)]);
    // Long: no entry even below the band (window 10.02, 9, 8).
    assert!(step(&mut d, &bar(A, 3, dec!(8))).is_empty());
    // Stop-loss fills: flat, take-profit still working: no entry.
    update(&mut d, &batch[2], OrderStatus::Filled, dec!(100));
    fill(
        &mut d,
        A,
        ExecSide::Sold,
        dec!(100),
        dec!(8.82),
        Some(OrderId(3)),
    );
    assert!(step(&mut d, &bar(A, 4, dec!(7))).is_empty());
    update(&mut d, &batch[1], OrderStatus::Cancelled, Decimal::ZERO);
    // Window 8, 7, 6: mean 7, std sqrt(2/3) = 0.816..., lower 6.18..., 6 is
    // below: a new bracket, TP 7.00, stop 6 * 0.98 = 5.88.
    let out = step(&mut d, &bar(A, 5, dec!(6)));
    assert_eq!(out, vec![Intent::Place(bracket(4, dec!(7), dec!(5.88)))]);
}

#[test]
fn defaults_and_bad_params() {
    let s = MeanReversion::from_params(&Params::new()).unwrap();
    assert_eq!(
        s.params(),
        &MeanReversionParams {
            period: 20,
            k: dec!(2),
            size: dec!(100),
            stop_loss_pct: dec!(2),
            tick: dec!(0.01),
        }
    );
    let cases: &[(&str, &str)] = &[
        ("period=1", "period must be at least 2"),
        ("k=0", "k must be positive"),
        ("size=-1", "size must be positive"),
        ("tick=0", "tick must be positive"),
        (
            "stop_loss_pct=100",
            "stop_loss_pct must be between 0 and 100",
        ),
        ("rsi=14", "rsi"),
    ];
    for (pair, needle) in cases {
        let mut p = Params::new();
        p.set_pair(pair).unwrap();
        match strategies::registry().build("mean_reversion", &p).err() {
            Some(RegistryError::BadParams { strategy, message }) => {
                assert_eq!(strategy, "mean_reversion");
                assert!(message.contains(needle), "{pair}: {message}");
            }
            other => panic!("{pair}: expected BadParams, got {other:?}"),
        }
    }
}
