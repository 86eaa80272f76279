//! A live node restarted on the same store (issue 13): the state a strategy
//! saved in one run is handed back before `on_start` of the next, and the
//! strategy is warmed up on `/iserver/marketdata/history` before its first
//! live bar, without anything reaching the venue while it warms up.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use engine::model::{Bar, Side};
use engine::strategy::{Context, OrderSpec, Strategy};
use gateway_sim::Gateway;
use ibkr::node::{LiveNode, NodeConfig};
use ibkr::ClientConfig;

mod support;

use support::{paused, AAPL};

/// What the strategy saves: bars seen over every run.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
struct Counted {
    bars: u64,
}

#[derive(Debug, Default)]
struct Seen {
    /// The state `on_start` found.
    restored: Option<Counted>,
    /// `on_bar` calls while warming up, and their times.
    warm: Vec<chrono::DateTime<Utc>>,
    /// Orders the strategy tried to send while warming up.
    tried: usize,
}

struct Counter {
    state: Counted,
    seen: Arc<Mutex<Seen>>,
}

impl Strategy for Counter {
    fn name(&self) -> &str {
        "counter"
    }
    fn warmup_bars(&self) -> usize {
        5
    }
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let restored = ctx.saved_state::<Counted>().unwrap();
        self.state = restored.clone().unwrap_or_default();
        self.seen.lock().unwrap().restored = restored;
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.state.bars += 1;
        ctx.save_state(&self.state).unwrap();
        if ctx.is_warming_up() {
            let mut s = self.seen.lock().unwrap();
            s.warm.push(bar.time);
            // Dropped: nothing is sent while warming up.
            ctx.submit(OrderSpec::market(AAPL, Side::Buy, 1.into()));
            s.tried += 1;
        }
    }
}

async fn one_run(gw: &gateway_sim::GatewayHandle, store: &store::Store) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut cfg = NodeConfig::new(ClientConfig::with_base_url(gw.base_url()));
    cfg.conids = vec![AAPL];
    cfg.bar_period = Duration::from_secs(86_400);
    cfg.bot_id = Some(store.bot_id().await.unwrap());
    let node = LiveNode::connect(
        cfg,
        vec![Counter {
            state: Counted::default(),
            seen: seen.clone(),
        }],
    )
    .await
    .expect("node connects");
    let (mut node, _) = node
        .with_journal(Box::new(store.clone()))
        .await
        .expect("reconciled");
    // Long enough for start-up and warm-up; the replay clock is paused.
    node.run(tokio::time::sleep(Duration::from_secs(2))).await;
    let summary = node.finish(true).await;
    assert_eq!(summary.stats.executions, 0, "{:?}", summary.stats);
    assert!(summary.positions.is_empty(), "{:?}", summary.positions);
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_comes_back_and_warm_up_uses_history() {
    // 2023-06-15: the sample has two weeks of AAPL days before it.
    let start = Utc.with_ymd_and_hms(2023, 6, 15, 14, 0, 0).unwrap();
    let mut cfg = paused(start);
    cfg.prompts.clear();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let store = store::Store::open(&dir.path().join("restart.db"))
        .await
        .unwrap();

    let first = one_run(&gw, &store).await;
    assert_eq!(first.restored, None, "nothing saved before the first run");
    assert_eq!(
        first.warm.len(),
        5,
        "five days of history: {:?}",
        first.warm
    );
    assert!(
        first.warm.windows(2).all(|w| w[0] < w[1]) && first.warm.iter().all(|t| *t < start),
        "completed bars before the start, oldest first: {:?}",
        first.warm
    );
    assert_eq!(first.tried, 5);
    // Nothing reached the venue: no order at all.
    let client = support::client(&gw);
    assert!(client.trades(Some(7)).await.unwrap().is_empty());

    let second = one_run(&gw, &store).await;
    assert_eq!(
        second.restored,
        Some(Counted { bars: 5 }),
        "the first run's state, from the store"
    );
    assert_eq!(second.warm.len(), 5);
    gw.shutdown().await;
}
