//! A restarted live engine: strategy state saved in one run comes back in
//! the next from the same SQLite journal (to the same strategy only), and
//! warm-up builds indicators without sending anything to the venue.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};
use engine::contracts::Contracts;
use engine::event::Event;
use engine::model::{
    Bar, Conid, Execution, Order, OrderChanges, OrderId, OrderRequest, Position, Timestamp,
};
use engine::portfolio::Portfolio;
use engine::risk::RiskConfig;
use engine::strategy::{Context, Strategy};
use engine::venue::{Venue, VenueError, VenueState};
use engine::working_orders::WorkingOrders;
use ibkr::live_engine::{LiveEngine, LiveVenue};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const C: Conid = Conid(265598);

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 14, 0, 0).unwrap() + Duration::minutes(min)
}

fn bar(min: i64) -> Bar {
    Bar {
        conid: C,
        time: t(min),
        open: dec!(10),
        high: dec!(10),
        low: dec!(10),
        close: dec!(10),
        volume: dec!(1),
    }
}

/// A venue whose feed is bars; it counts the batches it is asked to place
/// and answers nothing.
#[derive(Clone, Default)]
struct Quiet {
    placed: Arc<Mutex<usize>>,
}

impl Venue for Quiet {
    async fn place(
        &mut self,
        _strategy: usize,
        _batch: Vec<OrderRequest>,
        _now: Timestamp,
        _out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        *self.placed.lock().unwrap() += 1;
        Ok(())
    }
    async fn cancel(
        &mut self,
        _id: OrderId,
        _now: Timestamp,
        _out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        Ok(())
    }
    async fn modify(
        &mut self,
        _id: OrderId,
        _changes: OrderChanges,
        _now: Timestamp,
        _out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        Ok(())
    }
}

impl VenueState for Quiet {
    async fn positions(&self) -> Result<Vec<Position>, VenueError> {
        Ok(Vec::new())
    }
    async fn orders(&self) -> Result<Vec<Order>, VenueError> {
        Ok(Vec::new())
    }
    async fn executions(&self) -> Result<Vec<Execution>, VenueError> {
        Ok(Vec::new())
    }
}

impl LiveVenue for Quiet {
    type Message = Bar;
    fn translate(&mut self, bar: Bar, _orders: &WorkingOrders, out: &mut Vec<Event>) {
        out.push(Event::Bar(bar));
    }
    fn account(&self) -> &str {
        "DU1"
    }
    fn coid_prefix(&self) -> &str {
        "test."
    }
}

/// Counts live bars across restarts (saved state); buys on every bar,
/// warm-up included (the engine must drop those).
struct Counter {
    name: &'static str,
    live_bars: u32,
    warm_bars: u32,
    at_start: Option<Option<u32>>,
}

impl Counter {
    fn new(name: &'static str) -> Self {
        Counter {
            name,
            live_bars: 0,
            warm_bars: 0,
            at_start: None,
        }
    }
}

impl Strategy for Counter {
    fn name(&self) -> &str {
        self.name
    }
    fn warmup_bars(&self) -> usize {
        3
    }
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let saved = ctx.saved_state::<u32>().unwrap();
        self.live_bars = saved.unwrap_or(0);
        self.at_start = Some(saved);
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        ctx.buy(bar.conid, Decimal::ONE);
        if ctx.is_warming_up() {
            self.warm_bars += 1;
            return;
        }
        self.live_bars += 1;
        ctx.save_state(&self.live_bars).unwrap();
    }
}

async fn engine(db: &Path, strategy: Counter, venue: Quiet) -> LiveEngine<Counter, Quiet> {
    let journal = store::Store::open(db).await.unwrap();
    LiveEngine::new(
        vec![strategy],
        Portfolio::new(dec!(100000)),
        RiskConfig::default(),
        venue,
        Contracts::default(),
    )
    .with_journal(Box::new(journal))
}

#[tokio::test]
async fn state_survives_a_restart_and_warm_up_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ibflow.db");

    // First run: nothing saved yet.
    let venue = Quiet::default();
    let mut e = engine(&db, Counter::new("counter"), venue.clone()).await;
    assert_eq!(e.restore_states().await.unwrap(), 0);
    e.start().await;
    assert_eq!(e.dispatcher().strategies()[0].at_start, Some(None));
    assert_eq!(e.warmup_bars(), 3);
    // Five bars of history: the strategy gets the last three, and every
    // buy it asked for is dropped.
    let history: Vec<Bar> = (0..5).map(bar).collect();
    assert_eq!(e.warm_up(&history), 3);
    e.tick().await;
    assert_eq!(e.dispatcher().strategies()[0].warm_bars, 3);
    assert_eq!(*venue.placed.lock().unwrap(), 0);
    assert_eq!(e.stats().rejected, 0);
    assert_eq!(e.persist_states().await, 0, "nothing saved in warm-up");
    // Two live bars: their buys reach the venue (or risk), the count is
    // saved and persisted once, with the latest value.
    e.handle(bar(5)).await;
    e.handle(bar(6)).await;
    let routed = *venue.placed.lock().unwrap() as u64 + e.stats().rejected;
    assert_eq!(routed, 2);
    assert_eq!(e.persist_states().await, 1);
    assert_eq!(e.persist_states().await, 0, "already persisted");
    drop(e);

    // Restart: the count comes back before on_start.
    let mut e = engine(&db, Counter::new("counter"), Quiet::default()).await;
    assert_eq!(e.restore_states().await.unwrap(), 1);
    e.start().await;
    assert_eq!(e.dispatcher().strategies()[0].at_start, Some(Some(2)));
    e.handle(bar(7)).await;
    assert_eq!(e.persist_states().await, 1);
    drop(e);

    // Another strategy at index 0 does not get it; once it saves, its own
    // state replaces the old one.
    let mut e = engine(&db, Counter::new("other"), Quiet::default()).await;
    assert_eq!(e.restore_states().await.unwrap(), 0);
    e.start().await;
    assert_eq!(e.dispatcher().strategies()[0].at_start, Some(None));
    e.handle(bar(8)).await;
    assert_eq!(e.persist_states().await, 1);
    let kept = store::Store::open(&db).await.unwrap();
    let rows = kept.strategy_snapshots().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.name.as_str(), rows[0].0.json.as_str()),
        ("other", "1")
    );
}

#[tokio::test]
async fn without_a_journal_states_stay_in_memory() {
    let mut e = LiveEngine::new(
        vec![Counter::new("counter")],
        Portfolio::new(dec!(100000)),
        RiskConfig::default(),
        Quiet::default(),
        Contracts::default(),
    );
    assert_eq!(e.restore_states().await.unwrap(), 0);
    e.start().await;
    e.handle(bar(0)).await;
    assert_eq!(e.persist_states().await, 0);
    assert_eq!(e.dispatcher().state_json(0), Some("1"));
}
