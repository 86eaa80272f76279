//! End to end on the simulator: a strategy's bracket intent becomes three
//! live orders, the entry fills, the take-profit fills, the stop-loss is
//! cancelled, and the strategy saw every update, all over real HTTP and a
//! real websocket on 127.0.0.1.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;

use cpapi::order_ticket::TicketBuilder;
use engine::contracts::Contracts;
use engine::model::{Conid, Contract, Execution, Order, OrderStatus, Side};
use engine::portfolio::Portfolio;
use engine::risk::RiskConfig;
use engine::strategy::{Context, Exits, OrderSpec, Strategy};
use gateway_sim::{Gateway, GatewayConfig, PacingConfig};
use ibkr::broker::IbkrBroker;
use ibkr::executor::LiveExecutor;
use ibkr::live_engine::LiveEngine;
use ibkr::reply::ReplyPolicy;
use ibkr::ws::{self, Subscription, WsConfig};
use ibkr::{ClientConfig, IbkrClient};

const AAPL: Conid = Conid(265598);

type Log = Arc<Mutex<Vec<String>>>;

/// Places one bracket at start and writes down everything it hears.
struct BracketOnce {
    take_profit: Decimal,
    stop_loss: Decimal,
    log: Log,
}

impl Strategy for BracketOnce {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        ctx.bracket(
            OrderSpec::market(AAPL, Side::Buy, Decimal::from(50)),
            Exits {
                take_profit: Some(self.take_profit),
                stop_loss: Some(self.stop_loss),
            },
        );
    }
    fn on_order_update(&mut self, _ctx: &mut Context<'_>, o: &Order) {
        self.log
            .lock()
            .unwrap()
            .push(format!("order {} {}", o.id(), o.status));
    }
    fn on_execution(&mut self, ctx: &mut Context<'_>, e: &Execution) {
        self.log.lock().unwrap().push(format!(
            "exec {} {} pos {}",
            e.side.code(),
            e.size,
            ctx.position(e.conid)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bracket_entry_then_take_profit_cancels_the_stop() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    // The entry fills at the next bar's open; the take-profit sits just
    // under the highest high of the three bars after that, so it fills.
    let bars: Vec<_> = backtest::data::sample()
        .filter_map(Result::ok)
        .filter(|b| b.conid == AAPL && b.time > start)
        .take(4)
        .collect();
    let entry = bars[0].open;
    let top = bars[1..].iter().map(|b| b.high).max().unwrap();
    assert!(
        top > entry,
        "sample data must rise after the start for this test"
    );
    let take_profit = top - Decimal::new(1, 2);
    let stop_loss = entry * Decimal::new(5, 1);

    let cfg = GatewayConfig {
        speed: 0.0,
        start: Some(start),
        pacing: PacingConfig::off(),
        prompts: Vec::new(),
        ..GatewayConfig::default()
    };
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator");
    let client = IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client");
    let (wsh, mut rx) = ws::spawn(client.clone(), WsConfig::default(), 256);
    wsh.subscribe(Subscription::Orders);
    wsh.subscribe(Subscription::Trades {
        realtime_only: true,
        days: None,
    });
    // Wait for the socket before anything trades.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ws::WsMessage::Connected { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("websocket did not connect: {other:?}"),
        }
    }

    let log: Log = Arc::default();
    let exec = LiveExecutor::new(
        client,
        TicketBuilder {
            account: account.clone(),
            coid_prefix: "e2e-".into(),
            ext_operator: "test".into(),
        },
        ReplyPolicy::default(),
    );
    let mut engine = LiveEngine::new(
        vec![BracketOnce {
            take_profit,
            stop_loss,
            log: log.clone(),
        }],
        Portfolio::new(Decimal::from(100_000)),
        RiskConfig::default(),
        IbkrBroker::new(exec, account),
        Contracts::new([Contract::stock(AAPL, "AAPL")]),
    );
    engine.start().await;

    // Replay day by day; handle what the websocket brings until done.
    let done = |log: &Log| {
        let l = log.lock().unwrap();
        l.iter().any(|s| s == "order 2 Filled") && l.iter().any(|s| s == "order 3 Cancelled")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut day = 0;
    while !done(&log) && tokio::time::Instant::now() < deadline {
        if day < 10 {
            gw.advance(Duration::from_secs(86_400));
            day += 1;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(700);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, rx.recv()).await {
            engine.handle(msg).await;
        }
    }
    let log = log.lock().unwrap().clone();
    let pos = |s: &str| {
        log.iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("missing {s:?} in {log:?}"))
    };
    // Three live orders.
    pos("order 1 Submitted");
    pos("order 2 PreSubmitted");
    pos("order 3 PreSubmitted");
    // Entry fills; children go live; take-profit fills; stop cancelled.
    assert!(pos("order 1 Filled") < pos("order 2 Filled"));
    assert!(pos("order 2 Submitted") < pos("order 2 Filled"));
    assert!(pos("order 3 Submitted") < pos("order 3 Cancelled"));
    let execs: Vec<_> = log.iter().filter(|l| l.starts_with("exec")).collect();
    assert_eq!(execs, ["exec B 50 pos 50", "exec S 50 pos 0"], "{log:?}");
    // Nothing was reported twice.
    let mut seen = std::collections::BTreeSet::new();
    for l in log.iter().filter(|l| l.starts_with("order")) {
        assert!(seen.insert(l.clone()), "{l} reported twice: {log:?}");
    }
    assert_eq!(
        engine.dispatcher().portfolio().quantity(AAPL),
        Decimal::ZERO
    );
    assert!(engine.dispatcher().portfolio().realized_pnl() > Decimal::ZERO);
    wsh.shutdown().await;
    gw.shutdown().await;
}

/// Kill switch: halts trading and cancels the working bracket; later
/// intents are refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_cancels_and_halts() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let cfg = GatewayConfig {
        speed: 0.0,
        start: Some(start),
        pacing: PacingConfig::off(),
        prompts: Vec::new(),
        ..GatewayConfig::default()
    };
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator");
    let client = IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client");
    let log: Log = Arc::default();
    let exec = LiveExecutor::new(
        client,
        TicketBuilder {
            account: account.clone(),
            coid_prefix: "k-".into(),
            ext_operator: "t".into(),
        },
        ReplyPolicy::default(),
    );
    // A limit entry far below the market: it stays working.
    struct Resting(Log);
    impl Strategy for Resting {
        fn on_start(&mut self, ctx: &mut Context<'_>) {
            ctx.submit(OrderSpec::limit(
                AAPL,
                Side::Buy,
                Decimal::ONE,
                Decimal::ONE,
            ));
        }
        fn on_order_update(&mut self, ctx: &mut Context<'_>, o: &Order) {
            self.0.lock().unwrap().push(format!(
                "order {} {} {}",
                o.id(),
                o.status,
                o.reason.clone().unwrap_or_default()
            ));
            if o.status == OrderStatus::PendingCancel {
                // Try to trade again after the kill: refused by risk.
                ctx.buy(AAPL, Decimal::ONE);
            }
        }
    }
    let mut engine = LiveEngine::new(
        vec![Resting(log.clone())],
        Portfolio::new(Decimal::from(100_000)),
        RiskConfig::default(),
        IbkrBroker::new(exec, account),
        Contracts::new([Contract::stock(AAPL, "AAPL")]),
    );
    engine.start().await;
    engine.kill("operator test").await;
    assert_eq!(engine.trading_state(), engine::risk::TradingState::Halted);
    let log = log.lock().unwrap().clone();
    assert!(log[0].starts_with("order 1 Submitted"), "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("order 1 PendingCancel")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("order 2 Inactive") && l.contains("operator test")),
        "{log:?}"
    );
    gw.shutdown().await;
}

/// The same bracket with a SQLite store: orders and executions are
/// persisted as they happen; a restarted engine's reconciliation finds the
/// store and the broker in agreement and ingests nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_orders_and_executions_are_persisted_and_reconciled() {
    let start = Utc.with_ymd_and_hms(2023, 6, 1, 14, 0, 0).unwrap();
    let bars: Vec<_> = backtest::data::sample()
        .filter_map(Result::ok)
        .filter(|b| b.conid == AAPL && b.time > start)
        .take(4)
        .collect();
    let top = bars[1..].iter().map(|b| b.high).max().unwrap();
    let take_profit = top - Decimal::new(1, 2);
    let stop_loss = bars[0].open * Decimal::new(5, 1);
    let cfg = GatewayConfig {
        speed: 0.0,
        start: Some(start),
        pacing: PacingConfig::off(),
        prompts: Vec::new(),
        ..GatewayConfig::default()
    };
    let account = cfg.account.clone();
    let gw = Gateway::start(cfg).await.expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let client = IbkrClient::new(ClientConfig::with_base_url(gw.base_url())).expect("client");
    let (wsh, mut rx) = ws::spawn(client.clone(), WsConfig::default(), 256);
    wsh.subscribe(Subscription::Orders);
    wsh.subscribe(Subscription::Trades {
        realtime_only: true,
        days: None,
    });
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(ws::WsMessage::Connected { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("websocket did not connect: {other:?}"),
        }
    }
    let make = |client: IbkrClient, account: String| {
        IbkrBroker::new(
            LiveExecutor::new(
                client,
                TicketBuilder {
                    account: account.clone(),
                    coid_prefix: "st-".into(),
                    ext_operator: "t".into(),
                },
                ReplyPolicy::default(),
            ),
            account,
        )
    };
    let log: Log = Arc::default();
    let store = store::Store::open(&db).await.expect("store");
    let mut engine = LiveEngine::new(
        vec![BracketOnce {
            take_profit,
            stop_loss,
            log: log.clone(),
        }],
        Portfolio::new(Decimal::from(100_000)),
        RiskConfig::default(),
        make(client.clone(), account.clone()),
        Contracts::new([Contract::stock(AAPL, "AAPL")]),
    )
    .with_journal(Box::new(store));
    engine.start().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut day = 0;
    loop {
        let done = log.lock().unwrap().iter().any(|s| s == "order 3 Cancelled");
        if done || tokio::time::Instant::now() > deadline {
            break;
        }
        if day < 10 {
            gw.advance(Duration::from_secs(86_400));
            day += 1;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(700);
        while let Ok(Some(msg)) = tokio::time::timeout_at(until, rx.recv()).await {
            engine.handle(msg).await;
        }
    }
    wsh.shutdown().await;

    let store = store::Store::open(&db).await.expect("reopen");
    let execs = store.executions(None).await.expect("executions");
    assert_eq!(execs.len(), 2, "{execs:?}");
    let orders = store.orders().await.expect("orders");
    let status = |coid: &str| {
        orders
            .iter()
            .find(|o| o.client_order_id == coid)
            .map(|o| o.status)
    };
    assert_eq!(status("st-0.ibf-1"), Some(OrderStatus::Filled));
    assert_eq!(status("st-0.ibf-2"), Some(OrderStatus::Filled));
    assert_eq!(status("st-0.ibf-3"), Some(OrderStatus::Cancelled));
    let stored_pos: Vec<_> = store
        .positions()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| !p.quantity.is_zero())
        .collect();
    assert!(stored_pos.is_empty(), "{stored_pos:?}");

    // A restart: a new engine on the same store reconciles with the broker.
    // One stored order the broker never heard of is a discrepancy, reported
    // to the strategies as an event.
    let mut ghost = Order::rejected(
        engine::model::OrderRequest {
            id: engine::model::OrderId(99),
            conid: AAPL,
            side: Side::Buy,
            order_type: engine::model::OrderType::Limit,
            quantity: Decimal::ONE,
            limit_price: Some(Decimal::ONE),
            stop_price: None,
            trail: None,
            tif: engine::model::Tif::Gtc,
            outside_rth: false,
            client_order_id: "st-ghost".into(),
            parent: None,
            oca_group: None,
        },
        0,
        Utc::now(),
        "",
    );
    ghost.status = OrderStatus::Submitted;
    store
        .upsert_order(&store::StoredOrder::from_order(
            &ghost,
            None,
            Some("DU1234567"),
        ))
        .await
        .unwrap();
    let heard: Log = Arc::default();
    struct Listener(Log);
    impl Strategy for Listener {
        fn on_event(&mut self, _ctx: &mut Context<'_>, ev: &engine::event::Event) {
            if let engine::event::Event::Discrepancy(d) = ev {
                self.0.lock().unwrap().push(d.clone());
            }
        }
    }
    let mut again = LiveEngine::new(
        vec![Listener(heard.clone())],
        Portfolio::new(Decimal::from(100_000)),
        RiskConfig::default(),
        make(client, account),
        Contracts::new([Contract::stock(AAPL, "AAPL")]),
    )
    .with_journal(Box::new(store));
    let discrepancies = again.reconcile().await.expect("reconcile");
    assert_eq!(discrepancies.len(), 1, "{discrepancies:?}");
    assert!(matches!(
        &discrepancies[0],
        store::Discrepancy::OrderMissingAtBroker { client_order_id } if client_order_id == "st-ghost"
    ));
    let heard = heard.lock().unwrap().clone();
    assert_eq!(heard.len(), 1);
    assert!(heard[0].contains("st-ghost"), "{heard:?}");
    let store = store::Store::open(&db).await.expect("reopen");
    assert_eq!(
        store.executions(None).await.unwrap().len(),
        2,
        "nothing ingested twice"
    );
    gw.shutdown().await;
}
