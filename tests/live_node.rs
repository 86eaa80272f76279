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
