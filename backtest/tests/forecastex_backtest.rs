//! ForecastEx in the backtest: with the strikes given, a buy against the
//! other side held is netted as the venue does (B, then N on the held side
//! and N on the bought side), `forecast_band` makes the round trip through
//! `Context::buy_event` / `exit_event`, and sells are refused by risk.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use backtest::runner::{self, BacktestConfig, RunLabel};
use engine::forecastex::{Pairing, StrikePair};
use engine::model::{Bar, Conid, Contract, ExecSide, Execution, Order, OrderStatus, Side};
use engine::strategy::{Context, OrderSpec, Strategy};
use strategies::{ForecastBand, ForecastBandParams};

const YES: Conid = Conid(762089343);
const NO: Conid = Conid(762089344);

fn pairing() -> Pairing {
    let mut p = Pairing::default();
    p.insert(StrikePair {
        underlying: Conid(733131966),
        expiration: Some("20270104".into()),
        strike: dec!(1),
        strike_label: Some("Democratic".into()),
        yes: YES,
        no: NO,
        payout: dec!(1),
    });
    p
}

/// Daily YES bars from `(open, close)` with the NO bar mirrored (1 - YES).
fn bars(path: &[(Decimal, Decimal)]) -> Vec<Bar> {
    let t0 = Utc.with_ymd_and_hms(2024, 3, 4, 15, 0, 0).unwrap();
    let mut out = Vec::new();
    for (i, &(o, c)) in path.iter().enumerate() {
        let time = t0 + Duration::days(i as i64);
        let (hi, lo) = (o.max(c), o.min(c));
        out.push(Bar {
            conid: YES,
            time,
            open: o,
            high: hi,
            low: lo,
            close: c,
            volume: dec!(100),
        });
        out.push(Bar {
            conid: NO,
            time,
            open: dec!(1) - o,
            high: dec!(1) - lo,
            low: dec!(1) - hi,
            close: dec!(1) - c,
            volume: dec!(100),
        });
    }
    out
}

fn contracts() -> Vec<Contract> {
    vec![Contract::stock(YES, "HORC"), Contract::stock(NO, "HORC")]
}

/// Wraps a strategy and keeps every execution and final order state it sees.
struct Spy<S> {
    inner: S,
    execs: Arc<Mutex<Vec<Execution>>>,
    orders: Arc<Mutex<Vec<Order>>>,
}

impl<S: Strategy> Strategy for Spy<S> {
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.inner.on_bar(ctx, bar);
    }
    fn on_order_update(&mut self, ctx: &mut Context<'_>, o: &Order) {
        if o.status.is_terminal() {
            self.orders.lock().unwrap().push(o.clone());
        }
        self.inner.on_order_update(ctx, o);
    }
    fn on_execution(&mut self, ctx: &mut Context<'_>, e: &Execution) {
        self.execs.lock().unwrap().push(e.clone());
        self.inner.on_execution(ctx, e);
    }
}

type Seen = (Vec<Execution>, Vec<Order>, backtest::report::Summary);

fn run<S: Strategy>(inner: S, path: &[(Decimal, Decimal)], pairing: Pairing) -> Seen {
    let execs = Arc::new(Mutex::new(Vec::new()));
    let orders = Arc::new(Mutex::new(Vec::new()));
    let spy = Spy {
        inner,
        execs: execs.clone(),
        orders: orders.clone(),
    };
    let summary = runner::run(
        vec![spy],
        &contracts(),
        bars(path).into_iter().map(Ok::<_, Infallible>),
        &BacktestConfig {
            cash: dec!(1000),
            event_pairing: pairing,
            ..BacktestConfig::default()
        },
        RunLabel::default(),
        &mut |_| {},
    )
    .unwrap();
    let e = execs.lock().unwrap().clone();
    let o = orders.lock().unwrap().clone();
    (e, o, summary)
}

fn band() -> ForecastBand {
    ForecastBand::new(ForecastBandParams {
        conid: YES.0,
        buy_below: dec!(0.40),
        take_profit: dec!(0.60),
        stop_below: None,
        size: dec!(10),
    })
    .unwrap()
}

/// YES dips to 0.38 (entry), fills the next day, rallies to 0.62 (exit:
/// buy NO at 0.38), and the NO buy fills the day after.
const PATH: &[(Decimal, Decimal)] = &[
    (dec!(0.50), dec!(0.45)),
    (dec!(0.45), dec!(0.38)),
    (dec!(0.37), dec!(0.45)),
    (dec!(0.45), dec!(0.62)),
    (dec!(0.63), dec!(0.64)),
    (dec!(0.64), dec!(0.66)),
];

#[test]
fn forecast_band_round_trip_is_netted_flat() {
    let (execs, _, summary) = run(band(), PATH, pairing());
    let seen: Vec<_> = execs.iter().map(|e| (e.side, e.conid, e.size)).collect();
    assert_eq!(
        seen,
        vec![
            (ExecSide::Bought, YES, dec!(10)),
            (ExecSide::Bought, NO, dec!(10)),
            (ExecSide::Netting, YES, dec!(10)),
            (ExecSide::Netting, NO, dec!(10)),
        ]
    );
    let (yes_px, no_px) = (execs[0].price, execs[1].price);
    // Limit prices: YES at or under 0.38, NO at or under 1 - 0.62.
    assert!(yes_px <= dec!(0.38), "{yes_px}");
    assert!(no_px <= dec!(0.38), "{no_px}");
    assert_eq!(execs[2].price, dec!(1) - no_px);
    assert_eq!(execs[3].price, no_px);
    // Flat, and the pair's payout came back: cash = 1000 + 10 x (1 - yes - no).
    assert_eq!(
        summary.final_cash,
        dec!(1000) + dec!(10) * (dec!(1) - yes_px - no_px)
    );
    // The report: one closed trade, not a YES trade and a NO trade.
    assert_eq!(summary.trades, 1);
    assert_eq!(summary.net_profit, dec!(10) * (dec!(1) - yes_px - no_px));
}

#[test]
fn without_the_strikes_there_is_no_netting_and_no_trade() {
    // The strategy cannot find its strike: it places nothing.
    let (execs, _, summary) = run(band(), PATH, Pairing::default());
    assert!(execs.is_empty());
    assert_eq!(summary.final_cash, dec!(1000));
}

/// Buys YES, then tries to sell it.
struct Seller {
    step: usize,
}

impl Strategy for Seller {
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        if bar.conid != YES {
            return;
        }
        self.step += 1;
        match self.step {
            1 => {
                ctx.submit(OrderSpec::market(YES, Side::Buy, dec!(5)));
            }
            3 => {
                ctx.submit(OrderSpec::market(YES, Side::Sell, dec!(5)));
            }
            _ => {}
        }
    }
}

#[test]
fn selling_an_event_contract_is_refused() {
    let (execs, orders, _) = run(Seller { step: 0 }, PATH, pairing());
    assert_eq!(execs.len(), 1, "only the buy fills: {execs:?}");
    let refused = orders
        .iter()
        .find(|o| o.request.side == Side::Sell)
        .expect("the sell comes back");
    assert_eq!(refused.status, OrderStatus::Inactive);
    let reason = refused.reason.clone().unwrap_or_default();
    assert!(reason.to_lowercase().contains("forecastex"), "{reason}");
}
