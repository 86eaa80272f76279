//! The real client against the real CP Gateway simulator (`gateway_sim`)
//! over HTTP on 127.0.0.1, pacing on at both ends: the client with its
//! default margin, the simulator with the exact limits and a penalty box
//! longer than any test, so a single pacing disagreement fails a call with
//! a 429 (the client is told not to wait out a penalty).
//!
//! Pacing, session keeping, the reply chain, the `/hmds/history` warm-up,
//! snapshot pre-flight and history download live here; error bodies,
//! headers and the websocket's faults in `ibkr_client.rs`, every typed call
//! in `ibkr_endpoints.rs`, the futures compliance fields in
//! `ibkr_compliance.rs`, all against the same simulator.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use cpapi::messages::PlaceOutcome;
use cpapi::order_ticket::OrdersBody;
use engine::model::{Conid, OrderRequest, OrderType, Side, Tif};
use gateway_sim::GatewayHandle;
use ibkr::rest::HistoryRequest;
use ibkr::session::{check_once, SessionConfig};
use ibkr::IbkrError;
use rust_decimal::Decimal;

mod support;

use support::{client, order, start};

const AAPL: Conid = Conid(265598);

/// The simulator as these tests use it: paused, pacing enforced.
async fn sim() -> GatewayHandle {
    start(|_| {}).await
}

fn not_paced<T: std::fmt::Debug>(r: &Result<T, IbkrError>) {
    assert!(
        !matches!(
            r,
            Err(IbkrError::TooManyRequests { .. } | IbkrError::PenaltyBox { .. })
        ),
        "pacing disagreement: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickles_are_paced_as_the_gateway_counts_them() {
    // POST /tickle is 1 per second at the gateway (the table's GET row): the
    // client spaces its tickles so that none is refused.
    let g = sim().await;
    let c = client(&g);
    for _ in 0..3 {
        let r = c.tickle().await;
        not_paced(&r);
        r.unwrap();
    }
    // The table's GET and the client's POST are one endpoint at the
    // simulator too: a raw GET right after is refused.
    let raw = reqwest::get(format!("{}/tickle", g.base_url()))
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 429);
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_orders_preflight_is_spaced_by_the_endpoint_window() {
    // The first `/iserver/account/orders` of a session is answered empty
    // and repeated: the repeat waits 5 s + margin, and arrives after the
    // gateway's 5 s window even under load.
    let g = sim().await;
    let c = client(&g);
    let r = c.live_orders(&[], false).await;
    not_paced(&r);
    r.unwrap();
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_requests_share_one_pool_of_five() {
    let g = sim().await;
    let c = client(&g);
    // The warm-up 404 of the first /hmds/history, retried once.
    let first = c.hmds_history(&HistoryRequest::new(AAPL, "1w", "1d")).await;
    not_paced(&first);
    assert!(!first.unwrap().bars.is_empty());
    // Eight at once, slow answers, both history endpoints: the client holds
    // the ones beyond five, the simulator never sees a sixth.
    g.delay_path("/hmds/history", Duration::from_millis(500));
    g.delay_path("/iserver/marketdata/history", Duration::from_millis(500));
    let req = HistoryRequest::new(AAPL, "1w", "1d");
    let calls = (0..8).map(|i| {
        let (c, req) = (c.clone(), req.clone());
        tokio::spawn(async move {
            if i % 2 == 0 {
                c.hmds_history_raw(&req).await
            } else {
                c.iserver_history_raw(&req).await
            }
        })
    });
    for r in futures_util::future::join_all(calls).await {
        let r = r.unwrap();
        not_paced(&r);
        r.unwrap();
    }
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmds_first_call_404_is_retried_once_and_snapshot_preflight() {
    let g = sim().await;
    let c = client(&g);
    let h = c
        .hmds_history(&HistoryRequest::new(AAPL, "1w", "1d"))
        .await
        .unwrap();
    assert!(!h.bars.is_empty());
    // Snapshot: the pre-flight answer (no fields yet) is repeated.
    let rows = c.snapshot(&[AAPL], &["31", "84", "86"]).await.unwrap();
    let mut d = cpapi::smd::SmdDecoder::new();
    let s = d.decode_value(&rows[0]).unwrap();
    assert!(s.quote.last.is_some(), "{rows:?}");
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_download_splits_fetches_stitches_and_saves() {
    let g = sim().await;
    let c = client(&g);
    let dir = tempfile::tempdir().unwrap();
    let end = Utc.with_ymd_and_hms(2023, 5, 31, 21, 0, 0).unwrap();
    let d = ibkr::history::download(&c, AAPL, "1d", "3y", end, false, Some(dir.path()))
        .await
        .unwrap();
    // 3y of daily bars = 3 requests of 1y, stitched in order.
    assert_eq!(d.requests, 3);
    assert_eq!(d.files.len(), 3);
    assert!(d.bars.len() > 500, "{}", d.bars.len());
    assert!(d.bars.windows(2).all(|w| w[0].time < w[1].time));
    for f in &d.files {
        let body = std::fs::read(f).unwrap();
        assert!(!cpapi::history::parse_history(AAPL, &body)
            .unwrap()
            .bars
            .is_empty());
    }
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_chain_with_two_prompts() {
    let g = sim().await;
    let c = client(&g);
    let acct = c.iserver_accounts().await.unwrap().accounts[0].clone();
    // A stop far below the market: two precaution prompts (price, stop).
    let req = OrderRequest {
        stop_price: Some(Decimal::ONE),
        tif: Tif::Gtc,
        client_order_id: "ibkr-sim-1".into(),
        ..order(1, AAPL, Side::Sell, OrderType::Stop)
    };
    let body = OrdersBody::from_batch(&[req], &acct);
    let mut outcome = c.place_orders(&acct, &body).await.unwrap();
    let mut prompts = Vec::new();
    while let PlaceOutcome::Prompt(p) = outcome {
        prompts.extend(p.message_ids.clone());
        assert!(prompts.len() < 10, "reply chain does not end");
        outcome = c.reply(&p.id, true).await.unwrap();
    }
    assert!(prompts.len() >= 2, "{prompts:?}");
    match outcome {
        PlaceOutcome::Acknowledged(a) => assert!(a[0].order_id.is_some()),
        PlaceOutcome::Prompt(_) => unreachable!(),
    }
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_is_reinitialized() {
    let g = sim().await;
    let c = client(&g);
    g.expire_session();
    // Connected, not authenticated: the keeper re-opens the session.
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(r.reinitialized, "{r:?}");
    assert!(r.status.authenticated);
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(!r.reinitialized, "{r:?}");
    g.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeper_task_reports_status_changes() {
    let g = sim().await;
    g.expire_session();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    // Checks only when nudged: a tickle an hour apart never comes twice.
    let cfg = SessionConfig {
        tickle_every: Duration::from_secs(3600),
        ..SessionConfig::default()
    };
    let nudge = std::sync::Arc::new(tokio::sync::Notify::new());
    let task = ibkr::session::spawn_keeper(client(&g), cfg, tx, nudge.clone());
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a status within 10 s")
            .expect("the keeper runs")
    };
    // The first check found the brokerage session closed and re-opened it:
    // the listener hears it was lost, then that it is back.
    let lost = next().await;
    assert!(!lost.authenticated, "{lost:?}");
    let back = next().await;
    assert!(back.authenticated && back.connected, "{back:?}");
    // Expired again, and the keeper nudged (as the node does when the
    // websocket says so): re-opened at once, not an hour later.
    g.expire_session();
    nudge.notify_one();
    let lost = next().await;
    assert!(!lost.authenticated, "{lost:?}");
    let back = next().await;
    assert!(back.authenticated, "{back:?}");
    task.abort();
    g.shutdown().await;
}
