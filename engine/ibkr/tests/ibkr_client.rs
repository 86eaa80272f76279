//! The real client over real HTTP and websocket on 127.0.0.1, against a
//! small purpose-built axum server, for the cases the CP Gateway simulator
//! cannot produce:
//!
//! * error bodies with chosen texts, an HTML page with status 200, a
//!   malformed JSON body, a bare-text 429/503 (`typed_errors_keep_the_message`;
//!   the simulator's injected faults are JSON with a fixed text);
//! * the request headers as received (`headers_and_cookies`: the simulator
//!   does not echo them);
//! * a websocket that drops after its first quote, re-delivers the same
//!   execution on every connection, or goes silent on its first connection
//!   only (the simulator's websocket knobs act on every connection).
//!
//! Session keeping, the reply chain, the `/hmds/history` warm-up, snapshot
//! pre-flight and history download run against the simulator in
//! `ibkr_gateway_sim.rs`.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_ibkr as ibkr;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use engine::event::Event;
use engine::model::Conid;
use ibkr::pacing::PacingConfig;
use ibkr::ws::{self, Subscription, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient, IbkrError};
use serde_json::{json, Value};

#[derive(Default)]
struct Srv {
    ws_connects: AtomicUsize,
    /// Messages received on the websocket, per connection index.
    ws_received: Mutex<Vec<(usize, String)>>,
    /// Connection index after which the server drops the socket (once).
    drop_first: AtomicBool,
    /// Stop sending heartbeats on the first connection.
    silent_first: AtomicBool,
    last_headers: Mutex<Option<HeaderMap>>,
}

type S = Arc<Srv>;

async fn start(srv: S) -> String {
    let app = Router::new()
        .route("/v1/api/tickle", post(tickle))
        .route("/v1/api/echo", post(echo))
        .route("/v1/api/fault/{kind}", get(fault))
        .route("/v1/api/ws", any(ws_upgrade))
        .with_state(srv);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/v1/api")
}

fn client(base: &str) -> IbkrClient {
    IbkrClient::new(ClientConfig {
        pacing: PacingConfig {
            wait_out_penalty: false,
            ..PacingConfig::default()
        },
        ..ClientConfig::with_base_url(base)
    })
    .unwrap()
}

/// The tickle answer the websocket needs for its session cookie, and the
/// `x-sess-uuid` cookie the client must keep.
async fn tickle() -> Response {
    (
        [("set-cookie", "x-sess-uuid=abc123; Path=/")],
        Json(json!({
            "session": "d21b8cf5ebc8ea01c6ce37c8125ec83f",
            "ssoExpires": 460311,
            "collission": false,
            "userId": 1,
            "hmds": {"error": "no bridge"},
            "iserver": {"authStatus": {"authenticated": true, "competing": false, "connected": true, "message": ""}}
        })),
    )
        .into_response()
}

async fn echo(State(s): State<S>, headers: HeaderMap) -> Json<Value> {
    *s.last_headers.lock().unwrap() = Some(headers);
    Json(json!({"ok": true}))
}

async fn fault(Path(kind): Path<String>) -> Response {
    match kind.as_str() {
        "error200" => {
            Json(json!({"error": "We cannot accept an order at the limit price you selected."}))
                .into_response()
        }
        "html200" => (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<html><body>Login</body></html>",
        )
            .into_response(),
        "401" => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not authenticated"})),
        )
            .into_response(),
        "429" => (StatusCode::TOO_MANY_REQUESTS, "Too many requests").into_response(),
        "500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "System error"})),
        )
            .into_response(),
        "503" => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response(),
        "badjson" => (StatusCode::OK, "{\"a\":").into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn ws_upgrade(State(s): State<S>, headers: HeaderMap, up: WebSocketUpgrade) -> Response {
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !cookie.contains("api=d21b8cf5ebc8ea01c6ce37c8125ec83f") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let idx = s.ws_connects.fetch_add(1, Ordering::SeqCst);
    up.on_upgrade(move |socket| ws_session(s, socket, idx))
}

async fn ws_session(s: S, mut socket: WebSocket, idx: usize) {
    let _ = socket
        .send(Message::Text(
            r#"{"topic":"system","success":"user1"}"#.into(),
        ))
        .await;
    let _ = socket
        .send(Message::Text(
            r#"{"topic":"sts","args":{"authenticated":true}}"#.into(),
        ))
        .await;
    let silent = idx == 0 && s.silent_first.load(Ordering::SeqCst);
    let mut hb = tokio::time::interval(Duration::from_millis(50));
    let mut sent_quote = false;
    loop {
        tokio::select! {
            m = socket.recv() => {
                let Some(Ok(m)) = m else { return };
                if let Message::Text(t) = m {
                    let t = t.to_string();
                    s.ws_received.lock().unwrap().push((idx, t.clone()));
                    if t.starts_with("smd+") && !silent {
                        let conid: i64 = t[4..].split('+').next().unwrap().parse().unwrap();
                        let q = json!({"topic": format!("smd+{conid}"), "conid": conid, "31": "100.5", "84": "100.4", "_updated": 1702334859712u64});
                        // Sent as a binary frame, as the real gateway does.
                        let _ = socket.send(Message::Binary(q.to_string().into_bytes().into())).await;
                        sent_quote = true;
                    }
                    if t.starts_with("str+") {
                        let tr = json!({"topic": "str", "args": [{"execution_id": "e-1", "conid": 1, "account": "U1", "side": "B", "size": "1", "price": "10", "trade_time_r": 1702317649000u64}]});
                        // Delivered on every connection: must reach the bus once.
                        let _ = socket.send(Message::Text(tr.to_string().into())).await;
                    }
                }
            }
            _ = hb.tick() => {
                if silent { continue; }
                if idx == 0 && sent_quote && s.drop_first.load(Ordering::SeqCst) {
                    // Drop the connection without a close frame.
                    return;
                }
                let _ = socket.send(Message::Text(r#"{"topic":"system","hb":1702334859712}"#.into())).await;
            }
        }
    }
}

#[tokio::test]
async fn typed_errors_keep_the_message() {
    let base = start(Arc::new(Srv::default())).await;
    let c = client(&base);
    let get = |k: &str| {
        let c = c.clone();
        let p = format!("/fault/{k}");
        async move {
            c.call::<Value>(reqwest::Method::GET, &p, &[], None)
                .await
                .unwrap_err()
        }
    };
    match get("error200").await {
        IbkrError::Api { message, .. } => assert!(message.contains("limit price")),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        get("html200").await,
        IbkrError::Html { status: 200, .. }
    ));
    assert!(
        matches!(get("401").await, IbkrError::Unauthorized { message, .. } if message == "not authenticated")
    );
    assert!(
        matches!(get("500").await, IbkrError::ServerError { message, .. } if message == "System error")
    );
    assert!(
        matches!(get("503").await, IbkrError::Unavailable { message, .. } if message == "Service Unavailable")
    );
    assert!(matches!(get("badjson").await, IbkrError::Decode { .. }));
    // A 429 puts the client in the penalty box: the next call is not sent.
    assert!(matches!(
        get("429").await,
        IbkrError::TooManyRequests { .. }
    ));
    assert!(c.pacer().penalty_remaining().unwrap() > Duration::from_secs(14 * 60));
    assert!(matches!(
        get("error200").await,
        IbkrError::PenaltyBox { .. }
    ));
    // Transport error: nothing listens there.
    let dead = client("http://127.0.0.1:9/v1/api");
    assert!(matches!(
        dead.auth_status().await,
        Err(IbkrError::Transport { .. })
    ));
    // No secret ever in an error text.
    let e = format!("{:?}", dead.auth_status().await.unwrap_err());
    assert!(!e.contains("d21b8cf5"));
}

#[tokio::test]
async fn headers_and_cookies() {
    let srv = Arc::new(Srv::default());
    let base = start(srv.clone()).await;
    let c = client(&base);
    c.tickle().await.unwrap();
    let _: Value = c
        .call(reqwest::Method::POST, "/echo", &[], None)
        .await
        .unwrap();
    let h = srv.last_headers.lock().unwrap().clone().unwrap();
    assert_eq!(h.get("accept").unwrap(), "*/*");
    assert_eq!(h.get("content-length").unwrap(), "2");
    assert!(h
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("ibflow/"));
    assert!(
        h.get("cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("x-sess-uuid=abc123"),
        "cookie store"
    );
}

static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

async fn next_matching(
    rx: &mut tokio::sync::mpsc::Receiver<WsMessage>,
    f: impl Fn(&WsMessage) -> bool,
) -> WsMessage {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let m = rx.recv().await.expect("channel open");
            if matches!(m, WsMessage::Event(Event::Execution(_))) {
                EXECUTIONS.fetch_add(1, Ordering::SeqCst);
            }
            if f(&m) {
                return m;
            }
        }
    })
    .await
    .expect("expected message in time")
}

fn fast_ws() -> WsConfig {
    WsConfig {
        dead_after: Duration::from_millis(400),
        tic_every: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn websocket_drop_resubscribes_and_dedups_executions() {
    let srv = Arc::new(Srv::default());
    srv.drop_first.store(true, Ordering::SeqCst);
    let base = start(srv.clone()).await;
    let (h, mut rx) = ws::spawn(client(&base), fast_ws(), 64);
    h.subscribe(Subscription::Trades {
        realtime_only: false,
        days: Some(1),
    });
    h.subscribe(Subscription::MarketData {
        conid: Conid(265598),
        fields: vec!["31".into(), "84".into()],
    });
    let m = next_matching(&mut rx, |m| matches!(m, WsMessage::Event(Event::Quote(_)))).await;
    match m {
        WsMessage::Event(Event::Quote(q)) => assert_eq!(q.last.unwrap().to_string(), "100.5"),
        _ => unreachable!(),
    }
    next_matching(&mut rx, |m| matches!(m, WsMessage::Disconnected { .. })).await;
    next_matching(&mut rx, |m| {
        matches!(m, WsMessage::Connected { reconnects: 1 })
    })
    .await;
    // The quote arrives again: the subscription was restored.
    next_matching(&mut rx, |m| matches!(m, WsMessage::Event(Event::Quote(_)))).await;
    let got = srv.ws_received.lock().unwrap().clone();
    for idx in [0, 1] {
        assert!(
            got.iter()
                .any(|(i, t)| *i == idx && t.starts_with("smd+265598+")),
            "smd on connection {idx}: {got:?}"
        );
        assert!(
            got.iter().any(|(i, t)| *i == idx && t.starts_with("str+")),
            "str on connection {idx}"
        );
    }
    // `tic` is sent.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(srv
        .ws_received
        .lock()
        .unwrap()
        .iter()
        .any(|(_, t)| t == "tic"));
    h.shutdown().await;
    // The execution e-1 was delivered on both connections, published once.
    while let Ok(m) = rx.try_recv() {
        if matches!(m, WsMessage::Event(Event::Execution(_))) {
            EXECUTIONS.fetch_add(1, Ordering::SeqCst);
        }
    }
    assert_eq!(
        EXECUTIONS.load(Ordering::SeqCst),
        1,
        "execution e-1 published exactly once"
    );
}

#[tokio::test]
async fn websocket_heartbeat_loss_is_detected() {
    let srv = Arc::new(Srv::default());
    srv.silent_first.store(true, Ordering::SeqCst);
    let base = start(srv.clone()).await;
    let (h, mut rx) = ws::spawn(client(&base), fast_ws(), 64);
    next_matching(&mut rx, |m| {
        matches!(m, WsMessage::Connected { reconnects: 0 })
    })
    .await;
    let m = next_matching(&mut rx, |m| matches!(m, WsMessage::Disconnected { .. })).await;
    match m {
        WsMessage::Disconnected { reason } => assert!(reason.contains("dead"), "{reason}"),
        _ => unreachable!(),
    }
    next_matching(&mut rx, |m| {
        matches!(m, WsMessage::Connected { reconnects: 1 })
    })
    .await;
    h.shutdown().await;
    assert!(srv.ws_connects.load(Ordering::SeqCst) >= 2);
}
