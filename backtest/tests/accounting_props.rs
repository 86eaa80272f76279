//! Property tests of the exchange and the accounting it feeds: for random
//! bars and random orders, no fill is outside its bar's range, positions are
//! the sum of fills, and equity is cash plus positions marked at the close.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

use backtest::exchange::{CommissionModel, ExchangeConfig, Intrabar, SimExchange};
use engine::event::Event;
use engine::model::{
    Bar, Conid, ExecSide, OrderId, OrderRequest, OrderType, Side, Tif, Trail, TrailUnit,
};
use engine::portfolio::Portfolio;

const C: Conid = Conid(7);

/// A random walk of consistent bars, prices in cents.
fn bars_strategy() -> impl Strategy<Value = Vec<Bar>> {
    prop::collection::vec(
        (-300i64..300, 0i64..400, 0i64..400, 0i64..1000, 0u8..4),
        2..60,
    )
    .prop_map(|steps| {
        let mut price: i64 = 10_000;
        let start = Utc.with_ymd_and_hms(2024, 3, 4, 14, 30, 0).unwrap();
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (gap, up, down, close_at, hours))| {
                let open = (price + gap).max(100);
                let high = open + up;
                let low = (open - down).max(1);
                let close = low + (close_at % (high - low + 1));
                price = close;
                Bar {
                    conid: C,
                    // Several bars a day, so DAY orders expire now and then.
                    time: start + Duration::hours(i as i64 * 6 + hours as i64),
                    open: Decimal::new(open, 2),
                    high: Decimal::new(high, 2),
                    low: Decimal::new(low, 2),
                    close: Decimal::new(close, 2),
                    volume: Decimal::from(100),
                }
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
struct OrderPlan {
    at_bar: usize,
    side: bool,
    kind: u8,
    offset_cents: i64,
    qty: i64,
    tif: u8,
    bracket: bool,
}

fn orders_strategy() -> impl Strategy<Value = Vec<OrderPlan>> {
    prop::collection::vec(
        (
            0usize..60,
            any::<bool>(),
            0u8..7,
            -500i64..500,
            1i64..50,
            0u8..4,
            any::<bool>(),
        )
            .prop_map(
                |(at_bar, side, kind, offset_cents, qty, tif, bracket)| OrderPlan {
                    at_bar,
                    side,
                    kind,
                    offset_cents,
                    qty,
                    tif,
                    bracket,
                },
            ),
        0..25,
    )
}

fn build(plan: &OrderPlan, id: &mut u64, close: Decimal) -> Vec<OrderRequest> {
    let side = if plan.side { Side::Buy } else { Side::Sell };
    let off = Decimal::new(plan.offset_cents.abs(), 2);
    let pos = (close + off).max(Decimal::new(1, 2));
    let neg = (close - off).max(Decimal::new(1, 2));
    let (below, above) = (neg, pos);
    *id += 1;
    let mut r = OrderRequest {
        id: OrderId(*id),
        conid: C,
        side,
        order_type: OrderType::Market,
        quantity: Decimal::from(plan.qty),
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: [Tif::Gtc, Tif::Day, Tif::Ioc, Tif::Opg][plan.tif as usize],
        outside_rth: false,
        client_order_id: format!("p{id}"),
        parent: None,
        oca_group: None,
    };
    // Limits below for buys, stops above for buys, and mirrored.
    let (lim, stp) = if side == Side::Buy {
        (below, above)
    } else {
        (above, below)
    };
    match plan.kind {
        0 => {}
        1 => {
            r.order_type = OrderType::Limit;
            r.limit_price = Some(lim);
        }
        2 => {
            r.order_type = OrderType::Stop;
            r.stop_price = Some(stp);
        }
        3 => {
            r.order_type = OrderType::StopLimit;
            r.stop_price = Some(stp);
            r.limit_price = Some(if side == Side::Buy {
                stp + off
            } else {
                (stp - off).max(Decimal::new(1, 2))
            });
        }
        4 => {
            r.order_type = OrderType::Trail;
            r.trail = Some(Trail {
                amount: off.max(Decimal::new(1, 2)),
                unit: TrailUnit::Amount,
            });
        }
        5 => {
            r.order_type = OrderType::TrailLimit;
            r.trail = Some(Trail {
                amount: Decimal::from(2),
                unit: TrailUnit::Percent,
            });
            r.stop_price = Some(stp);
            r.limit_price = Some(stp);
        }
        _ => {
            r.order_type = OrderType::MidPrice;
        }
    }
    let mut batch = vec![r.clone()];
    if plan.bracket {
        let exit = side.opposite();
        let coid = r.client_order_id.clone();
        for (ty, px) in [
            (
                OrderType::Limit,
                if exit == Side::Sell { above } else { below },
            ),
            (
                OrderType::Stop,
                if exit == Side::Sell { below } else { above },
            ),
        ] {
            *id += 1;
            let mut c = r.clone();
            c.id = OrderId(*id);
            c.client_order_id = format!("p{id}");
            c.parent = Some(coid.clone());
            c.side = exit;
            c.order_type = ty;
            c.trail = None;
            c.tif = Tif::Gtc;
            c.limit_price = (ty == OrderType::Limit).then_some(px);
            c.stop_price = (ty == OrderType::Stop).then_some(px);
            batch.push(c);
        }
    }
    batch
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fills_stay_in_range_and_accounting_adds_up(
        bars in bars_strategy(),
        plans in orders_strategy(),
        slippage in 0u32..4,
        target_first in any::<bool>(),
        commission in 0u8..3,
    ) {
        let cfg = ExchangeConfig {
            slippage_ticks: slippage,
            intrabar: if target_first { Intrabar::TargetFirst } else { Intrabar::StopFirst },
            commission: [CommissionModel::None, CommissionModel::ibkr_fixed(), CommissionModel::PerOrder(Decimal::ONE)][commission as usize],
            ..ExchangeConfig::default()
        };
        let mut x = SimExchange::new(cfg);
        let cash0 = Decimal::from(1_000_000);
        let mut pf = Portfolio::new(cash0);
        let mut events = Vec::new();
        let mut id = 0u64;
        let mut signed_sum = Decimal::ZERO;
        let mut cash_flow = Decimal::ZERO;
        for (i, bar) in bars.iter().enumerate() {
            events.clear();
            x.on_bar(bar, &mut events);
            for ev in &events {
                if let Event::Execution(e) = ev {
                    prop_assert!(e.price >= bar.low && e.price <= bar.high,
                        "fill {} outside bar [{}, {}]", e.price, bar.low, bar.high);
                    let s = if e.side == ExecSide::Bought { e.size } else { -e.size };
                    signed_sum += s;
                    cash_flow -= s * e.price + e.commission;
                    pf.apply(e);
                }
            }
            pf.mark(C, bar.close);
            prop_assert_eq!(pf.quantity(C), signed_sum);
            prop_assert_eq!(pf.cash(), cash0 + cash_flow);
            prop_assert_eq!(pf.equity(), pf.cash() + pf.quantity(C) * bar.close);
            for plan in plans.iter().filter(|p| p.at_bar == i) {
                let batch = build(plan, &mut id, bar.close);
                let _ = x.place(0, batch, bar.time, &mut events);
            }
        }
    }
}

/// The property above only means something if orders actually fill.
#[test]
fn the_property_exercises_fills() {
    let cases = 20;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let fills = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(bars_strategy(), orders_strategy()), |(bars, plans)| {
            let mut x = SimExchange::new(ExchangeConfig::default());
            let mut events = Vec::new();
            let mut id = 0;
            for (i, bar) in bars.iter().enumerate() {
                x.on_bar(bar, &mut events);
                for plan in plans.iter().filter(|p| p.at_bar == i) {
                    let _ = x.place(0, build(plan, &mut id, bar.close), bar.time, &mut events);
                }
            }
            let n = events
                .iter()
                .filter(|e| matches!(e, Event::Execution(_)))
                .count();
            fills.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    // Roughly one fill per generated order; demand a healthy share.
    assert!(fills.into_inner() >= cases as usize, "too few fills");
}
