//! Risk in the backtest loop: refused intents never reach the exchange and
//! come back to the strategy as `Inactive` with the reason; the daily loss
//! limit halts trading and cancels working orders.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use backtest::runner::{self, BacktestConfig, RunLabel};
use engine::model::{Bar, Conid, Contract, Order, OrderStatus, Side};
use engine::risk::{RiskConfig, RiskLimits};
use engine::strategy::{Context, OrderSpec, Strategy};

const C: Conid = Conid(9);

fn bar(day: i64, hour: i64, o: Decimal, c: Decimal) -> Bar {
    Bar {
        conid: C,
        time: Utc.with_ymd_and_hms(2024, 3, 4, 15, 0, 0).unwrap()
            + Duration::days(day)
            + Duration::hours(hour),
        open: o,
        high: o.max(c),
        low: o.min(c),
        close: c,
        volume: dec!(1),
    }
}

/// Buys `qty` on every bar and keeps a far-away limit order working.
struct Greedy {
    qty: Decimal,
    log: Arc<Mutex<Vec<String>>>,
}

impl Strategy for Greedy {
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        ctx.buy(bar.conid, self.qty);
        if ctx.open_orders().count() == 0 {
            ctx.submit(OrderSpec::limit(bar.conid, Side::Buy, dec!(1), dec!(1)));
        }
    }
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, o: &Order) {
        if let Ok(mut l) = self.log.lock() {
            match o.status {
                OrderStatus::Inactive => {
                    l.push(format!("rejected {}", o.reason.clone().unwrap_or_default()))
                }
                OrderStatus::Cancelled => l.push(format!("cancelled {}", o.request.order_type)),
                _ => {}
            }
        }
    }
}

fn run(
    limits: RiskLimits,
    bars: Vec<Bar>,
    qty: Decimal,
) -> (backtest::report::Summary, Vec<String>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let s = Greedy {
        qty,
        log: log.clone(),
    };
    let cfg = BacktestConfig {
        cash: dec!(100000),
        risk: RiskConfig {
            global: limits,
            ..Default::default()
        },
        ..BacktestConfig::default()
    };
    let summary = runner::run(
        vec![s],
        &[Contract::stock(C, "X")],
        bars.into_iter().map(Ok::<_, Infallible>),
        &cfg,
        RunLabel::default(),
        &mut |_| {},
    )
    .unwrap();
    let l = log.lock().unwrap().clone();
    (summary, l)
}

#[test]
fn position_limit_stops_the_buying() {
    let bars: Vec<Bar> = (0..10).map(|d| bar(d, 0, dec!(100), dec!(100))).collect();
    let (summary, log) = run(
        RiskLimits {
            max_position: Some(dec!(35)),
            ..Default::default()
        },
        bars,
        dec!(10),
    );
    // 10 per bar; pending market orders count, so the 4th buy (40) is refused.
    let rejected: Vec<_> = log
        .iter()
        .filter(|l| l.starts_with("rejected risk: position"))
        .collect();
    // Bars 0..2 buy (10, 20, 30 held, plus the 1-share limit working);
    // from bar 3 on, 30 + 1 + 10 > 35: seven refusals.
    assert_eq!(rejected.len(), 7, "{log:?}");
    assert_eq!(summary.final_equity, dec!(100000));
    // Position never exceeded 35: at most 3 buys of 10 filled.
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["open_trades"], 1);
}

#[test]
fn daily_loss_limit_halts_and_cancels() {
    // Day 0: buy 100 at 100 (fills day 1 open). Day 1 falls to 90: -1000.
    let bars = vec![
        bar(0, 0, dec!(100), dec!(100)),
        bar(1, 0, dec!(100), dec!(100)),
        bar(1, 1, dec!(95), dec!(90)),
        bar(1, 2, dec!(90), dec!(90)),
        bar(2, 0, dec!(90), dec!(90)),
    ];
    let (_summary, log) = run(
        RiskLimits {
            daily_loss_limit: Some(dec!(500)),
            max_position: Some(dec!(100)),
            ..Default::default()
        },
        bars,
        dec!(100),
    );
    assert!(
        log.iter().any(|l| l == "cancelled LMT"),
        "working orders cancelled: {log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("trading is halted") && l.contains("daily loss limit")),
        "{log:?}"
    );
}
