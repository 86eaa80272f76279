//! The real client over real HTTP and websocket on 127.0.0.1, against a
//! small purpose-built axum server that can produce the faults the gateway
//! produces: error bodies, HTML pages, 401/429/500/503, the first-call 404
//! of `/hmds/history`, reply prompts in a chain, an expired brokerage
//! session, a dropped websocket and a lost heartbeat.

extern crate ibflow_ibkr as ibkr;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use cpapi::messages::PlaceOutcome;
use engine::event::Event;
use engine::model::Conid;
use ibkr::pacing::PacingConfig;
use ibkr::rest::HistoryRequest;
use ibkr::session::{check_once, SessionConfig};
use ibkr::ws::{self, Subscription, WsConfig, WsMessage};
use ibkr::{ClientConfig, IbkrClient, IbkrError};
use serde_json::{json, Value};

#[derive(Default)]
struct Srv {
    hmds_calls: AtomicUsize,
    snapshot_calls: AtomicUsize,
    accounts_calls: AtomicUsize,
    authenticated: AtomicBool,
    init_calls: AtomicUsize,
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
        .route("/v1/api/iserver/auth/status", post(auth_status))
        .route("/v1/api/iserver/auth/ssodh/init", post(ssodh_init))
        .route("/v1/api/iserver/accounts", get(accounts))
        .route("/v1/api/iserver/marketdata/snapshot", get(snapshot))
        .route("/v1/api/hmds/history", get(hmds))
        .route("/v1/api/iserver/account/{acct}/orders", post(place))
        .route("/v1/api/iserver/reply/{id}", post(reply))
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
        hmds_warmup: Duration::from_millis(10),
        snapshot_preflight_wait: Duration::from_millis(10),
        pacing: PacingConfig {
            wait_out_penalty: false,
            ..PacingConfig::default()
        },
        ..ClientConfig::with_base_url(base)
    })
    .unwrap()
}

async fn tickle(State(s): State<S>) -> Response {
    let auth = s.authenticated.load(Ordering::SeqCst);
    (
        [("set-cookie", "x-sess-uuid=abc123; Path=/")],
        Json(json!({
            "session": "d21b8cf5ebc8ea01c6ce37c8125ec83f",
            "ssoExpires": 460311,
            "collission": false,
            "userId": 1,
            "hmds": {"error": "no bridge"},
            "iserver": {"authStatus": {"authenticated": auth, "competing": false, "connected": true, "message": ""}}
        })),
    )
        .into_response()
}

async fn auth_status(State(s): State<S>) -> Json<Value> {
    Json(
        json!({"authenticated": s.authenticated.load(Ordering::SeqCst), "competing": false, "connected": true}),
    )
}

async fn ssodh_init(State(s): State<S>, Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(body["publish"], json!(true));
    s.init_calls.fetch_add(1, Ordering::SeqCst);
    s.authenticated.store(true, Ordering::SeqCst);
    Json(json!({"authenticated": true, "competing": false, "connected": true, "message": ""}))
}

async fn accounts(State(s): State<S>) -> Json<Value> {
    s.accounts_calls.fetch_add(1, Ordering::SeqCst);
    Json(json!({"accounts": ["U1"], "selectedAccount": "U1"}))
}

async fn snapshot(State(s): State<S>, Query(q): Query<Vec<(String, String)>>) -> Json<Value> {
    assert!(
        s.accounts_calls.load(Ordering::SeqCst) >= 1,
        "pre-flight: accounts first"
    );
    let n = s.snapshot_calls.fetch_add(1, Ordering::SeqCst);
    let conid: i64 = q
        .iter()
        .find(|(k, _)| k == "conids")
        .unwrap()
        .1
        .parse()
        .unwrap();
    if n == 0 {
        Json(json!([{"conid": conid, "conidEx": conid.to_string(), "_updated": 1702334859712u64}]))
    } else {
        Json(
            json!([{"conid": conid, "_updated": 1702334859712u64, "31": "C193.18", "84": "193.06", "86": "193.14", "6509": "RpB"}]),
        )
    }
}

async fn hmds(State(s): State<S>, Query(q): Query<Vec<(String, String)>>) -> Response {
    if s.hmds_calls.fetch_add(1, Ordering::SeqCst) == 0 {
        return (
            StatusCode::NOT_FOUND,
            "<html><body><h1>Resource not found</h1></body></html>",
        )
            .into_response();
    }
    let start = q
        .iter()
        .find(|(k, _)| k == "startTime")
        .map(|x| x.1.clone());
    let end = match start {
        Some(s) => chrono::NaiveDateTime::parse_from_str(&s, "%Y%m%d-%H:%M:%S")
            .unwrap()
            .and_utc()
            .timestamp_millis(),
        None => 1_702_335_080_000,
    };
    // Three daily bars before the end (period is 1y for 1d bars; enough).
    let data: Vec<Value> = (1..=3)
        .rev()
        .map(|i| json!({"t": end - i * 86_400_000, "o": 10.0, "h": "11", "l": 9.5, "c": 10.5, "v": 100}))
        .collect();
    Json(json!({"startTime": "x", "data": data, "points": 3, "mktDataDelay": 0})).into_response()
}

async fn place(Path(acct): Path<String>, Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(acct, "U1");
    assert!(body["orders"].is_array());
    Json(
        json!([{"id": "p1", "message": ["first question?"], "isSuppressed": false, "messageIds": ["o163"]}]),
    )
}

async fn reply(Path(id): Path<String>, Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(body["confirmed"], json!(true));
    match id.as_str() {
        "p1" => Json(
            json!([{"id": "p2", "message": ["second question?"], "isSuppressed": false, "messageIds": ["o354"]}]),
        ),
        "p2" => Json(
            json!([{"order_id": "1234567890", "order_status": "Submitted", "encrypt_message": "1"}]),
        ),
        other => panic!("unexpected reply id {other}"),
    }
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

#[tokio::test]
async fn reply_chain_with_two_prompts() {
    let base = start(Arc::new(Srv::default())).await;
    let c = client(&base);
    let body = json!({"orders": [{"conid": 265598, "orderType": "MKT", "side": "BUY", "quantity": 1, "tif": "DAY"}]});
    let mut outcome = c.place_orders("U1", &body).await.unwrap();
    let mut prompts = Vec::new();
    while let PlaceOutcome::Prompt(p) = outcome {
        prompts.push(p.message_ids.clone());
        outcome = c.reply(&p.id, true).await.unwrap();
    }
    assert_eq!(
        prompts,
        vec![vec!["o163".to_string()], vec!["o354".to_string()]]
    );
    match outcome {
        PlaceOutcome::Acknowledged(a) => assert_eq!(a[0].order_id.as_deref(), Some("1234567890")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hmds_first_call_404_is_retried_once_and_snapshot_preflight() {
    let srv = Arc::new(Srv::default());
    let base = start(srv.clone()).await;
    let c = client(&base);
    let h = c
        .hmds_history(&HistoryRequest::new(Conid(265598), "1w", "1d"))
        .await
        .unwrap();
    assert_eq!(h.bars.len(), 3);
    assert_eq!(srv.hmds_calls.load(Ordering::SeqCst), 2);
    // Snapshot: accounts called first, empty pre-flight answer repeated.
    let rows = c
        .snapshot(&[Conid(265598)], &["31", "84", "86"])
        .await
        .unwrap();
    assert_eq!(srv.accounts_calls.load(Ordering::SeqCst), 1);
    assert_eq!(srv.snapshot_calls.load(Ordering::SeqCst), 2);
    let mut d = cpapi::smd::SmdDecoder::new();
    let s = d.decode_value(&rows[0]).unwrap();
    assert_eq!(s.quote.last.unwrap().to_string(), "193.18");
}

#[tokio::test]
async fn history_download_splits_fetches_stitches_and_saves() {
    let srv = Arc::new(Srv::default());
    let base = start(srv.clone()).await;
    let c = client(&base);
    let dir = tempfile::tempdir().unwrap();
    let end = chrono::DateTime::parse_from_rfc3339("2024-03-08T21:00:00Z")
        .unwrap()
        .to_utc();
    let d = ibkr::history::download(&c, Conid(8314), "1d", "3y", end, false, Some(dir.path()))
        .await
        .unwrap();
    // 3y of daily bars = 3 requests of 1y; the first hit the warm-up 404.
    assert_eq!(d.requests, 3);
    assert_eq!(srv.hmds_calls.load(Ordering::SeqCst), 4);
    assert_eq!(d.files.len(), 3);
    assert_eq!(d.bars.len(), 9);
    assert!(d.bars.windows(2).all(|w| w[0].time < w[1].time));
    for f in &d.files {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("hmds_8314_"), "{name}");
        let body = std::fs::read(f).unwrap();
        assert_eq!(
            cpapi::history::parse_history(Conid(8314), &body)
                .unwrap()
                .bars
                .len(),
            3
        );
    }
}

#[tokio::test]
async fn session_expiry_is_reinitialized() {
    let srv = Arc::new(Srv::default());
    let base = start(srv.clone()).await;
    let c = client(&base);
    // Connected, not authenticated: the keeper re-opens the session.
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(r.reinitialized);
    assert!(r.status.authenticated);
    assert_eq!(srv.init_calls.load(Ordering::SeqCst), 1);
    let r = check_once(&c, &SessionConfig::default()).await.unwrap();
    assert!(!r.reinitialized);
    assert_eq!(srv.init_calls.load(Ordering::SeqCst), 1);
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

#[tokio::test]
async fn keeper_task_reports_status_changes() {
    let srv = Arc::new(Srv::default());
    let base = start(srv.clone()).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let cfg = SessionConfig {
        tickle_every: Duration::from_millis(50),
        ..SessionConfig::default()
    };
    let task = ibkr::session::spawn_keeper(client(&base), cfg, tx);
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    // The first tickle found the brokerage session closed and re-opened it.
    assert!(first.authenticated && first.connected);
    assert_eq!(srv.init_calls.load(Ordering::SeqCst), 1);
    // Expire it again: the keeper notices on its next tickle and re-inits.
    srv.authenticated.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(5), async {
        while srv.init_calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("re-init after expiry");
    task.abort();
}
