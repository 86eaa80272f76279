//! A `LiveNode` started on an account that already holds a position and
//! has spent cash shows strategies that position and that cash from their
//! first callback: the portfolio is seeded from `/portfolio/{acct}/summary`
//! and `/portfolio/{acct}/positions`, not invented.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use engine::model::{Conid, OrderId, OrderRequest, OrderType, Side, Tif};
use engine::strategy::{Context, OrderSpec, Strategy};
use gateway_sim::{Gateway, Instrument};
use ibkr::node::{LiveNode, NodeConfig};
use ibkr::ClientConfig;

mod support;

use support::{broker, paused, AAPL};

/// What a strategy saw at `on_start`: (position in AAPL, cash, equity).
type Seen = Arc<Mutex<Option<(Decimal, Decimal, Decimal)>>>;

struct Probe(Seen);

impl Strategy for Probe {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        *self.0.lock().expect("probe") = Some((ctx.position(AAPL), ctx.cash(), ctx.equity()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_from_what_the_account_holds() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let cfg = paused(start);
    let account = cfg.account.clone();
    let initial_cash = cfg.initial_cash;
    let gw = Gateway::start(cfg).await.expect("simulator starts");

    // An earlier run bought 25 AAPL: the account holds them now.
    let client = support::client(&gw);
    let mut earlier = broker(&gw, &account, "earlier-");
    earlier
        .place_batch(
            0,
            vec![OrderRequest {
                id: OrderId(1),
                conid: AAPL,
                side: Side::Buy,
                order_type: OrderType::Market,
                quantity: Decimal::from(25),
                limit_price: None,
                stop_price: None,
                trail: None,
                tif: Tif::Day,
                outside_rth: false,
                client_order_id: "buy-1".into(),
                parent: None,
                oca_group: None,
            }],
        )
        .await
        .expect("placed");
    gw.advance(Duration::from_secs(2 * 86_400));
    let held = earlier.fetch_positions().await.expect("positions");
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].quantity, Decimal::from(25));
    let summary = client.portfolio_summary(&account).await.expect("summary");
    let cash = summary
        .get("totalcashvalue")
        .and_then(|v| v.amount)
        .expect("cash");
    assert!(cash < initial_cash, "the purchase spent cash: {cash}");

    // A new bot on the same account.
    let seen = Seen::default();
    let mut node_cfg = NodeConfig::new(ClientConfig::with_base_url(gw.base_url()));
    node_cfg.conids = vec![AAPL];
    let mut node = LiveNode::connect(node_cfg, vec![Probe(seen.clone())])
        .await
        .expect("node connects");
    assert_eq!(node.account(), account);
    node.run(std::future::ready(())).await;
    let (position, seen_cash, equity) = seen.lock().expect("probe").expect("on_start ran");
    assert_eq!(position, Decimal::from(25), "the held position");
    assert_eq!(
        seen_cash, cash,
        "the account's cash, not an invented balance"
    );
    assert!(
        equity > seen_cash,
        "equity counts the position's value: {equity} vs cash {seen_cash}"
    );
    let summary = node.finish(true).await;
    assert_eq!(summary.positions.len(), 1);
    assert_eq!(summary.positions[0].quantity, Decimal::from(25));
    gw.shutdown().await;
}

/// A strategy that places one limit buy of `conid` at start.
struct BuyOnce(Conid, Decimal);

impl Strategy for BuyOnce {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        ctx.submit(OrderSpec::limit(self.0, Side::Buy, Decimal::ONE, self.1));
    }
}

/// The node describes each contract once (from `/trsrv/secdef`) and the
/// broker places from that description: a futures order carries CME Rule
/// 536-B's `manualIndicator` and `extOperator`, a stock order does not.
/// (The node used to leave the broker without contracts, so a bot's
/// futures orders went out without them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_places_futures_with_the_compliance_fields() {
    const ES: Conid = Conid(495_512_557);
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let mut cfg = paused(start);
    cfg.prompts.clear();
    let mut es = Instrument::stock(ES, "ES", "E-mini S&P 500", "CME");
    es.sec_type = "FUT".into();
    es.tick_size = Decimal::new(25, 2);
    cfg.instruments.push(es);
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    gw.record_requests(true);

    let mut node_cfg = NodeConfig::new(ClientConfig::with_base_url(gw.base_url()));
    node_cfg.conids = vec![ES, AAPL];
    node_cfg.ext_operator = "desk-7".into();
    let strategies = vec![
        BuyOnce(ES, Decimal::from(4000)),
        BuyOnce(AAPL, Decimal::ONE),
    ];
    let mut node = LiveNode::connect(node_cfg, strategies)
        .await
        .expect("node connects");
    node.run(std::future::ready(())).await;
    node.finish(true).await;

    let placed: Vec<serde_json::Value> = gw
        .received_requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == format!("/iserver/account/{account}/orders"))
        .map(|r| r.json().expect("an order body"))
        .collect();
    assert_eq!(placed.len(), 2, "{placed:?}");
    let ticket = |conid: Conid| {
        placed
            .iter()
            .map(|body| &body["orders"][0])
            .find(|t| t["conid"] == conid.0)
            .unwrap_or_else(|| panic!("no order for {conid}: {placed:?}"))
            .clone()
    };
    let future = ticket(ES);
    assert_eq!(future["manualIndicator"], false, "{future}");
    assert_eq!(future["extOperator"], "desk-7", "{future}");
    let stock = ticket(AAPL);
    assert!(stock.get("manualIndicator").is_none(), "{stock}");
    assert!(stock.get("extOperator").is_none(), "{stock}");
    gw.shutdown().await;
}

/// A strategy that places one market buy of AAPL at start.
struct MarketBuyOnce;

impl Strategy for MarketBuyOnce {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        ctx.submit(engine::strategy::OrderSpec::market(
            AAPL,
            Side::Buy,
            Decimal::from(5),
        ));
    }
}

fn store_cfg(gw: &gateway_sim::GatewayHandle) -> NodeConfig {
    let mut cfg = NodeConfig::new(ClientConfig::with_base_url(gw.base_url()));
    cfg.conids = vec![AAPL];
    cfg.bot_id = Some("bot7".into());
    cfg
}

/// An order that fills while its bot is down is found filled at the next
/// start: the store's row becomes `Filled`, its execution is stored, and
/// it is not reported missing at the broker (it used to stay `Submitted`
/// forever and be reported `OrderMissingAtBroker` at every start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_filled_while_the_bot_was_down_is_stored_filled() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let mut cfg = paused(start);
    cfg.prompts.clear();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");

    // First run: places a market order, then goes away without cancelling
    // it (as a killed bot would); the market has not moved, nothing filled.
    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(store_cfg(&gw), vec![MarketBuyOnce])
        .await
        .expect("node connects");
    let (mut node, found) = node
        .with_journal(Box::new(store))
        .await
        .expect("reconciled");
    assert!(found.is_empty(), "{found:?}");
    node.run(std::future::ready(())).await;
    node.finish(true).await;
    let store = store::Store::open(&db).await.unwrap();
    let placed = store.orders().await.unwrap();
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!(placed[0].status, engine::model::OrderStatus::Submitted);
    let coid = placed[0].client_order_id.clone();
    assert!(coid.starts_with("bot7."), "{coid}");
    assert_eq!(store.execution_count().await.unwrap(), 0);
    store.close().await;

    // While the bot is down, the order fills (the replay catches up with
    // the advanced clock in its own time: wait for the trade, generously).
    let client = support::client(&gw);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut days = 0;
    while client
        .trades(Some(7))
        .await
        .map(|t| t.is_empty())
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the order never filled"
        );
        if days < 6 {
            gw.advance(Duration::from_secs(86_400));
            days += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Restart on the same store.
    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(store_cfg(&gw), vec![Probe(Seen::default())])
        .await
        .expect("node reconnects");
    let (node, found) = node
        .with_journal(Box::new(store))
        .await
        .expect("reconciled");
    assert!(
        !found.iter().any(|d| matches!(
            d,
            engine::journal::Discrepancy::OrderMissingAtBroker { .. }
                | engine::journal::Discrepancy::OrderState { .. }
        )),
        "{found:?}"
    );
    node.finish(true).await;
    let store = store::Store::open(&db).await.unwrap();
    let row = store.order(&coid).await.unwrap().expect("the order row");
    assert_eq!(
        row.status,
        engine::model::OrderStatus::Filled,
        "{row:?} {found:?} {:?}",
        store.executions(None).await.unwrap()
    );
    assert_eq!(row.filled_quantity, Decimal::from(5));
    let execs = store.executions(None).await.unwrap();
    assert_eq!(execs.len(), 1, "{execs:?}");
    assert_eq!(execs[0].execution.order_ref.as_deref(), Some(coid.as_str()));
    let history = store.order_history(&coid).await.unwrap();
    assert!(
        history
            .last()
            .and_then(|h| h.reason.as_deref())
            .is_some_and(|r| r.contains("resolved at start")),
        "{history:?}"
    );
    gw.shutdown().await;
}

/// A bot whose order fetch fails at start says the reconciliation failed
/// and does not trade (it used to print "reconciled, 0 discrepancies");
/// once the gateway answers again, a retry reconciles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_that_cannot_fetch_orders_fails_and_retries() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let gw = Gateway::start(paused(start))
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let mut cfg = store_cfg(&gw);
    cfg.reconcile_attempts = 2;
    cfg.reconcile_backoff = Duration::from_millis(50);

    gw.fail_path_with("/iserver/account/orders", 503, "Service Unavailable");
    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(cfg.clone(), vec![MarketBuyOnce])
        .await
        .expect("node connects");
    let err = node
        .with_journal(Box::new(store))
        .await
        .expect_err("no reconciliation without the orders");
    let msg = err.to_string();
    assert!(
        msg.contains("reconciliation failed 2 time(s), not trading") && msg.contains("orders"),
        "{msg}"
    );
    let store = store::Store::open(&db).await.unwrap();
    assert!(store.orders().await.unwrap().is_empty(), "nothing traded");
    store.close().await;

    // The gateway recovers while the node waits between attempts.
    cfg.reconcile_attempts = 20;
    cfg.reconcile_backoff = Duration::from_millis(200);
    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(cfg, vec![MarketBuyOnce])
        .await
        .expect("node connects");
    let recover = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        gw.clear_faults();
    };
    let (reconciled, ()) = tokio::join!(node.with_journal(Box::new(store)), recover);
    let (node, found) = reconciled.expect("reconciled once the gateway answers");
    assert!(found.is_empty(), "{found:?}");
    node.finish(true).await;
    gw.shutdown().await;
}

/// An order cancelled while its bot was down, on an earlier day (the live
/// list no longer shows it), is asked of the order status endpoint at the
/// next start and stored `Cancelled`, not reported missing at every start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_while_the_bot_was_down_is_stored_cancelled() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let mut cfg = paused(start);
    cfg.prompts.clear();
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");

    // A limit buy far below the market: it works, and never fills.
    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(store_cfg(&gw), vec![BuyOnce(AAPL, Decimal::ONE)])
        .await
        .expect("node connects");
    let (mut node, _) = node
        .with_journal(Box::new(store))
        .await
        .expect("reconciled");
    node.run(std::future::ready(())).await;
    node.finish(true).await;
    let store = store::Store::open(&db).await.unwrap();
    let placed = store.orders().await.unwrap();
    assert_eq!(placed.len(), 1, "{placed:?}");
    let coid = placed[0].client_order_id.clone();
    let broker_id = placed[0].broker_order_id.clone().expect("acknowledged");
    store.close().await;

    // While the bot is down: cancelled (in TWS, say), then two days pass.
    let client = support::client(&gw);
    client
        .cancel_order_as(&account, &broker_id, None)
        .await
        .expect("cancelled");
    gw.advance(Duration::from_secs(2 * 86_400));

    let store = store::Store::open(&db).await.unwrap();
    let node = LiveNode::connect(store_cfg(&gw), vec![Probe(Seen::default())])
        .await
        .expect("node reconnects");
    let (node, found) = node
        .with_journal(Box::new(store.clone()))
        .await
        .expect("reconciled");
    assert!(
        found.iter().any(|d| matches!(
            d,
            engine::journal::Discrepancy::OrderMissingAtBroker { client_order_id } if *client_order_id == coid
        )),
        "the live list no longer shows it: {found:?}"
    );
    let left = ibflow::run_cmd::resolve_missing(&node, &store, found)
        .await
        .expect("resolved");
    assert!(left.is_empty(), "{left:?}");
    node.finish(true).await;
    let row = store.order(&coid).await.unwrap().expect("the row");
    assert_eq!(row.status, engine::model::OrderStatus::Cancelled, "{row:?}");
    gw.shutdown().await;
}
