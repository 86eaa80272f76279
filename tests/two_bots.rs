//! Two bots on one account, started in the same second (issue 12): each
//! bot's cOIDs are its own (no order refused as a duplicate cOID), and each
//! bot's strategies see only the fills of their own orders. The cOID
//! prefix used to be the start second in base 36: two bots started together
//! sent the same cOIDs, half of their orders were refused, and each counted
//! the other's fills as its own.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use engine::model::{Execution, Order, OrderStatus, Side};
use engine::strategy::{Context, OrderSpec, Strategy};
use gateway_sim::Gateway;
use ibkr::node::{LiveNode, NodeConfig};
use ibkr::ClientConfig;

mod support;

use support::{paused, AAPL};

#[derive(Debug, Default)]
struct Seen {
    fills: Vec<Execution>,
    refused: Vec<String>,
    filled_orders: usize,
    position: Decimal,
}

/// Buys `n` market orders of `qty` at start; records what it is told.
struct Buyer {
    n: usize,
    qty: Decimal,
    seen: Arc<Mutex<Seen>>,
}

impl Strategy for Buyer {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        for _ in 0..self.n {
            ctx.submit(OrderSpec::market(AAPL, Side::Buy, self.qty));
        }
    }

    fn on_order_update(&mut self, _ctx: &mut Context<'_>, order: &Order) {
        let mut s = self.seen.lock().unwrap();
        match order.status {
            OrderStatus::Inactive => s
                .refused
                .push(order.reason.clone().unwrap_or_else(|| "no reason".into())),
            OrderStatus::Filled => s.filled_orders += 1,
            _ => {}
        }
    }

    fn on_execution(&mut self, ctx: &mut Context<'_>, exec: &Execution) {
        let mut s = self.seen.lock().unwrap();
        s.fills.push(exec.clone());
        s.position = ctx.position(AAPL);
    }
}

fn node_cfg(gw: &gateway_sim::GatewayHandle, bot: Option<&str>) -> NodeConfig {
    let mut cfg = NodeConfig::new(ClientConfig::with_base_url(gw.base_url()));
    cfg.conids = vec![AAPL];
    cfg.bot_id = bot.map(str::to_owned);
    cfg
}

async fn two_bots_in_one_second(bot_a: Option<&str>, bot_b: Option<&str>) {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let mut cfg = paused(start);
    cfg.prompts.clear();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let (seen_a, seen_b) = (Arc::new(Mutex::default()), Arc::new(Mutex::default()));
    let buyer = |qty: i64, seen: &Arc<Mutex<Seen>>| Buyer {
        n: 4,
        qty: Decimal::from(qty),
        seen: seen.clone(),
    };
    // Connected one after the other, well within one second of each other
    // on any machine: connecting asks the gateway a handful of questions.
    let (a, b) = tokio::join!(
        LiveNode::connect(node_cfg(&gw, bot_a), vec![buyer(10, &seen_a)]),
        LiveNode::connect(node_cfg(&gw, bot_b), vec![buyer(7, &seen_b)]),
    );
    let (mut a, mut b) = (a.expect("bot A connects"), b.expect("bot B connects"));
    let done = |s: &Arc<Mutex<Seen>>| {
        let s = s.lock().unwrap();
        s.filled_orders >= 3 || !s.refused.is_empty()
    };
    // Both bots trade until each has heard the fate of its orders (or a
    // generous deadline passes); the market moves a day at a time for as
    // long as it takes, so a bot slow to start (a loaded machine, the
    // paced start-up requests) still has a market to fill in.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let drive = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut days = 0;
        while !(done(&seen_a) && done(&seen_b)) && tokio::time::Instant::now() < deadline {
            if days < 60 {
                gw.advance(Duration::from_secs(86_400));
                days += 1;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Late duplicates of the fills, if any, have time to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = tx.send(true);
    };
    tokio::join!(a.run(stopped(rx.clone())), b.run(stopped(rx)), drive);
    let summary_a = a.finish(true).await;
    let summary_b = b.finish(true).await;

    gw.shutdown().await;
    let seen_a = seen_a.lock().unwrap();
    let seen_b = seen_b.lock().unwrap();
    assert!(
        seen_a.refused.is_empty() && seen_b.refused.is_empty(),
        "refused: A {:?}, B {:?}",
        seen_a.refused,
        seen_b.refused
    );
    // The simulator fills at most three of the four market orders within
    // the days replayed; what matters is whose fills are whose.
    assert!(
        seen_a.filled_orders >= 3 && seen_b.filled_orders >= 3,
        "{seen_a:?} {seen_b:?}"
    );
    let mut refs = std::collections::BTreeSet::new();
    for (name, seen, qty) in [("A", &seen_a, 10), ("B", &seen_b, 7)] {
        let sizes: Vec<Decimal> = seen.fills.iter().map(|e| e.size).collect();
        let total: Decimal = sizes.iter().sum();
        let filled = Decimal::from(seen.filled_orders as i64 * qty);
        assert_eq!(total, filled, "bot {name} counted fills {sizes:?}");
        assert!(
            seen.fills.iter().all(|e| e.order_id.is_some()),
            "bot {name} was told of fills not linked to its orders: {:?}",
            seen.fills
        );
        assert_eq!(seen.position, filled, "bot {name}");
        for e in &seen.fills {
            let r = e.order_ref.clone().unwrap();
            assert!(refs.insert(r.clone()), "both bots used cOID {r}");
        }
    }
    let expect = |s: &Seen, qty: i64| Some(Decimal::from(s.filled_orders as i64 * qty));
    let held = |s: &ibkr::node::NodeSummary| {
        s.positions
            .iter()
            .find(|p| p.conid == AAPL)
            .map(|p| p.quantity)
    };
    assert_eq!(held(&summary_a), expect(&seen_a, 10));
    assert_eq!(held(&summary_b), expect(&seen_b, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_started_together_neither_collide_nor_share_fills() {
    two_bots_in_one_second(None, None).await;
}

/// Two bots with configured ids: the same, each its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_configured_bots_neither_collide_nor_share_fills() {
    two_bots_in_one_second(Some("desk1"), Some("desk2")).await;
}
