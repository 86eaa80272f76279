//! The simulator's pacing over real HTTP on 127.0.0.1, against the rows of
//! `cpapi::endpoints`: `/tickle` is one endpoint for GET and POST, and the
//! history pool covers `/hmds/history`.
//!
//! Every burst here is sent at once (concurrent requests), far faster than
//! the limit it tests, and the penalty box is long, so the outcome is a count
//! of 200s and 429s that does not depend on how loaded the machine is: the
//! first violation boxes the address and everything after it is refused.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use futures_util::future::join_all;
use gateway_sim::{GatewayHandle, PacingConfig};
use reqwest::{Method, StatusCode};
use support::*;

/// A simulator with the exact limits and a penalty box longer than any test.
async fn paced() -> GatewayHandle {
    start(|c| {
        c.pacing = PacingConfig {
            penalty: Duration::from_secs(600),
            ..PacingConfig::default()
        }
    })
    .await
}

/// Send all `requests` at once; the statuses, in order.
async fn burst(gw: &GatewayHandle, requests: &[(Method, String)]) -> Vec<StatusCode> {
    let http = reqwest::Client::new();
    let base = gw.base_url();
    join_all(requests.iter().map(|(method, path)| {
        let mut req = http.request(method.clone(), format!("{base}{path}"));
        if *method == Method::POST {
            req = req.json(&serde_json::json!({}));
        }
        async move { req.send().await.expect("simulator answers").status() }
    }))
    .await
}

fn count(codes: &[StatusCode], status: StatusCode) -> usize {
    codes.iter().filter(|s| **s == status).count()
}

fn tickles(methods: &[Method]) -> Vec<(Method, String)> {
    methods
        .iter()
        .map(|m| (m.clone(), "/tickle".to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_tickle_burst_is_paced_like_a_get_burst() {
    // 1 request per second: of six at once, one passes and five get 429,
    // whichever the method.
    for method in [Method::GET, Method::POST] {
        let gw = paced().await;
        let codes = burst(&gw, &tickles(&vec![method.clone(); 6])).await;
        assert_eq!(count(&codes, StatusCode::OK), 1, "{method}: {codes:?}");
        assert_eq!(
            count(&codes, StatusCode::TOO_MANY_REQUESTS),
            5,
            "{method}: {codes:?}"
        );
        gw.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_post_tickle_share_one_window() {
    // Alternating methods: still one endpoint, one request per second.
    let gw = paced().await;
    let methods: Vec<Method> = (0..6)
        .map(|i| {
            if i % 2 == 0 {
                Method::GET
            } else {
                Method::POST
            }
        })
        .collect();
    let codes = burst(&gw, &tickles(&methods)).await;
    assert_eq!(count(&codes, StatusCode::OK), 1, "{codes:?}");
    assert_eq!(count(&codes, StatusCode::TOO_MANY_REQUESTS), 5, "{codes:?}");
    gw.shutdown().await;

    // And a single POST after a single GET, in sequence.
    let gw = paced().await;
    let c = Client::new(&gw);
    c.ok("/tickle").await;
    let (status, body) = c.post("/tickle", serde_json::json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    gw.shutdown().await;
}

fn history(path: &str) -> (Method, String) {
    (
        Method::GET,
        format!("{path}?conid={AAPL}&period=1d&bar=1h&outsideRth=true"),
    )
}

/// A paced simulator whose history answers take 2 s, so that requests sent
/// together are in flight together.
async fn slow_history() -> GatewayHandle {
    let gw = paced().await;
    gw.delay_path("/hmds/history", Duration::from_secs(2));
    gw.delay_path("/iserver/marketdata/history", Duration::from_secs(2));
    gw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmds_history_is_limited_to_five_in_flight() {
    let gw = slow_history().await;
    let codes = burst(&gw, &vec![history("/hmds/history"); 7]).await;
    // Five admitted (the first `/hmds/history` of a session is the spec's
    // warm-up 404, still admitted), two refused.
    assert_eq!(count(&codes, StatusCode::TOO_MANY_REQUESTS), 2, "{codes:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_history_endpoints_share_one_pool() {
    let gw = slow_history().await;
    let mut requests = vec![history("/hmds/history"); 4];
    requests.extend(vec![history("/iserver/marketdata/history"); 4]);
    let codes = burst(&gw, &requests).await;
    assert_eq!(count(&codes, StatusCode::TOO_MANY_REQUESTS), 3, "{codes:?}");
    gw.shutdown().await;
}
