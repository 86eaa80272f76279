//! The simulated venue behind the venue seam, and the
//! runner's handling of timers, rejections and several contracts.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use std::convert::Infallible;

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use backtest::exchange::{ExchangeConfig, SimExchange};
use backtest::runner::{self, BacktestConfig, RunLabel};
use backtest::sim_venue::{BarVenue, SimVenue};
use engine::event::Event;
use engine::forecastex::Pairing;
use engine::model::OrderChanges;
use engine::model::{
    Bar, Conid, Contract, Order, OrderId, OrderRequest, OrderStatus, OrderType, Side, Tif,
    Timestamp,
};
use engine::strategy::{Context, OrderSpec, Strategy, TimerId};
use engine::venue::{Venue, VenueState};

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 14, 0, 0).unwrap() + Duration::minutes(min)
}

fn bar(conid: Conid, min: i64, o: Decimal, c: Decimal) -> Bar {
    Bar {
        conid,
        time: t(min),
        open: o,
        high: o.max(c) + dec!(1),
        low: o.min(c) - dec!(1),
        close: c,
        volume: dec!(1),
    }
}

fn req(
    id: u64,
    side: Side,
    ty: OrderType,
    price: Option<Decimal>,
    parent: Option<&str>,
) -> OrderRequest {
    OrderRequest {
        id: OrderId(id),
        conid: Conid(1),
        side,
        order_type: ty,
        quantity: dec!(10),
        limit_price: if ty == OrderType::Limit { price } else { None },
        stop_price: if ty == OrderType::Stop { price } else { None },
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: format!("c{id}"),
        parent: parent.map(str::to_owned),
        oca_group: None,
    }
}

fn updates(events: &[Event]) -> Vec<(OrderId, OrderStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderUpdate(o) => Some((o.id(), o.status)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn sim_venue_speaks_the_venue_seam() {
    let mut v = SimVenue::new(
        SimExchange::new(ExchangeConfig::default()),
        Pairing::default(),
    )
    .with_books(dec!(100000));
    let mut out = Vec::new();
    v.place(
        0,
        vec![
            req(1, Side::Buy, OrderType::Market, None, None),
            req(2, Side::Sell, OrderType::Limit, Some(dec!(120)), Some("c1")),
            req(3, Side::Sell, OrderType::Stop, Some(dec!(90)), Some("c1")),
        ],
        t(0),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(
        updates(&out),
        [
            (OrderId(1), OrderStatus::Submitted),
            (OrderId(2), OrderStatus::PreSubmitted),
            (OrderId(3), OrderStatus::PreSubmitted)
        ]
    );
    out.clear();
    v.on_bar(&bar(Conid(1), 1, dec!(100), dec!(101)), &mut out);
    let pos = v.positions().await.unwrap();
    assert_eq!(pos.len(), 1);
    assert_eq!((pos[0].quantity, pos[0].avg_price), (dec!(10), dec!(100)));
    assert_eq!(v.executions().await.unwrap().len(), 1);
    assert_eq!(v.orders().await.unwrap().len(), 2);
    out.clear();
    v.modify(
        OrderId(2),
        OrderChanges {
            limit_price: Some(dec!(102)),
            ..Default::default()
        },
        t(1),
        &mut out,
    )
    .await
    .unwrap();
    assert!(
        matches!(&out[..], [Event::OrderUpdate(o)] if o.request.limit_price == Some(dec!(102)))
    );
    out.clear();
    v.on_bar(&bar(Conid(1), 2, dec!(101), dec!(101.5)), &mut out);
    // 101.5 + 1 = 102.5 high reaches the modified take-profit.
    assert!(v.positions().await.unwrap().is_empty());
    assert!(updates(&out).contains(&(OrderId(3), OrderStatus::Cancelled)));
    assert!(v.cancel(OrderId(3), t(2), &mut out).await.is_err());
    out.clear();
    let rejected = v
        .place(
            0,
            vec![req(9, Side::Buy, OrderType::Limit, None, None)],
            t(2),
            &mut out,
        )
        .await;
    assert!(rejected.is_err());
    assert_eq!(updates(&out), [(OrderId(9), OrderStatus::Inactive)]);
}

/// Sets a timer, sends an invalid order, and buys each contract once.
#[derive(Default)]
struct Probe {
    log: Vec<String>,
    bought: Vec<Conid>,
}

impl Strategy for Probe {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        ctx.set_timer(t(2) + Duration::seconds(30));
        // Limit without a price: refused, and the strategy hears about it.
        ctx.submit(OrderSpec {
            limit_price: None,
            ..OrderSpec::limit(Conid(1), Side::Buy, dec!(1), dec!(1))
        });
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.log
            .push(format!("bar {} {}", bar.conid, bar.time.format("%H:%M")));
        if !self.bought.contains(&bar.conid) {
            self.bought.push(bar.conid);
            ctx.buy(bar.conid, dec!(1));
        }
    }
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, o: &Order) {
        if o.status == OrderStatus::Inactive {
            self.log
                .push(format!("rejected {}", o.reason.as_deref().unwrap_or("")));
        }
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, _id: TimerId) {
        self.log
            .push(format!("timer {}", ctx.now().format("%H:%M:%S")));
    }
}

#[test]
fn runner_interleaves_contracts_fires_timers_and_reports_rejections() {
    let (a, b) = (Conid(1), Conid(2));
    let bars = vec![
        bar(a, 1, dec!(10), dec!(10)),
        bar(b, 1, dec!(20), dec!(20)),
        bar(a, 2, dec!(11), dec!(11)),
        bar(b, 2, dec!(21), dec!(21)),
        bar(a, 3, dec!(12), dec!(13)),
        bar(b, 3, dec!(22), dec!(23)),
    ];
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<String>>>, Probe);
    impl Strategy for Shared {
        fn on_start(&mut self, ctx: &mut Context<'_>) {
            self.1.on_start(ctx)
        }
        fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
            self.1.on_bar(ctx, bar)
        }
        fn on_order_update(&mut self, ctx: &mut Context<'_>, o: &Order) {
            self.1.on_order_update(ctx, o)
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, id: TimerId) {
            self.1.on_timer(ctx, id)
        }
        fn on_stop(&mut self, _ctx: &mut Context<'_>) {
            if let Ok(mut l) = self.0.lock() {
                *l = self.1.log.clone();
            }
        }
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Shared(log.clone(), Probe::default());
    let summary = runner::run(
        vec![s],
        &[Contract::stock(a, "A"), Contract::stock(b, "B")],
        bars.into_iter().map(Ok::<_, Infallible>),
        &BacktestConfig {
            cash: dec!(1000),
            ..BacktestConfig::default()
        },
        RunLabel::default(),
        &mut |_| {},
    )
    .unwrap();
    let log = log.lock().unwrap().clone();
    assert!(
        log[0].starts_with("rejected") && log[0].contains("limit price"),
        "{log:?}"
    );
    assert_eq!(
        &log[1..],
        [
            "bar 1 14:01",
            "bar 2 14:01",
            "bar 1 14:02",
            "bar 2 14:02",
            "timer 14:02:30",
            "bar 1 14:03",
            "bar 2 14:03"
        ]
    );
    assert_eq!(summary.bars, 6);
    // Bought 1 A at 11 and 1 B at 21 (next opens); marked at 13 and 23.
    assert_eq!(summary.final_equity, dec!(1004));
}
