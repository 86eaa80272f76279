//! Warm-up: a strategy given its `warmup_bars` of history decides on the
//! first live bar exactly as the same strategy does at that bar in a
//! backtest (which saw all the history), and emits nothing while warming
//! up. The built-in strategies declare their warm-up from their parameters.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

mod common;

use common::*;
use engine::model::{Bar, Conid};
use engine::registry::Params;
use engine::strategy::{Intent, Strategy};
use rust_decimal::Decimal;
use strategies::{
    BreakoutOca, BreakoutOcaParams, MeanReversion, MeanReversionParams, SmaCross, SmaCrossParams,
};

/// Replays `bars` as a backtest does and returns what the strategy emitted
/// at each bar, and the first bar it emitted anything at.
fn backtest<S: Strategy>(make: &impl Fn() -> S, bars: &[Bar]) -> (Vec<Vec<Intent>>, usize) {
    let mut d = dispatcher(make());
    let at: Vec<Vec<Intent>> = bars.iter().map(|b| step(&mut d, b)).collect();
    let first = at.iter().position(|v| !v.is_empty());
    (at, first.expect("the data makes the strategy trade"))
}

/// For every bar `k` up to the backtest's first signal (after it, the
/// backtest holds orders and positions a warmed-up strategy never had),
/// warm up on `history(k)` and compare the decision at bar `k`.
fn same_decisions<S: Strategy>(
    make: impl Fn() -> S,
    bars: &[Bar],
    history: impl Fn(usize) -> std::ops::Range<usize>,
) -> usize {
    let (at, first) = backtest(&make, bars);
    for k in 0..=first {
        let mut live = dispatcher(make());
        live.warm_up(&bars[history(k)]);
        assert!(
            drain(&mut live).is_empty(),
            "bar {k}: nothing during warm-up"
        );
        assert_eq!(live.next_timer(), None);
        assert_eq!(step(&mut live, &bars[k]), at[k], "decision at bar {k}");
    }
    // The comparison has teeth: without warm-up the signal is missed.
    let mut cold = dispatcher(make());
    assert!(
        step(&mut cold, &bars[first]).is_empty(),
        "a cold strategy cannot trade at bar {first}"
    );
    first
}

/// Rising for `half` bars, falling for `half`, from 100.00 by 0.07.
fn zigzag(conid: Conid, n: i64, half: i64, offset: i64) -> Vec<Bar> {
    (0..n)
        .map(|i| {
            let phase = (i + offset) % (2 * half);
            let level = if phase < half {
                phase
            } else {
                2 * half - phase
            };
            bar(conid, i, Decimal::new(10_000 + 7 * level, 2))
        })
        .collect()
}

fn sma() -> SmaCross {
    SmaCross::new(SmaCrossParams::default()).unwrap()
}

#[test]
fn sma_cross_warmed_up_with_exactly_its_bars_trades_the_first_live_bar_like_a_backtest() {
    let w = sma().warmup_bars();
    assert_eq!(w, 30);
    let bars = zigzag(A, 200, 40, 0);
    // Exactly `warmup_bars` of history, never more.
    let first = same_decisions(sma, &bars, |k| k.saturating_sub(w)..k);
    assert!(first > w, "first signal at {first}: warm-up was exercised");
    // One bar short of the warm-up and the first signal is missed.
    let mut short = dispatcher(sma());
    short.warm_up(&bars[first - (w - 1)..first]);
    assert!(step(&mut short, &bars[first]).is_empty());
}

#[test]
fn sma_cross_on_two_contracts_takes_the_last_bars_of_each_from_a_longer_history() {
    let a = zigzag(A, 200, 40, 0);
    let b = zigzag(B, 200, 25, 13);
    // Interleaved by time, as a fetched history of two contracts is.
    let bars: Vec<Bar> = a.into_iter().zip(b).flat_map(|(x, y)| [x, y]).collect();
    // All of the history before bar k: the dispatcher picks the last 30 of
    // each contract.
    let first = same_decisions(sma, &bars, |k| 0..k);
    assert!(first > 2 * 30);
}

#[test]
fn mean_reversion_warmed_up_enters_on_the_first_live_dip_like_a_backtest() {
    let make = || MeanReversion::new(MeanReversionParams::default()).unwrap();
    let w = make().warmup_bars();
    assert_eq!(w, 20);
    // Closes wobbling 98..102 (never below the lower band), then a drop.
    let mut bars: Vec<Bar> = (0..70)
        .map(|i| bar(A, i, Decimal::from(100 + (i * 7) % 5 - 2)))
        .collect();
    bars.push(bar(A, 70, Decimal::from(90)));
    let first = same_decisions(make, &bars, |k| k.saturating_sub(w)..k);
    assert_eq!(first, 70);
}

#[test]
fn breakout_oca_warmed_up_places_its_pair_like_a_backtest() {
    let make = || {
        BreakoutOca::new(BreakoutOcaParams {
            lookback: 5,
            ..BreakoutOcaParams::default()
        })
        .unwrap()
    };
    assert_eq!(make().warmup_bars(), 5);
    let bars: Vec<Bar> = (0..20)
        .map(|i| {
            ohlc(
                A,
                i,
                Decimal::from(101 + i % 3),
                Decimal::from(99),
                Decimal::from(100),
            )
        })
        .collect();
    let first = same_decisions(make, &bars, |k| k.saturating_sub(5)..k);
    assert_eq!(first, 4, "the first full range places the pair");
    // Warmed up on a full range, the first live bar places the pair at the
    // levels the backtest has at that bar, not a bar later.
    let mut live = dispatcher(make());
    live.warm_up(&bars[5..10]);
    let batch = single_batch(step(&mut live, &bars[10]));
    assert_eq!(batch.len(), 6, "two bracketed stop entries");
}

#[test]
fn built_in_strategies_declare_warm_up_from_their_parameters_and_a_stable_name() {
    let reg = strategies::registry();
    let build = |name: &str, pairs: &[&str]| {
        let mut p = Params::new();
        for kv in pairs {
            p.set_pair(kv).unwrap();
        }
        reg.build(name, &p).unwrap()
    };
    let s = build("sma_cross", &["fast=5", "slow=50"]);
    assert_eq!((s.name(), s.warmup_bars()), ("sma_cross", 50));
    let s = build("mean_reversion", &["period=14"]);
    assert_eq!((s.name(), s.warmup_bars()), ("mean_reversion", 14));
    let s = build("breakout_oca", &["lookback=7"]);
    assert_eq!((s.name(), s.warmup_bars()), ("breakout_oca", 7));
    let s = build("forecast_band", &["conid=1"]);
    assert_eq!((s.name(), s.warmup_bars()), ("forecast_band", 0));
}
