//! The fault hooks that replace or alter an answer, the binary websocket
//! frames and the request log, over real HTTP and a real websocket on
//! 127.0.0.1 (the older hooks are in `gateway_ws.rs`).
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_gateway_sim as gateway_sim;

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::*;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(5);

/// A request without a body, answered as it comes.
async fn request(c: &Client, method: reqwest::Method, path: &str) -> reqwest::Response {
    c.http
        .request(method, format!("{}{path}", c.base))
        .send()
        .await
        .unwrap()
}

/// Status, content type and body text of a GET.
async fn raw(c: &Client, path: &str) -> (u16, String, String) {
    let r = request(c, reqwest::Method::GET, path).await;
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn answers_in_place_of_the_simulator() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    // The Order Reject Object: 200 with the reason; the spec's 500.
    gw.fail_path_with("/iserver/account/trades", 200, "limit price too far");
    gw.fail_path_with("/iserver/account/orders", 500, "System error");
    assert_eq!(
        c.get("/iserver/account/trades").await,
        (
            reqwest::StatusCode::OK,
            json!({"error": "limit price too far"})
        )
    );
    let (s, v) = c.get("/iserver/account/orders").await;
    assert_eq!((s.as_u16(), v), (500, json!({"error": "System error"})));
    // HTML and bare text where JSON was expected.
    gw.html_page_path("/portfolio/accounts", 200);
    let (s, ct, body) = raw(&c, "/portfolio/accounts").await;
    assert_eq!((s, ct.as_str()), (200, "text/html"));
    assert!(body.starts_with("<html>"), "{body}");
    gw.plain_text_path("/trsrv/stocks", 429, "Too many requests");
    assert_eq!(
        raw(&c, "/trsrv/stocks?symbols=AAPL").await,
        (429, "text/plain".into(), "Too many requests".into())
    );
    // A body cut short: the first half of the real answer.
    let full = raw(&c, "/iserver/accounts").await.2;
    gw.truncate_path("/iserver/accounts");
    let (s, _, cut) = raw(&c, "/iserver/accounts").await;
    assert_eq!(s, 200);
    assert_eq!(cut, full[..full.len() / 2]);
    assert!(serde_json::from_str::<Value>(&cut).is_err());
    // A spec example for one method and path, also one the simulator does
    // not serve; other methods and longer paths are not touched.
    gw.answer_path("get", "/trsrv/futures", r#"{"ES":[]}"#);
    assert_eq!(c.ok("/trsrv/futures?symbols=ES").await, json!({"ES": []}));
    assert_eq!(raw(&c, "/trsrv/futures/more").await.0, 404);
    assert_eq!(
        c.post("/trsrv/futures", json!({})).await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    // Everything goes away at once.
    gw.clear_faults();
    assert_eq!(raw(&c, "/iserver/accounts").await.2, full);
    assert_eq!(raw(&c, "/portfolio/accounts").await.1, "application/json");
    assert_eq!(raw(&c, "/trsrv/futures").await.0, 404);
}

#[tokio::test]
async fn the_request_log_and_cookies() {
    let gw = start(|_| {}).await;
    let c = Client::new(&gw);
    c.ok("/iserver/accounts").await;
    gw.record_requests(true);
    gw.set_cookie_path("/tickle", "x-sess-uuid=abc123; Path=/");
    let r = request(&c, reqwest::Method::POST, "/tickle").await;
    assert_eq!(
        r.headers().get("set-cookie").unwrap(),
        "x-sess-uuid=abc123; Path=/"
    );
    c.post("/iserver/secdef/search/", json!({"symbol": "AAPL"}))
        .await;
    c.get("/trsrv/secdef?conids=265598%2C8314").await;
    gw.record_requests(false);
    c.ok("/iserver/accounts").await;
    let log = gw.received_requests();
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/tickle", ""),
            ("POST", "/iserver/secdef/search", ""),
            ("GET", "/trsrv/secdef", "conids=265598%2C8314"),
        ]
    );
    assert_eq!(log[1].json(), Some(json!({"symbol": "AAPL"})));
    assert_eq!(log[1].header("Content-Type"), Some("application/json"));
    // The cookie came back.
    assert_eq!(log[1].header("cookie"), Some("x-sess-uuid=abc123"));
}

#[tokio::test]
async fn binary_frames_and_the_websocket_log() {
    let gw = start(|c| c.heartbeat = Duration::from_millis(50)).await;
    gw.record_requests(true);
    let mut first = connect_ws(&gw).await;
    send(&mut first, "tic").await;
    tokio::time::timeout(T, async {
        while gw.received_ws_messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let mut second = connect_ws(&gw).await;
    assert_eq!(gw.websocket_connections(), 2);
    gw.binary_websocket_frames(true);
    send(&mut second, r#"smd+265598+{"fields":["31"]}"#).await;
    // Text frames may still be on the way; then binary ones only.
    let smd = tokio::time::timeout(T, async {
        loop {
            match second.next().await.unwrap().unwrap() {
                Message::Binary(b) => {
                    let v: Value = serde_json::from_slice(&b).unwrap();
                    if v["topic"] == "smd+265598" {
                        return v;
                    }
                }
                Message::Text(_) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert!(smd.get("31").is_some(), "{smd}");
    let seen: Vec<(usize, String)> = gw
        .received_ws_messages()
        .into_iter()
        .map(|m| (m.connection, m.text))
        .collect();
    assert_eq!(
        seen,
        [
            (0, "tic".to_owned()),
            (1, r#"smd+265598+{"fields":["31"]}"#.to_owned())
        ]
    );
    gw.binary_websocket_frames(false);
    assert!(wait_topic(&mut first, |t| t == "system", T).await.is_some());
}
