//! The backtest and the live engine route intents through the same code:
//! the same strategy over the same bars asks the venue for the same calls
//! in the same order, and hears the same order updates and fills, whichever
//! driver runs it. The venue here is the simulated one wrapped in a
//! recorder of every call the router makes.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;

use backtest::exchange::{ExchangeConfig, SimExchange};
use backtest::runner::{self, BacktestConfig, RunLabel};
use backtest::sim_venue::{BarVenue, SimVenue};
use engine::contracts::Contracts;
use engine::event::Event;
use engine::forecastex::Pairing;
use engine::model::{
    Bar, Conid, Contract, Execution, Order, OrderChanges, OrderId, OrderRequest, Position, Side,
    Timestamp,
};
use engine::portfolio::Portfolio;
use engine::risk::RiskConfig;
use engine::strategy::{Context, OrderSpec, Strategy};
use engine::venue::{Venue, VenueError, VenueState};
use engine::working_orders::WorkingOrders;
use ibkr::live_engine::{LiveEngine, LiveVenue};

const AAPL: Conid = Conid(265598);

type Log = Arc<Mutex<Vec<String>>>;

fn push(log: &Log, line: String) {
    log.lock().expect("log").push(line);
}

/// The simulated venue, recording every call made of it. Its clock is the
/// bars it was fed (as a gateway's is the market's), so the placement time
/// of an order does not depend on the driver.
struct Recording {
    inner: SimVenue,
    clock: Timestamp,
    calls: Log,
}

impl Recording {
    fn new(calls: Log) -> Self {
        let mut exchange = SimExchange::new(ExchangeConfig::default());
        exchange.add_contract(&Contract::stock(AAPL, "AAPL"));
        Recording {
            inner: SimVenue::new(exchange, Pairing::default()),
            clock: Timestamp::UNIX_EPOCH,
            calls,
        }
    }
}

fn describe(r: &OrderRequest) -> String {
    format!(
        "{} {:?} {:?} {} lmt={:?} stp={:?}",
        r.id, r.side, r.order_type, r.quantity, r.limit_price, r.stop_price
    )
}

impl Venue for Recording {
    async fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
        _now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let orders: Vec<String> = batch.iter().map(describe).collect();
        push(
            &self.calls,
            format!("place s{strategy} [{}]", orders.join(", ")),
        );
        self.inner.place(strategy, batch, self.clock, out).await
    }

    async fn cancel(
        &mut self,
        id: OrderId,
        _now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        push(&self.calls, format!("cancel {id}"));
        self.inner.cancel(id, self.clock, out).await
    }

    async fn modify(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        _now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        push(&self.calls, format!("modify {id} {changes:?}"));
        self.inner.modify(id, changes, self.clock, out).await
    }
}

impl BarVenue for Recording {
    fn has_orders(&self) -> bool {
        self.inner.has_orders()
    }

    fn on_bar(&mut self, bar: &Bar, out: &mut Vec<Event>) {
        self.clock = bar.time;
        self.inner.on_bar(bar, out);
    }
}

impl VenueState for Recording {
    async fn positions(&self) -> Result<Vec<Position>, VenueError> {
        self.inner.positions().await
    }

    async fn orders(&self) -> Result<Vec<Order>, VenueError> {
        self.inner.orders().await
    }

    async fn executions(&self) -> Result<Vec<Execution>, VenueError> {
        self.inner.executions().await
    }
}

/// Live, the venue's feed is its bars: each fills what it reaches, then
/// reaches the strategies, as the backtest loop does.
impl LiveVenue for Recording {
    type Message = Bar;

    fn translate(&mut self, bar: Bar, _orders: &WorkingOrders, out: &mut Vec<Event>) {
        self.on_bar(&bar, out);
        out.push(Event::Bar(bar));
    }

    fn account(&self) -> &str {
        "DU1"
    }

    fn coid_prefix(&self) -> &str {
        ""
    }
}

/// Buys, rests a take-profit far away, moves it, cancels it and sells.
struct Script {
    bars: usize,
    take_profit: Option<OrderId>,
    heard: Log,
}

impl Strategy for Script {
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.bars += 1;
        let ten = Decimal::TEN;
        match self.bars {
            1 => {
                ctx.buy(bar.conid, ten);
                let tp = OrderSpec::limit(bar.conid, Side::Sell, ten, bar.close * Decimal::TWO);
                self.take_profit = Some(ctx.submit(tp));
            }
            3 => {
                if let Some(id) = self.take_profit {
                    let price = (bar.close * Decimal::new(15, 1)).round_dp(2);
                    ctx.modify(id, None, Some(price), None);
                }
            }
            5 => {
                if let Some(id) = self.take_profit.take() {
                    ctx.cancel(id);
                }
                ctx.sell(bar.conid, ctx.position(bar.conid));
            }
            _ => {}
        }
    }

    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        push(
            &self.heard,
            format!("order {} {:?}", order.id(), order.status),
        );
    }

    fn on_execution(&mut self, _ctx: &mut Context<'_>, e: &Execution) {
        push(
            &self.heard,
            format!("fill {:?} {} @ {}", e.side, e.size, e.price),
        );
    }
}

fn bars() -> Vec<Bar> {
    let start = Utc.with_ymd_and_hms(2024, 1, 2, 14, 30, 0).unwrap();
    (0..8)
        .map(|i| {
            let px = Decimal::from(100 + i);
            Bar {
                conid: AAPL,
                time: start + Duration::days(i),
                open: px,
                high: px + Decimal::ONE,
                low: px - Decimal::ONE,
                close: px,
                volume: Decimal::from(1000),
            }
        })
        .collect()
}

#[test]
fn backtest_and_live_drivers_route_alike() {
    let contracts = [Contract::stock(AAPL, "AAPL")];

    let (bt_calls, bt_heard) = (Log::default(), Log::default());
    let script = Script {
        bars: 0,
        take_profit: None,
        heard: bt_heard.clone(),
    };
    runner::run_on(
        Recording::new(bt_calls.clone()),
        vec![script],
        &Contracts::new(contracts.clone()),
        bars().into_iter().map(Ok::<_, std::convert::Infallible>),
        &BacktestConfig::default(),
        RunLabel::default(),
        &mut |_| {},
    )
    .expect("backtest");

    let (live_calls, live_heard) = (Log::default(), Log::default());
    let script = Script {
        bars: 0,
        take_profit: None,
        heard: live_heard.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut live = LiveEngine::new(
            vec![script],
            Portfolio::new(Decimal::from(100_000)),
            RiskConfig::default(),
            Recording::new(live_calls.clone()),
            Contracts::new(contracts.clone()),
        );
        live.start().await;
        for bar in bars() {
            live.handle(bar).await;
        }
        live.stop().await;
    });

    let bt_calls = bt_calls.lock().expect("log").clone();
    let live_calls = live_calls.lock().expect("log").clone();
    // What the script asks for, in order: the router passed it all on.
    let expected = [
        "place s0 [1 Buy Market 10 lmt=None stp=None]",
        "place s0 [2 Sell Limit 10 lmt=Some(200) stp=None]",
        "modify 2 OrderChanges { quantity: None, limit_price: Some(153.0), stop_price: None }",
        "cancel 2",
        "place s0 [3 Sell Market 10 lmt=None stp=None]",
    ];
    assert_eq!(bt_calls, expected, "backtest");
    assert_eq!(live_calls, bt_calls, "live routes as the backtest does");

    let bt_heard = bt_heard.lock().expect("log").clone();
    let live_heard = live_heard.lock().expect("log").clone();
    assert!(
        bt_heard.contains(&"fill Bought 10 @ 101".to_owned()),
        "{bt_heard:?}"
    );
    assert!(
        bt_heard.contains(&"fill Sold 10 @ 105".to_owned()),
        "{bt_heard:?}"
    );
    assert!(
        bt_heard.contains(&"order 2 Cancelled".to_owned()),
        "{bt_heard:?}"
    );
    assert_eq!(
        live_heard, bt_heard,
        "strategies hear the same, in the same order"
    );
}
