//! The real `ibkr` client against the CP Gateway simulator
//! (`gateway_sim`) over HTTP and websocket on 127.0.0.1.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::time::Duration;

use cpapi::messages::PlaceOutcome;
use cpapi::order_ticket::OrdersBody;
use cpapi::smd::SmdDecoder;
use engine::event::Event;
use engine::model::{Conid, OrderId, OrderRequest, OrderType, Side, Tif};
use gateway_sim::{Gateway, GatewayConfig, GatewayHandle};
use ibkr::rest::HistoryRequest;
use ibkr::session::{check_once, SessionConfig};
use ibkr::ws::{self, Subscription, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient};
use rust_decimal::Decimal;

const AAPL: Conid = Conid(265598);

async fn sim() -> GatewayHandle {
    sim_from(None).await
}

/// A simulator whose replay clock starts at `start` (history is served only
/// up to the replay clock).
async fn sim_from(start: Option<&str>) -> GatewayHandle {
    Gateway::start(GatewayConfig {
        start: start.map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("start time")
                .to_utc()
        }),
        // One replay day per real second: bars complete and quotes move.
        speed: 86_400.0,
        heartbeat: Duration::from_millis(100),
        tick: Duration::from_millis(20),
        ..GatewayConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn client(g: &GatewayHandle) -> IbkrClient {
    IbkrClient::new(ClientConfig::for_simulator(g.base_url())).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_accounts_contracts_and_market_data() {
    let g = sim().await;
    let c = client(&g);
    let t = c.tickle().await.unwrap();
    assert_eq!(t.session.expose(), g.session_token());
    assert!(c.auth_status().await.unwrap().connected);
    assert!(c.sso_validate().await.unwrap().result);
    let accts = c.iserver_accounts().await.unwrap();
    let acct = accts.accounts[0].clone();
    assert!(!c.portfolio_accounts().await.unwrap().is_empty());
    let found = c.secdef_search("AAPL", None, false).await.unwrap();
    assert!(found.iter().any(|r| r.conid == AAPL), "{found:?}");
    assert_eq!(c.contract_info(AAPL).await.unwrap().conid, AAPL);
    assert_eq!(c.trsrv_secdef(&[AAPL]).await.unwrap().secdef[0].conid, AAPL);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = c.snapshot(&[AAPL], &["31", "84", "86"]).await.unwrap();
    let mut d = SmdDecoder::new();
    let s = d.decode_value(&rows[0]).unwrap();
    assert!(
        s.quote.last.is_some() || s.quote.bid.is_some(),
        "{:?}",
        s.raw
    );

    // The first /hmds/history call is the 404 page, retried once.
    let h = c
        .hmds_history(&HistoryRequest::new(AAPL, "1y", "1d"))
        .await
        .unwrap();
    assert!(!h.bars.is_empty());

    // Portfolio endpoints answer and parse.
    c.positions(&acct).await.unwrap();
    c.portfolio_summary(&acct).await.unwrap();
    c.ledger(&acct).await.unwrap();
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_with_two_prompts_trades_and_cancel() {
    let g = sim().await;
    let c = client(&g);
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A stop order far below the market: o163 (price) and o10331 (stop).
    let req = OrderRequest {
        id: OrderId(1),
        conid: AAPL,
        side: Side::Sell,
        order_type: OrderType::Stop,
        quantity: Decimal::ONE,
        limit_price: None,
        stop_price: Some(Decimal::ONE),
        trail: None,
        tif: Tif::Gtc,
        outside_rth: false,
        client_order_id: "ibkr-sim-1".into(),
        parent: None,
        oca_group: None,
    };
    let body = OrdersBody::from_batch(&[req], &acct);
    // whatif: parsed when the simulator implements it, else a typed 501.
    match c.whatif(&acct, &body).await {
        Ok(w) => assert!(w.amount.is_some() || w.warn.is_some() || w.error.is_some()),
        Err(ibkr::IbkrError::Status { status: 501, .. }) => {}
        Err(e) => panic!("whatif: {e}"),
    }
    let mut outcome = c.place_orders(&acct, &body).await.unwrap();
    let mut prompts = Vec::new();
    while let PlaceOutcome::Prompt(p) = outcome {
        prompts.extend(p.message_ids.clone());
        assert!(prompts.len() < 10, "reply chain does not end");
        outcome = c.reply(&p.id, true).await.unwrap();
    }
    assert!(
        prompts.len() >= 2,
        "expected two successive prompts, got {prompts:?}"
    );
    let acks = match outcome {
        PlaceOutcome::Acknowledged(a) => a,
        PlaceOutcome::Prompt(_) => unreachable!(),
    };
    let order_id = acks[0].order_id.clone().expect("order id");
    let st = c.order_status(&order_id).await.unwrap();
    assert_eq!(st.conid, AAPL);
    let live = c.live_orders(&[], false).await.unwrap();
    assert!(live
        .orders
        .iter()
        .any(|o| o.order_id.as_deref() == Some(order_id.as_str())));
    let cancel = c.cancel_order(&acct, &order_id).await.unwrap();
    assert!(cancel.msg.is_some() || cancel.order_id.is_some());
    c.trades(Some(1)).await.unwrap();
    c.suppress_questions(&["o163"]).await.unwrap();
    c.reset_suppressed_questions().await.unwrap();
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_reinitialized() {
    let g = sim().await;
    let c = client(&g);
    c.tickle().await.unwrap();
    g.expire_session();
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(r.reinitialized, "{r:?}");
    assert!(r.status.authenticated);
    // A competing login is reported, not fought (compete is off).
    g.trigger_competing_session();
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(r.status.competing, "{r:?}");
    assert!(!r.reinitialized);
    g.shutdown().await;
}

async fn wait_for(
    rx: &mut tokio::sync::mpsc::Receiver<WsMessage>,
    f: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let m = rx.recv().await.expect("ws channel open");
            if f(&m) {
                return m;
            }
        }
    })
    .await
    .expect("message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_quotes_drop_resubscribe_and_heartbeat_loss() {
    let g = sim().await;
    let c = client(&g);
    c.iserver_accounts().await.unwrap();
    let cfg = WsConfig {
        dead_after: Duration::from_millis(800),
        tic_every: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
    };
    let (h, mut rx) = ws::spawn(c, cfg, 256);
    h.subscribe(Subscription::MarketData {
        conid: AAPL,
        fields: vec!["31".into(), "84".into(), "86".into()],
    });
    wait_for(
        &mut rx,
        |m| matches!(m, WsMessage::Event(Event::Quote(q)) if q.conid == AAPL),
    )
    .await;

    // Dropped socket: reconnect and the subscription is restored.
    g.drop_websockets();
    wait_for(&mut rx, |m| matches!(m, WsMessage::Disconnected { .. })).await;
    wait_for(
        &mut rx,
        |m| matches!(m, WsMessage::Connected { reconnects } if *reconnects >= 1),
    )
    .await;
    wait_for(
        &mut rx,
        |m| matches!(m, WsMessage::Event(Event::Quote(q)) if q.conid == AAPL),
    )
    .await;

    // Heartbeats stop (and, paused clock, no quotes): detected as dead.
    g.set_speed(0.0);
    g.stop_heartbeats(true);
    let m = wait_for(&mut rx, |m| matches!(m, WsMessage::Disconnected { .. })).await;
    if let WsMessage::Disconnected { reason } = m {
        assert!(
            reason.contains("dead") || reason.contains("closed"),
            "{reason}"
        );
    }
    g.stop_heartbeats(false);
    wait_for(&mut rx, |m| matches!(m, WsMessage::Connected { .. })).await;
    h.shutdown().await;
    g.shutdown().await;
}

/// `ibflow history fetch` writes files that `ibflow backtest --data` reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_history_fetch_then_backtest() {
    let g = sim_from(Some("2023-01-03T00:00:00Z")).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hist");
    let exe = env!("CARGO_BIN_EXE_ibflow");
    let base = g.base_url();
    let out2 = out.clone();
    let fetch = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "history", "fetch", "--conid", "265598", "--bar", "1d", "--period", "2y",
            ])
            .args([
                "--end",
                "2021-01-01T00:00:00Z",
                "--json",
                "--gateway",
                &base,
                "--out",
            ])
            .arg(&out2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        fetch.status.success(),
        "{}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&fetch.stdout).unwrap();
    assert_eq!(v["requests"], 2);
    assert!(v["bars"].as_u64().unwrap() > 100, "{v}");
    for f in std::fs::read_dir(&out).unwrap() {
        let p = f.unwrap().path();
        assert_eq!(backtest::data::conid_from_path(&p), Some(AAPL));
    }
    let report = dir.path().join("report");
    let bt = std::process::Command::new(exe)
        .args(["backtest", "--quiet", "--data"])
        .arg(&out)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        bt.status.success(),
        "{}",
        String::from_utf8_lossy(&bt.stderr)
    );
    assert!(report.join("summary.json").exists());

    // The other operator commands answer in JSON.
    for args in [
        vec!["gateway", "status"],
        vec!["quote", "265598"],
        vec!["orders"],
        vec!["trades"],
        vec!["positions"],
    ] {
        // Each process has its own pacer; the gateway's global 10 req/s
        // counts them together, so space the processes out.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let base = g.base_url();
        let o = tokio::task::spawn_blocking(move || {
            std::process::Command::new(exe)
                .args(&args)
                .args(["--json", "--gateway", &base])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let _: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    }
    g.shutdown().await;
}

/// ForecastEx through the engine's client: discover a market in the
/// category tree, pair its contracts, buy YES, exit by buying NO (the venue
/// nets: B, N, N), and a sell is refused by the venue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecastex_discovery_netting_and_sell_refusal() {
    let g = Gateway::start(GatewayConfig {
        speed: 0.0,
        prompts: Vec::new(),
        ..GatewayConfig::default()
    })
    .await
    .expect("simulator starts");
    let c = client(&g);
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();

    let tree = c.event_category_tree().await.unwrap();
    let market = tree
        .values()
        .flat_map(|cat| cat.markets.iter())
        .find(|m| m.symbol.as_deref() == Some("HORC"))
        .expect("HORC in the tree")
        .conid;
    let contracts = c.event_contracts(market, "FORECASTX").await.unwrap();
    let pairing = contracts.pairing().unwrap();
    assert_eq!(pairing.pairs().len(), 2);
    let pair = pairing.pairs()[0].clone();

    let order = |id: u64, conid: Conid, side: Side| OrderRequest {
        id: OrderId(id),
        conid,
        side,
        order_type: OrderType::Market,
        quantity: Decimal::from(20),
        limit_price: None,
        stop_price: None,
        trail: None,
        tif: Tif::Day,
        outside_rth: false,
        client_order_id: format!("fx-{id}"),
        parent: None,
        oca_group: None,
    };
    let place = |req: OrderRequest| {
        let c = &c;
        let acct = acct.clone();
        async move {
            c.place_orders(&acct, &OrdersBody::from_batch(&[req], &acct))
                .await
        }
    };
    // The venue refuses the sell with a 200 {"error"}: a typed rejection.
    let err = place(order(1, pair.yes, Side::Sell)).await.unwrap_err();
    assert!(err.to_string().contains("cannot be sold"), "{err}");

    let days = |n: u64| Duration::from_secs(n * 86_400);
    assert!(matches!(
        place(order(2, pair.yes, Side::Buy)).await.unwrap(),
        PlaceOutcome::Acknowledged(_)
    ));
    g.advance(days(4));
    assert!(matches!(
        place(order(3, pair.no, Side::Buy)).await.unwrap(),
        PlaceOutcome::Acknowledged(_)
    ));
    g.advance(days(4));
    let trades = c.trades(Some(7)).await.unwrap();
    let seen: Vec<_> = trades
        .iter()
        .map(|t| {
            (
                t.side.as_deref().unwrap_or(""),
                t.conid.expect("conid"),
                t.size.unwrap_or_default(),
            )
        })
        .collect();
    let twenty = Decimal::from(20);
    assert_eq!(
        seen,
        vec![
            ("B", pair.yes, twenty),
            ("B", pair.no, twenty),
            ("N", pair.yes, twenty),
            ("N", pair.no, twenty),
        ]
    );
    // Flat on both sides once netted.
    let positions = c.positions(&acct).await.unwrap();
    assert!(
        positions
            .iter()
            .all(|p| (p.conid != pair.yes && p.conid != pair.no) || p.position.is_zero()),
        "{positions:?}"
    );

    // The BookTrader ladder through the engine's websocket client.
    let (h, mut rx) = ws::spawn(c, WsConfig::default(), 64);
    h.subscribe(Subscription::BookTrader {
        account: acct.clone(),
        conid: pair.yes,
    });
    let m = wait_for(&mut rx, |m| matches!(m, WsMessage::PriceLadder(_))).await;
    let WsMessage::PriceLadder(ladder) = m else {
        unreachable!()
    };
    assert_eq!(ladder.conid, pair.yes);
    assert_eq!(ladder.rows.iter().filter(|r| r.focus).count(), 1);
    h.shutdown().await;
    g.shutdown().await;
}

/// The ForecastEx research loop with the real binary: list the market's
/// contracts and save them, download YES and NO history, backtest
/// `forecast_band` with the saved contracts: every exit is netted, and the
/// report shows each round trip as one closed YES trade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_forecastex_contracts_history_then_backtest() {
    let g = sim_from(Some("2019-06-01T00:00:00Z")).await;
    g.set_speed(0.0);
    let dir = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_ibflow");
    let base = g.base_url();
    let run = |args: Vec<String>| {
        let base = base.clone();
        async move {
            // One process per second: the gateway's pacing is per address.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let o = tokio::task::spawn_blocking(move || {
                std::process::Command::new(exe)
                    .args(&args)
                    .args(["--gateway", &base])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        }
    };
    let cats = run(vec![
        "gateway".into(),
        "event-categories".into(),
        "--json".into(),
    ])
    .await;
    let cats: serde_json::Value = serde_json::from_slice(&cats).unwrap();
    assert_eq!(cats["g17502"]["markets"][0]["conid"], 733131966);
    let contracts = run([
        "gateway",
        "event-contracts",
        "--market",
        "733131966",
        "--json",
    ]
    .map(String::from)
    .to_vec())
    .await;
    let file = dir.path().join("horc.json");
    std::fs::write(&file, contracts).unwrap();
    let hist = dir.path().join("hist");
    for conid in ["762089343", "762089344"] {
        run([
            "history",
            "fetch",
            "--conid",
            conid,
            "--bar",
            "1d",
            "--period",
            "6m",
            "--end",
            "2019-06-01T00:00:00Z",
            "--json",
            "--out",
        ]
        .map(String::from)
        .into_iter()
        .chain([hist.display().to_string()])
        .collect())
        .await;
    }
    let report = dir.path().join("report");
    let bt = std::process::Command::new(exe)
        .args(["backtest", "--quiet", "--strategy", "forecast_band"])
        .args(["--param", "conid=762089343", "--param", "buy_below=0.46"])
        .args(["--param", "take_profit=0.50", "--data"])
        .arg(&hist)
        .arg("--event-contracts")
        .arg(&file)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        bt.status.success(),
        "{}",
        String::from_utf8_lossy(&bt.stderr)
    );
    let trades = std::fs::read_to_string(report.join("trades.csv")).unwrap();
    let rows: Vec<Vec<&str>> = trades
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(!rows.is_empty(), "{trades}");
    for r in &rows {
        // A netted exit is one closed YES trade (no zero-length NO trade):
        // bought at the entry, closed at 1 - the NO price paid.
        assert_eq!(r[2], "762089343", "{trades}");
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(d(r[7]), (d(r[6]) - d(r[5])) * d(r[4]), "{trades}");
        assert!(
            d(r[6]) >= Decimal::new(50, 2),
            "exit at take_profit: {trades}"
        );
    }
    // Without the contracts the same data does not trade at all.
    let bare = std::process::Command::new(exe)
        .args(["backtest", "--quiet", "--strategy", "forecast_band"])
        .args(["--param", "conid=762089343", "--data"])
        .arg(&hist)
        .arg("--out")
        .arg(dir.path().join("bare"))
        .output()
        .unwrap();
    assert!(bare.status.success());
    let bare_trades = std::fs::read_to_string(dir.path().join("bare/trades.csv")).unwrap();
    assert_eq!(bare_trades.lines().count(), 1, "{bare_trades}");
    g.shutdown().await;
}
